using Google.Protobuf.Collections;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Shared.Processing;

/// <summary><c>processors.groupbyattrs</c>.</summary>
public sealed class GroupByAttrsOptions
{
    /// <summary>Point attributes that move to the resource. Empty: only merge identical resources and scopes.</summary>
    public List<string> Keys { get; set; } = [];
}

/// <summary>
/// The collector's groupbyattrs: each listed point attribute moves to the resource, so points regroup under
/// resources that carry those attributes (a copy of the original resource plus them). Resources, scopes and
/// metrics that end up identical are merged; with no keys, that merge (compaction) is all it does. A point that
/// lacks some keys keeps what it has.
/// </summary>
public sealed class GroupByAttrsProcessor(GroupByAttrsOptions options, IMetricsConsumer next) : IMetricsConsumer
{
    private readonly HashSet<string> _keys = new(options.Keys, StringComparer.Ordinal);

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        var output = new Grouping();
        foreach (var rm in request.ResourceMetrics)
        {
            var baseAttributes = rm.Resource?.Attributes ?? [];
            foreach (var sm in rm.ScopeMetrics)
            {
                foreach (var metric in sm.Metrics)
                {
                    MovePoints(metric, rm, baseAttributes, sm, output);
                }
            }
        }

        request.ResourceMetrics.Clear();
        request.ResourceMetrics.Add(output.Resources);
        return next.ConsumeAsync(request, cancellationToken);
    }

    private void MovePoints(Metric metric, ResourceMetrics rm, RepeatedField<KeyValue> baseAttributes, ScopeMetrics sm, Grouping output)
    {
        switch (metric.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
                Move(metric.Gauge.DataPoints, p => p.Attributes, m => m.Gauge.DataPoints, metric, rm, baseAttributes, sm, output);
                break;
            case Metric.DataOneofCase.Sum:
                Move(metric.Sum.DataPoints, p => p.Attributes, m => m.Sum.DataPoints, metric, rm, baseAttributes, sm, output);
                break;
            case Metric.DataOneofCase.Histogram:
                Move(metric.Histogram.DataPoints, p => p.Attributes, m => m.Histogram.DataPoints, metric, rm, baseAttributes, sm, output);
                break;
            case Metric.DataOneofCase.ExponentialHistogram:
                Move(metric.ExponentialHistogram.DataPoints, p => p.Attributes, m => m.ExponentialHistogram.DataPoints, metric, rm, baseAttributes, sm, output);
                break;
            case Metric.DataOneofCase.Summary:
                Move(metric.Summary.DataPoints, p => p.Attributes, m => m.Summary.DataPoints, metric, rm, baseAttributes, sm, output);
                break;
            default:
                // A metric without data still keeps its place (and metadata) under its resource.
                output.Metric(rm, baseAttributes, [], sm, metric);
                break;
        }
    }

    private void Move<TPoint>(
        RepeatedField<TPoint> points,
        Func<TPoint, RepeatedField<KeyValue>> attributesOf,
        Func<Metric, RepeatedField<TPoint>> pointsOf,
        Metric metric,
        ResourceMetrics rm,
        RepeatedField<KeyValue> baseAttributes,
        ScopeMetrics sm,
        Grouping output)
    {
        foreach (var point in points)
        {
            var attributes = attributesOf(point);
            var moved = new List<KeyValue>();
            if (_keys.Count > 0)
            {
                for (var i = attributes.Count - 1; i >= 0; i--)
                {
                    if (_keys.Contains(attributes[i].Key))
                    {
                        moved.Insert(0, attributes[i]);
                        attributes.RemoveAt(i);
                    }
                }
            }

            pointsOf(output.Metric(rm, baseAttributes, moved, sm, metric)).Add(point);
        }
    }

    /// <summary>The regrouped output, with lookups by resource, scope and metric identity.</summary>
    private sealed class Grouping
    {
        private readonly Dictionary<string, (ResourceMetrics Rm, Dictionary<string, (ScopeMetrics Sm, Dictionary<string, Metric> Metrics)> Scopes)> _byResource = new(StringComparer.Ordinal);

        public List<ResourceMetrics> Resources { get; } = [];

        public Metric Metric(ResourceMetrics source, RepeatedField<KeyValue> baseAttributes, List<KeyValue> moved, ScopeMetrics scope, Metric metric)
        {
            var attributes = new RepeatedField<KeyValue>();
            foreach (var kv in baseAttributes)
            {
                if (!moved.Exists(m => m.Key == kv.Key))
                {
                    attributes.Add(kv);
                }
            }

            attributes.Add(moved);
            var resourceKey = AttributeHelpers.Key(attributes) + "\u0001" + source.SchemaUrl + "\u0001" + (source.Resource?.DroppedAttributesCount ?? 0);
            if (!_byResource.TryGetValue(resourceKey, out var entry))
            {
                var resource = new Resource { DroppedAttributesCount = source.Resource?.DroppedAttributesCount ?? 0 };
                resource.Attributes.Add(attributes);
                var rm = new ResourceMetrics { Resource = resource, SchemaUrl = source.SchemaUrl };
                entry = (rm, new Dictionary<string, (ScopeMetrics, Dictionary<string, Metric>)>(StringComparer.Ordinal));
                _byResource[resourceKey] = entry;
                Resources.Add(rm);
            }

            var scopeKey = (scope.Scope?.Name ?? "") + "\u0001" + (scope.Scope?.Version ?? "") + "\u0001" + AttributeHelpers.Key(scope.Scope?.Attributes) + "\u0001" + scope.SchemaUrl;
            if (!entry.Scopes.TryGetValue(scopeKey, out var scopeEntry))
            {
                var sm = new ScopeMetrics { Scope = scope.Scope, SchemaUrl = scope.SchemaUrl };
                scopeEntry = (sm, new Dictionary<string, Metric>(StringComparer.Ordinal));
                entry.Scopes[scopeKey] = scopeEntry;
                entry.Rm.ScopeMetrics.Add(sm);
            }

            var metricKey = MetricKey(metric);
            if (!scopeEntry.Metrics.TryGetValue(metricKey, out var target))
            {
                target = EmptyCopy(metric);
                scopeEntry.Metrics[metricKey] = target;
                scopeEntry.Sm.Metrics.Add(target);
            }

            return target;
        }

        private static string MetricKey(Metric m)
        {
            var shape = m.DataCase switch
            {
                OpenTelemetry.Proto.Metrics.V1.Metric.DataOneofCase.Sum => $"sum/{m.Sum.AggregationTemporality}/{m.Sum.IsMonotonic}",
                OpenTelemetry.Proto.Metrics.V1.Metric.DataOneofCase.Histogram => $"histogram/{m.Histogram.AggregationTemporality}",
                OpenTelemetry.Proto.Metrics.V1.Metric.DataOneofCase.ExponentialHistogram => $"exphistogram/{m.ExponentialHistogram.AggregationTemporality}",
                _ => m.DataCase.ToString(),
            };
            return m.Name + "\u0001" + m.Unit + "\u0001" + m.Description + "\u0001" + shape;
        }

        private static Metric EmptyCopy(Metric m)
        {
            var copy = new Metric { Name = m.Name, Description = m.Description, Unit = m.Unit };
            copy.Metadata.Add(m.Metadata);
            switch (m.DataCase)
            {
                case OpenTelemetry.Proto.Metrics.V1.Metric.DataOneofCase.Gauge:
                    copy.Gauge = new Gauge();
                    break;
                case OpenTelemetry.Proto.Metrics.V1.Metric.DataOneofCase.Sum:
                    copy.Sum = new Sum { AggregationTemporality = m.Sum.AggregationTemporality, IsMonotonic = m.Sum.IsMonotonic };
                    break;
                case OpenTelemetry.Proto.Metrics.V1.Metric.DataOneofCase.Histogram:
                    copy.Histogram = new Histogram { AggregationTemporality = m.Histogram.AggregationTemporality };
                    break;
                case OpenTelemetry.Proto.Metrics.V1.Metric.DataOneofCase.ExponentialHistogram:
                    copy.ExponentialHistogram = new ExponentialHistogram { AggregationTemporality = m.ExponentialHistogram.AggregationTemporality };
                    break;
                case OpenTelemetry.Proto.Metrics.V1.Metric.DataOneofCase.Summary:
                    copy.Summary = new Summary();
                    break;
            }

            return copy;
        }
    }
}

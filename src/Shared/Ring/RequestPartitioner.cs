using System.Buffers;
using Google.Protobuf.Collections;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Shared.Ring;

/// <summary>
/// Splits a request by owner, keeping the resource → scope → metric structure (a part repeats the resource,
/// scope and metric metadata of the points it carries). When every point has one owner, the request itself is
/// the only part and nothing is copied.
/// </summary>
internal static class RequestPartitioner
{
    /// <summary>
    /// Adds (owner index, part) pairs to <paramref name="parts"/>. Owners are indexes into
    /// <see cref="HashRing.Members"/>; an empty ring yields (-1, request).
    /// </summary>
    public static void Partition(ExportMetricsServiceRequest request, HashRing ring, RoutingKey key, List<(int Owner, ExportMetricsServiceRequest Part)> parts)
    {
        if (ring.Members.Count <= 1)
        {
            parts.Add((ring.Members.Count == 0 ? -1 : 0, request));
            return;
        }

        var total = MetricsCounting.DataPoints(request);
        if (key is RoutingKey.Resource or RoutingKey.Service && request.ResourceMetrics.Count == 1)
        {
            var rm = request.ResourceMetrics[0];
            parts.Add((ring.OwnerOf(key == RoutingKey.Resource ? StreamHash.OfResource(rm.Resource) : StreamHash.OfService(rm.Resource)), request));
            return;
        }

        var owners = ArrayPool<int>.Shared.Rent(Math.Max(1, total));
        try
        {
            var first = -1;
            var uniform = true;
            var n = 0;
            foreach (var rm in request.ResourceMetrics)
            {
                var resource = key switch
                {
                    RoutingKey.Stream or RoutingKey.Resource => StreamHash.OfResource(rm.Resource),
                    RoutingKey.Service => StreamHash.OfService(rm.Resource),
                    _ => 0UL,
                };
                foreach (var sm in rm.ScopeMetrics)
                {
                    foreach (var metric in sm.Metrics)
                    {
                        var name = key is RoutingKey.Stream or RoutingKey.Metric ? StreamHash.OfName(metric.Name) : 0UL;
                        var count = MetricsCounting.DataPoints(metric);
                        for (var i = 0; i < count; i++)
                        {
                            var hash = key switch
                            {
                                RoutingKey.Stream => StreamHash.OfStream(resource, name, StreamHash.OfAttributes(AttributesOf(metric, i))),
                                RoutingKey.Metric => name,
                                _ => resource,
                            };
                            var owner = ring.OwnerOf(hash);
                            owners[n++] = owner;
                            if (first < 0)
                            {
                                first = owner;
                            }
                            else if (owner != first)
                            {
                                uniform = false;
                            }
                        }
                    }
                }
            }

            if (uniform)
            {
                parts.Add((first < 0 ? 0 : first, request));
                return;
            }

            Split(request, owners, ring.Members.Count, parts);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(owners);
        }
    }

    private static void Split(ExportMetricsServiceRequest request, int[] owners, int members, List<(int Owner, ExportMetricsServiceRequest Part)> parts)
    {
        var requests = new ExportMetricsServiceRequest?[members];
        var rms = new ResourceMetrics?[members];
        var sms = new ScopeMetrics?[members];
        var metrics = new Metric?[members];
        var n = 0;
        foreach (var rm in request.ResourceMetrics)
        {
            Array.Clear(rms);
            foreach (var sm in rm.ScopeMetrics)
            {
                Array.Clear(sms);
                foreach (var metric in sm.Metrics)
                {
                    Array.Clear(metrics);
                    var count = MetricsCounting.DataPoints(metric);
                    for (var i = 0; i < count; i++)
                    {
                        var owner = owners[n++];
                        var target = metrics[owner];
                        if (target is null)
                        {
                            var part = requests[owner] ??= new ExportMetricsServiceRequest();
                            var partRm = rms[owner];
                            if (partRm is null)
                            {
                                partRm = new ResourceMetrics { Resource = rm.Resource, SchemaUrl = rm.SchemaUrl };
                                part.ResourceMetrics.Add(partRm);
                                rms[owner] = partRm;
                            }

                            var partSm = sms[owner];
                            if (partSm is null)
                            {
                                partSm = new ScopeMetrics { Scope = sm.Scope, SchemaUrl = sm.SchemaUrl };
                                partRm.ScopeMetrics.Add(partSm);
                                sms[owner] = partSm;
                            }

                            target = EmptyLike(metric);
                            partSm.Metrics.Add(target);
                            metrics[owner] = target;
                        }

                        AddPoint(metric, i, target);
                    }
                }
            }
        }

        for (var m = 0; m < members; m++)
        {
            if (requests[m] is { } part)
            {
                parts.Add((m, part));
            }
        }
    }

    private static RepeatedField<KeyValue> AttributesOf(Metric metric, int i) => metric.DataCase switch
    {
        Metric.DataOneofCase.Gauge => metric.Gauge.DataPoints[i].Attributes,
        Metric.DataOneofCase.Sum => metric.Sum.DataPoints[i].Attributes,
        Metric.DataOneofCase.Histogram => metric.Histogram.DataPoints[i].Attributes,
        Metric.DataOneofCase.ExponentialHistogram => metric.ExponentialHistogram.DataPoints[i].Attributes,
        Metric.DataOneofCase.Summary => metric.Summary.DataPoints[i].Attributes,
        _ => throw new InvalidOperationException("a metric without data has no points"),
    };

    private static Metric EmptyLike(Metric metric)
    {
        var copy = new Metric { Name = metric.Name, Description = metric.Description, Unit = metric.Unit };
        copy.Metadata.Add(metric.Metadata);
        switch (metric.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
                copy.Gauge = new Gauge();
                break;
            case Metric.DataOneofCase.Sum:
                copy.Sum = new Sum { AggregationTemporality = metric.Sum.AggregationTemporality, IsMonotonic = metric.Sum.IsMonotonic };
                break;
            case Metric.DataOneofCase.Histogram:
                copy.Histogram = new Histogram { AggregationTemporality = metric.Histogram.AggregationTemporality };
                break;
            case Metric.DataOneofCase.ExponentialHistogram:
                copy.ExponentialHistogram = new ExponentialHistogram { AggregationTemporality = metric.ExponentialHistogram.AggregationTemporality };
                break;
            case Metric.DataOneofCase.Summary:
                copy.Summary = new Summary();
                break;
        }

        return copy;
    }

    private static void AddPoint(Metric source, int i, Metric target)
    {
        switch (source.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
                target.Gauge.DataPoints.Add(source.Gauge.DataPoints[i]);
                break;
            case Metric.DataOneofCase.Sum:
                target.Sum.DataPoints.Add(source.Sum.DataPoints[i]);
                break;
            case Metric.DataOneofCase.Histogram:
                target.Histogram.DataPoints.Add(source.Histogram.DataPoints[i]);
                break;
            case Metric.DataOneofCase.ExponentialHistogram:
                target.ExponentialHistogram.DataPoints.Add(source.ExponentialHistogram.DataPoints[i]);
                break;
            case Metric.DataOneofCase.Summary:
                target.Summary.DataPoints.Add(source.Summary.DataPoints[i]);
                break;
        }
    }
}

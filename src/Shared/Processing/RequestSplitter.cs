using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Shared.Processing;

/// <summary>Splits a request into parts of at most N data points, cutting inside a metric when it has to.</summary>
public static class RequestSplitter
{
    /// <summary>The parts in order; the request itself when it is small enough or <paramref name="maxPoints"/> is 0.</summary>
    public static IEnumerable<ExportMetricsServiceRequest> Split(ExportMetricsServiceRequest request, int maxPoints)
    {
        if (maxPoints <= 0 || MetricsCounting.DataPoints(request) <= maxPoints)
        {
            yield return request;
            yield break;
        }

        var part = new ExportMetricsServiceRequest();
        var room = maxPoints;
        foreach (var rm in request.ResourceMetrics)
        {
            ResourceMetrics? partRm = null;
            foreach (var sm in rm.ScopeMetrics)
            {
                ScopeMetrics? partSm = null;
                foreach (var metric in sm.Metrics)
                {
                    var offset = 0;
                    var count = MetricsCounting.DataPoints(metric);
                    while (offset < count || count == 0)
                    {
                        var take = count == 0 ? 0 : Math.Min(room, count - offset);
                        partRm ??= AddResource(part, rm);
                        partSm ??= AddScope(partRm, sm);
                        partSm.Metrics.Add(Slice(metric, offset, take));
                        offset += take;
                        room -= take;
                        if (room == 0)
                        {
                            yield return part;
                            part = new ExportMetricsServiceRequest();
                            room = maxPoints;
                            partRm = null;
                            partSm = null;
                        }

                        if (count == 0)
                        {
                            break;
                        }
                    }
                }
            }
        }

        if (part.ResourceMetrics.Count > 0)
        {
            yield return part;
        }
    }

    private static ResourceMetrics AddResource(ExportMetricsServiceRequest part, ResourceMetrics rm)
    {
        var copy = new ResourceMetrics { Resource = rm.Resource, SchemaUrl = rm.SchemaUrl };
        part.ResourceMetrics.Add(copy);
        return copy;
    }

    private static ScopeMetrics AddScope(ResourceMetrics rm, ScopeMetrics sm)
    {
        var copy = new ScopeMetrics { Scope = sm.Scope, SchemaUrl = sm.SchemaUrl };
        rm.ScopeMetrics.Add(copy);
        return copy;
    }

    /// <summary>A metric with the same metadata and points [offset, offset+count).</summary>
    internal static Metric Slice(Metric metric, int offset, int count)
    {
        var copy = new Metric { Name = metric.Name, Description = metric.Description, Unit = metric.Unit };
        copy.Metadata.Add(metric.Metadata);
        switch (metric.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
                copy.Gauge = new Gauge();
                copy.Gauge.DataPoints.Add(metric.Gauge.DataPoints.Skip(offset).Take(count));
                break;
            case Metric.DataOneofCase.Sum:
                copy.Sum = new Sum { AggregationTemporality = metric.Sum.AggregationTemporality, IsMonotonic = metric.Sum.IsMonotonic };
                copy.Sum.DataPoints.Add(metric.Sum.DataPoints.Skip(offset).Take(count));
                break;
            case Metric.DataOneofCase.Histogram:
                copy.Histogram = new Histogram { AggregationTemporality = metric.Histogram.AggregationTemporality };
                copy.Histogram.DataPoints.Add(metric.Histogram.DataPoints.Skip(offset).Take(count));
                break;
            case Metric.DataOneofCase.ExponentialHistogram:
                copy.ExponentialHistogram = new ExponentialHistogram { AggregationTemporality = metric.ExponentialHistogram.AggregationTemporality };
                copy.ExponentialHistogram.DataPoints.Add(metric.ExponentialHistogram.DataPoints.Skip(offset).Take(count));
                break;
            case Metric.DataOneofCase.Summary:
                copy.Summary = new Summary();
                copy.Summary.DataPoints.Add(metric.Summary.DataPoints.Skip(offset).Take(count));
                break;
        }

        return copy;
    }
}

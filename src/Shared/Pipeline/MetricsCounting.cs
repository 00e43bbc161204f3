using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Metrics.V1;

namespace PgOtelGateway.Shared.Pipeline;

/// <summary>Counts data points the way every self-metric of this project counts them.</summary>
public static class MetricsCounting
{
    /// <summary>Data points in one metric, whatever its type.</summary>
    public static int DataPoints(Metric metric) => metric.DataCase switch
    {
        Metric.DataOneofCase.Gauge => metric.Gauge.DataPoints.Count,
        Metric.DataOneofCase.Sum => metric.Sum.DataPoints.Count,
        Metric.DataOneofCase.Histogram => metric.Histogram.DataPoints.Count,
        Metric.DataOneofCase.ExponentialHistogram => metric.ExponentialHistogram.DataPoints.Count,
        Metric.DataOneofCase.Summary => metric.Summary.DataPoints.Count,
        _ => 0,
    };

    /// <summary>Data points in a whole request.</summary>
    public static int DataPoints(ExportMetricsServiceRequest request)
    {
        var total = 0;
        foreach (var rm in request.ResourceMetrics)
        {
            foreach (var sm in rm.ScopeMetrics)
            {
                foreach (var metric in sm.Metrics)
                {
                    total += DataPoints(metric);
                }
            }
        }

        return total;
    }
}

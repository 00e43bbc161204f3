using System.Text;
using Google.Protobuf.Collections;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Gateway.Ingest;

/// <summary>
/// Removes the points that break the per-point limits (label name and value length, attribute count) so the rest
/// of the request can be accepted; the client is told how many were rejected by partial success and why.
/// Resource attributes count against every point of the resource.
/// </summary>
internal static class PointLimits
{
    /// <summary>Removes bad points in place; returns how many were removed and a message naming the first problem.</summary>
    public static (int Rejected, string? Message) Enforce(ExportMetricsServiceRequest request, PointLimitsOptions limits)
    {
        var rejected = 0;
        string? message = null;
        foreach (var rm in request.ResourceMetrics)
        {
            var resourceProblem = Check(rm.Resource?.Attributes, 0, limits, "resource");
            foreach (var sm in rm.ScopeMetrics)
            {
                foreach (var metric in sm.Metrics)
                {
                    if (resourceProblem is not null)
                    {
                        var n = MetricsCounting.DataPoints(metric);
                        if (n > 0)
                        {
                            rejected += n;
                            message ??= $"metric '{metric.Name}': {resourceProblem}";
                            metric.ClearData();
                        }

                        continue;
                    }

                    var resourceCount = rm.Resource?.Attributes.Count ?? 0;
                    switch (metric.DataCase)
                    {
                        case Metric.DataOneofCase.Gauge:
                            rejected += Filter(metric.Gauge.DataPoints, p => p.Attributes, resourceCount, limits, metric.Name, ref message);
                            break;
                        case Metric.DataOneofCase.Sum:
                            rejected += Filter(metric.Sum.DataPoints, p => p.Attributes, resourceCount, limits, metric.Name, ref message);
                            break;
                        case Metric.DataOneofCase.Histogram:
                            rejected += Filter(metric.Histogram.DataPoints, p => p.Attributes, resourceCount, limits, metric.Name, ref message);
                            break;
                        case Metric.DataOneofCase.ExponentialHistogram:
                            rejected += Filter(metric.ExponentialHistogram.DataPoints, p => p.Attributes, resourceCount, limits, metric.Name, ref message);
                            break;
                        case Metric.DataOneofCase.Summary:
                            rejected += Filter(metric.Summary.DataPoints, p => p.Attributes, resourceCount, limits, metric.Name, ref message);
                            break;
                    }
                }
            }
        }

        return (rejected, message);
    }

    private static int Filter<T>(RepeatedField<T> points, Func<T, RepeatedField<KeyValue>> attributes, int resourceCount, PointLimitsOptions limits, string metric, ref string? message)
    {
        var removed = 0;
        for (var i = points.Count - 1; i >= 0; i--)
        {
            var problem = Check(attributes(points[i]), resourceCount, limits, "point");
            if (problem is not null)
            {
                message ??= $"metric '{metric}': {problem}";
                points.RemoveAt(i);
                removed++;
            }
        }

        return removed;
    }

    private static string? Check(RepeatedField<KeyValue>? attributes, int inherited, PointLimitsOptions limits, string where)
    {
        if (attributes is null)
        {
            return null;
        }

        if (attributes.Count + inherited > limits.MaxAttributes)
        {
            return $"{attributes.Count + inherited} attributes on a {where}, more than the limit of {limits.MaxAttributes}";
        }

        // Indexed (RepeatedField's enumerator is an allocated iterator), and the UTF-8 length is counted only when
        // the string could be over the limit at all: a UTF-16 code unit is at most 3 UTF-8 bytes.
        for (var i = 0; i < attributes.Count; i++)
        {
            var kv = attributes[i];
            if (kv.Key.Length * 3 > limits.MaxLabelNameBytes && Encoding.UTF8.GetByteCount(kv.Key) > limits.MaxLabelNameBytes)
            {
                return $"attribute name of {Encoding.UTF8.GetByteCount(kv.Key)} bytes, more than the limit of {limits.MaxLabelNameBytes}";
            }

            if (kv.Value?.ValueCase == AnyValue.ValueOneofCase.StringValue && kv.Value.StringValue.Length * 3 > limits.MaxLabelValueBytes
                && Encoding.UTF8.GetByteCount(kv.Value.StringValue) > limits.MaxLabelValueBytes)
            {
                return $"value of attribute '{Truncate(kv.Key)}' has {Encoding.UTF8.GetByteCount(kv.Value.StringValue)} bytes, more than the limit of {limits.MaxLabelValueBytes}";
            }
        }

        return null;
    }

    private static string Truncate(string s) => s.Length > 64 ? s[..64] + "…" : s;
}

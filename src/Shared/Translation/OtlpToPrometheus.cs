using System.Globalization;
using Google.Protobuf.Collections;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Shared.RemoteWrite.Proto;

namespace PgOtelGateway.Shared.Translation;

/// <summary>What one translation produced and what it could not express.</summary>
public sealed class TranslationResult
{
    /// <summary>One series per sample, labels sorted by name as remote-write requires.</summary>
    public List<TimeSeries> Series { get; } = [];

    /// <summary>Data points that have no Prometheus form here (exponential histograms, delta data left unconverted).</summary>
    public int DroppedPoints { get; set; }

    /// <summary>Why points were dropped, for the log and the dropped-points metric.</summary>
    public string? DropReason { get; set; }
}

/// <summary>
/// Translates OTLP metrics into Prometheus remote-write series by the rules of DESIGN.md §6: gauges and
/// non-monotonic sums → gauges; monotonic cumulative sums → <c>_total</c> counters; histograms →
/// <c>_bucket{le}</c> (cumulative, with <c>+Inf</c>), <c>_sum</c>, <c>_count</c>; summaries → <c>{quantile}</c>,
/// <c>_sum</c>, <c>_count</c>; <c>job</c>/<c>instance</c> from the resource; <c>target_info</c> per resource.
/// Delta temporality must be converted to cumulative before this (see <see cref="DeltaToCumulative"/>).
/// </summary>
public static class OtlpToPrometheus
{
    /// <summary>The value Prometheus reads as a staleness marker.</summary>
    public static readonly double StaleNaN = BitConverter.Int64BitsToDouble(0x7ff0000000000002);

    private const ulong NoRecordedValue = 1;

    /// <summary>Translates a whole request.</summary>
    public static TranslationResult Translate(ExportMetricsServiceRequest request, TranslationOptions options)
    {
        var result = new TranslationResult();
        foreach (var rm in request.ResourceMetrics)
        {
            var resourceAttributes = rm.Resource?.Attributes ?? [];
            var resourceLabels = ResourceLabels(resourceAttributes, options, out var job, out var instance);
            long latestMs = 0;

            foreach (var sm in rm.ScopeMetrics)
            {
                foreach (var metric in sm.Metrics)
                {
                    latestMs = Math.Max(latestMs, TranslateMetric(metric, resourceLabels, job, instance, options, result));
                }
            }

            if (options.TargetInfo && latestMs > 0 && (job.Length > 0 || instance.Length > 0))
            {
                var labels = new LabelSet();
                foreach (var kv in resourceAttributes)
                {
                    if (kv.Key is not ("service.name" or "service.namespace" or "service.instance.id"))
                    {
                        labels.Add(kv.Key, AttributeText(kv.Value));
                    }
                }

                AddJobInstance(labels, job, instance);
                result.Series.Add(labels.ToSeries("target_info", 1, latestMs, options.ExternalLabels));
            }
        }

        return result;
    }

    private static long TranslateMetric(Metric metric, List<(string Key, string Value)> resourceLabels, string job, string instance, TranslationOptions options, TranslationResult result)
    {
        long latestMs = 0;
        switch (metric.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
            {
                var name = PrometheusNaming.MetricName(metric.Name, metric.Unit, PrometheusNaming.MetricKind.Gauge);
                foreach (var p in metric.Gauge.DataPoints)
                {
                    latestMs = Math.Max(latestMs, AddNumber(name, p, resourceLabels, job, instance, options, result));
                }

                break;
            }

            case Metric.DataOneofCase.Sum:
            {
                var sum = metric.Sum;
                if (sum.AggregationTemporality == AggregationTemporality.Delta)
                {
                    Drop(result, sum.DataPoints.Count, "delta sum not converted to cumulative");
                    break;
                }

                var kind = sum.IsMonotonic ? PrometheusNaming.MetricKind.Counter : PrometheusNaming.MetricKind.Gauge;
                var name = PrometheusNaming.MetricName(metric.Name, metric.Unit, kind);
                foreach (var p in sum.DataPoints)
                {
                    latestMs = Math.Max(latestMs, AddNumber(name, p, resourceLabels, job, instance, options, result));
                }

                break;
            }

            case Metric.DataOneofCase.Histogram:
            {
                if (metric.Histogram.AggregationTemporality == AggregationTemporality.Delta)
                {
                    Drop(result, metric.Histogram.DataPoints.Count, "delta histogram not converted to cumulative");
                    break;
                }

                var name = PrometheusNaming.MetricName(metric.Name, metric.Unit, PrometheusNaming.MetricKind.Distribution);
                foreach (var p in metric.Histogram.DataPoints)
                {
                    latestMs = Math.Max(latestMs, AddHistogram(name, p, resourceLabels, job, instance, options, result));
                }

                break;
            }

            case Metric.DataOneofCase.Summary:
            {
                var name = PrometheusNaming.MetricName(metric.Name, metric.Unit, PrometheusNaming.MetricKind.Distribution);
                foreach (var p in metric.Summary.DataPoints)
                {
                    latestMs = Math.Max(latestMs, AddSummary(name, p, resourceLabels, job, instance, options, result));
                }

                break;
            }

            case Metric.DataOneofCase.ExponentialHistogram:
                Drop(result, metric.ExponentialHistogram.DataPoints.Count, "exponential histograms need native-histogram remote write, which is not enabled");
                break;
        }

        return latestMs;
    }

    private static long AddNumber(string name, NumberDataPoint p, List<(string, string)> resourceLabels, string job, string instance, TranslationOptions options, TranslationResult result)
    {
        var ms = Milliseconds(p.TimeUnixNano);
        var value = (p.Flags & NoRecordedValue) != 0 ? StaleNaN
            : p.ValueCase == NumberDataPoint.ValueOneofCase.AsInt ? p.AsInt : p.AsDouble;
        var labels = PointLabels(p.Attributes, resourceLabels, job, instance);
        result.Series.Add(labels.ToSeries(name, value, ms, options.ExternalLabels));
        return ms;
    }

    private static long AddHistogram(string name, HistogramDataPoint p, List<(string, string)> resourceLabels, string job, string instance, TranslationOptions options, TranslationResult result)
    {
        var ms = Milliseconds(p.TimeUnixNano);
        var stale = (p.Flags & NoRecordedValue) != 0;
        var labels = PointLabels(p.Attributes, resourceLabels, job, instance);

        ulong cumulative = 0;
        for (var i = 0; i < p.BucketCounts.Count; i++)
        {
            cumulative += p.BucketCounts[i];
            var le = i < p.ExplicitBounds.Count ? FormatFloat(p.ExplicitBounds[i]) : "+Inf";
            var bucket = labels.With("le", le);
            result.Series.Add(bucket.ToSeries(name + "_bucket", stale ? StaleNaN : cumulative, ms, options.ExternalLabels));
        }

        if (p.BucketCounts.Count == 0)
        {
            result.Series.Add(labels.With("le", "+Inf").ToSeries(name + "_bucket", stale ? StaleNaN : p.Count, ms, options.ExternalLabels));
        }

        if (p.HasSum)
        {
            result.Series.Add(labels.ToSeries(name + "_sum", stale ? StaleNaN : p.Sum, ms, options.ExternalLabels));
        }

        result.Series.Add(labels.ToSeries(name + "_count", stale ? StaleNaN : p.Count, ms, options.ExternalLabels));
        return ms;
    }

    private static long AddSummary(string name, SummaryDataPoint p, List<(string, string)> resourceLabels, string job, string instance, TranslationOptions options, TranslationResult result)
    {
        var ms = Milliseconds(p.TimeUnixNano);
        var stale = (p.Flags & NoRecordedValue) != 0;
        var labels = PointLabels(p.Attributes, resourceLabels, job, instance);
        foreach (var q in p.QuantileValues)
        {
            result.Series.Add(labels.With("quantile", FormatFloat(q.Quantile)).ToSeries(name, stale ? StaleNaN : q.Value, ms, options.ExternalLabels));
        }

        result.Series.Add(labels.ToSeries(name + "_sum", stale ? StaleNaN : p.Sum, ms, options.ExternalLabels));
        result.Series.Add(labels.ToSeries(name + "_count", stale ? StaleNaN : p.Count, ms, options.ExternalLabels));
        return ms;
    }

    private static List<(string Key, string Value)> ResourceLabels(RepeatedField<KeyValue> attributes, TranslationOptions options, out string job, out string instance)
    {
        string? serviceName = null, serviceNamespace = null, instanceId = null;
        var labels = new List<(string, string)>();
        foreach (var kv in attributes)
        {
            switch (kv.Key)
            {
                case "service.name":
                    serviceName = AttributeText(kv.Value);
                    continue;
                case "service.namespace":
                    serviceNamespace = AttributeText(kv.Value);
                    continue;
                case "service.instance.id":
                    instanceId = AttributeText(kv.Value);
                    continue;
            }

            if (options.ResourceToTelemetry || Contains(options.CopyResourceAttributes, kv.Key))
            {
                labels.Add((kv.Key, AttributeText(kv.Value)));
            }
        }

        job = serviceName is null ? "" : string.IsNullOrEmpty(serviceNamespace) ? serviceName : serviceNamespace + "/" + serviceName;
        instance = instanceId ?? "";
        return labels;
    }

    private static LabelSet PointLabels(RepeatedField<KeyValue> attributes, List<(string Key, string Value)> resourceLabels, string job, string instance)
    {
        var labels = new LabelSet();
        foreach (var (k, v) in resourceLabels)
        {
            labels.Add(k, v);
        }

        // Point attributes win over copied resource attributes with the same key.
        foreach (var kv in attributes)
        {
            labels.Set(kv.Key, AttributeText(kv.Value));
        }

        AddJobInstance(labels, job, instance);
        return labels;
    }

    private static void AddJobInstance(LabelSet labels, string job, string instance)
    {
        if (job.Length > 0)
        {
            labels.SetSanitized("job", job);
        }

        if (instance.Length > 0)
        {
            labels.SetSanitized("instance", instance);
        }
    }

    private static bool Contains(IReadOnlyList<string> list, string key)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] == key)
            {
                return true;
            }
        }

        return false;
    }

    private static void Drop(TranslationResult result, int count, string reason)
    {
        result.DroppedPoints += count;
        result.DropReason = reason;
    }

    private static long Milliseconds(ulong unixNano) => (long)(unixNano / 1_000_000);

    /// <summary>Formats a bucket bound or quantile as Prometheus does (<c>0.5</c>, <c>1</c>, <c>+Inf</c>).</summary>
    public static string FormatFloat(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" :
        double.IsNegativeInfinity(value) ? "-Inf" :
        double.IsNaN(value) ? "NaN" :
        value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>An attribute value as label text: strings as they are, others in their JSON-like form.</summary>
    public static string AttributeText(AnyValue? value) => value?.ValueCase switch
    {
        AnyValue.ValueOneofCase.StringValue => value.StringValue,
        AnyValue.ValueOneofCase.BoolValue => value.BoolValue ? "true" : "false",
        AnyValue.ValueOneofCase.IntValue => value.IntValue.ToString(CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.DoubleValue => FormatFloat(value.DoubleValue),
        AnyValue.ValueOneofCase.BytesValue => Convert.ToBase64String(value.BytesValue.Span),
        AnyValue.ValueOneofCase.ArrayValue => "[" + string.Join(",", value.ArrayValue.Values.Select(v => Quote(v))) + "]",
        AnyValue.ValueOneofCase.KvlistValue => "{" + string.Join(",", value.KvlistValue.Values.Select(kv => "\"" + kv.Key + "\":" + Quote(kv.Value))) + "}",
        _ => "",
    };

    private static string Quote(AnyValue v) =>
        v.ValueCase == AnyValue.ValueOneofCase.StringValue ? System.Text.Json.JsonSerializer.Serialize(v.StringValue) : AttributeText(v);
}

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
        var sink = new SeriesListSink(result.Series, options.ExternalLabels);
        var (dropped, reason) = Translate(request, options, sink);
        result.DroppedPoints = dropped;
        result.DropReason = reason;
        return result;
    }

    /// <summary>
    /// Translates a whole request into <paramref name="sink"/>, which sees every series once, in order, while its
    /// labels are valid (the label set is reused for the next series). Returns what could not be expressed.
    /// </summary>
    internal static (int DroppedPoints, string? DropReason) Translate<TSink>(ExportMetricsServiceRequest request, TranslationOptions options, TSink sink)
        where TSink : ISeriesSink
    {
        var state = new State<TSink>(sink, options);
        foreach (var rm in request.ResourceMetrics)
        {
            var resourceAttributes = rm.Resource?.Attributes ?? [];
            var resourceLabels = ResourceLabels(resourceAttributes, options, out var job, out var instance);
            long latestMs = 0;

            foreach (var sm in rm.ScopeMetrics)
            {
                foreach (var metric in sm.Metrics)
                {
                    latestMs = Math.Max(latestMs, TranslateMetric(metric, resourceLabels, job, instance, ref state));
                }
            }

            if (options.TargetInfo && latestMs > 0 && (job.Length > 0 || instance.Length > 0))
            {
                var labels = state.Labels;
                labels.Clear();
                foreach (var kv in resourceAttributes)
                {
                    if (kv.Key is not ("service.name" or "service.namespace" or "service.instance.id"))
                    {
                        labels.Add(kv.Key, AttributeText(kv.Value));
                    }
                }

                AddJobInstance(labels, job, instance);
                sink.Add("target_info", labels, null, null, 1, latestMs);
            }
        }

        return (state.Dropped, state.DropReason);
    }

    /// <summary>What one translation carries along: the sink, a reusable label set, and what was dropped.</summary>
    private struct State<TSink>(TSink sink, TranslationOptions options)
        where TSink : ISeriesSink
    {
        public readonly TSink Sink = sink;
        public readonly TranslationOptions Options = options;
        public readonly LabelSet Labels = new();
        public int Dropped;
        public string? DropReason;
    }

    private static long TranslateMetric<TSink>(Metric metric, List<(string Key, string Value)> resourceLabels, string job, string instance, ref State<TSink> state)
        where TSink : ISeriesSink
    {
        long latestMs = 0;
        switch (metric.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
            {
                var name = PrometheusNaming.MetricName(metric.Name, metric.Unit, PrometheusNaming.MetricKind.Gauge);
                foreach (var p in metric.Gauge.DataPoints)
                {
                    latestMs = Math.Max(latestMs, AddNumber(name, p, resourceLabels, job, instance, ref state));
                }

                break;
            }

            case Metric.DataOneofCase.Sum:
            {
                var sum = metric.Sum;
                if (sum.AggregationTemporality == AggregationTemporality.Delta)
                {
                    Drop(ref state, sum.DataPoints.Count, "delta sum not converted to cumulative");
                    break;
                }

                var kind = sum.IsMonotonic ? PrometheusNaming.MetricKind.Counter : PrometheusNaming.MetricKind.Gauge;
                var name = PrometheusNaming.MetricName(metric.Name, metric.Unit, kind);
                foreach (var p in sum.DataPoints)
                {
                    latestMs = Math.Max(latestMs, AddNumber(name, p, resourceLabels, job, instance, ref state));
                }

                break;
            }

            case Metric.DataOneofCase.Histogram:
            {
                if (metric.Histogram.AggregationTemporality == AggregationTemporality.Delta)
                {
                    Drop(ref state, metric.Histogram.DataPoints.Count, "delta histogram not converted to cumulative");
                    break;
                }

                var names = DistributionNames.For(PrometheusNaming.MetricName(metric.Name, metric.Unit, PrometheusNaming.MetricKind.Distribution));
                foreach (var p in metric.Histogram.DataPoints)
                {
                    latestMs = Math.Max(latestMs, AddHistogram(names, p, resourceLabels, job, instance, ref state));
                }

                break;
            }

            case Metric.DataOneofCase.Summary:
            {
                var names = DistributionNames.For(PrometheusNaming.MetricName(metric.Name, metric.Unit, PrometheusNaming.MetricKind.Distribution));
                foreach (var p in metric.Summary.DataPoints)
                {
                    latestMs = Math.Max(latestMs, AddSummary(names, p, resourceLabels, job, instance, ref state));
                }

                break;
            }

            case Metric.DataOneofCase.ExponentialHistogram:
                Drop(ref state, metric.ExponentialHistogram.DataPoints.Count, "exponential histograms need native-histogram remote write, which is not enabled");
                break;
        }

        return latestMs;
    }

    private static long AddNumber<TSink>(string name, NumberDataPoint p, List<(string, string)> resourceLabels, string job, string instance, ref State<TSink> state)
        where TSink : ISeriesSink
    {
        var ms = Milliseconds(p.TimeUnixNano);
        var value = (p.Flags & NoRecordedValue) != 0 ? StaleNaN
            : p.ValueCase == NumberDataPoint.ValueOneofCase.AsInt ? p.AsInt : p.AsDouble;
        var labels = PointLabels(state.Labels, p.Attributes, resourceLabels, job, instance);
        state.Sink.Add(name, labels, null, null, value, ms);
        return ms;
    }

    private static long AddHistogram<TSink>(DistributionNames names, HistogramDataPoint p, List<(string, string)> resourceLabels, string job, string instance, ref State<TSink> state)
        where TSink : ISeriesSink
    {
        var ms = Milliseconds(p.TimeUnixNano);
        var stale = (p.Flags & NoRecordedValue) != 0;
        var labels = PointLabels(state.Labels, p.Attributes, resourceLabels, job, instance);
        var sink = state.Sink;

        ulong cumulative = 0;
        for (var i = 0; i < p.BucketCounts.Count; i++)
        {
            cumulative += p.BucketCounts[i];
            var le = i < p.ExplicitBounds.Count ? FormatBound(p.ExplicitBounds[i]) : "+Inf";
            sink.Add(names.Bucket, labels, "le", le, stale ? StaleNaN : cumulative, ms);
        }

        if (p.BucketCounts.Count == 0)
        {
            sink.Add(names.Bucket, labels, "le", "+Inf", stale ? StaleNaN : p.Count, ms);
        }

        if (p.HasSum)
        {
            sink.Add(names.Sum, labels, null, null, stale ? StaleNaN : p.Sum, ms);
        }

        sink.Add(names.Count, labels, null, null, stale ? StaleNaN : p.Count, ms);
        return ms;
    }

    private static long AddSummary<TSink>(DistributionNames names, SummaryDataPoint p, List<(string, string)> resourceLabels, string job, string instance, ref State<TSink> state)
        where TSink : ISeriesSink
    {
        var ms = Milliseconds(p.TimeUnixNano);
        var stale = (p.Flags & NoRecordedValue) != 0;
        var labels = PointLabels(state.Labels, p.Attributes, resourceLabels, job, instance);
        var sink = state.Sink;
        foreach (var q in p.QuantileValues)
        {
            sink.Add(names.Base, labels, "quantile", FormatBound(q.Quantile), stale ? StaleNaN : q.Value, ms);
        }

        sink.Add(names.Sum, labels, null, null, stale ? StaleNaN : p.Sum, ms);
        sink.Add(names.Count, labels, null, null, stale ? StaleNaN : p.Count, ms);
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

    private static LabelSet PointLabels(LabelSet labels, RepeatedField<KeyValue> attributes, List<(string Key, string Value)> resourceLabels, string job, string instance)
    {
        labels.Clear();
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

    private static void Drop<TSink>(ref State<TSink> state, int count, string reason)
        where TSink : ISeriesSink
    {
        state.Dropped += count;
        state.DropReason = reason;
    }

    private static long Milliseconds(ulong unixNano) => (long)(unixNano / 1_000_000);

    /// <summary><see cref="FormatFloat"/> through a bounded cache: the same few bounds and quantiles repeat on every point.</summary>
    private static string FormatBound(double value)
    {
        var bits = BitConverter.DoubleToInt64Bits(value);
        if (BoundCache.TryGetValue(bits, out var text))
        {
            return text;
        }

        text = FormatFloat(value);
        if (BoundCache.Count < 10_000)
        {
            BoundCache[bits] = text;
        }

        return text;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<long, string> BoundCache = new();

    /// <summary>The series names of a histogram or summary, built once per metric rather than per point.</summary>
    private sealed class DistributionNames
    {
        private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, DistributionNames> Cache = new(StringComparer.Ordinal);

        private DistributionNames(string name)
        {
            Base = name;
            Bucket = name + "_bucket";
            Sum = name + "_sum";
            Count = name + "_count";
        }

        public string Base { get; }

        public string Bucket { get; }

        public string Sum { get; }

        public string Count { get; }

        public static DistributionNames For(string name)
        {
            if (Cache.TryGetValue(name, out var names))
            {
                return names;
            }

            names = new DistributionNames(name);
            if (Cache.Count < 10_000)
            {
                Cache[name] = names;
            }

            return names;
        }
    }

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

using System.Buffers;
using System.Diagnostics;
using System.Net.Http.Headers;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Agent.Collection;

namespace PgOtelGateway.Agent.Scrape;

/// <summary>
/// One target of one scrape job: fetches its exposition, applies <c>metric_relabel_configs</c>, and turns the
/// families into OTLP under a resource with <c>service.name</c> = job and <c>service.instance.id</c> = target.
/// Counters, histograms and summaries become cumulative data with a start time that this target remembers per
/// series (the first scrape that saw the series, moved forward when the value goes down: a reset).
/// </summary>
internal sealed class PrometheusTarget
{
    private const ulong NanosPerMilli = 1_000_000;
    private readonly ScrapeConfig _job;
    private readonly HttpClient _http;
    private readonly Uri _url;
    private readonly PromLabel[] _targetLabels;
    private readonly Resource _resource;
    private readonly PrometheusTextParser _parser = new();
    private readonly Dictionary<SeriesKey, SeriesState> _series = new(SeriesKeyComparer.Instance);
    private readonly List<PromLabel> _scratch = [];
    private int _generation;

    public PrometheusTarget(ScrapeConfig job, string target, IReadOnlyDictionary<string, string> staticLabels, PgResourceOptions resource, HttpClient http)
    {
        _job = job;
        _http = http;
        Target = target;
        _url = new Uri($"{job.Scheme}://{target}{job.MetricsPath}");
        var labels = new List<PromLabel>(staticLabels.Count);
        foreach (var (k, v) in staticLabels)
        {
            labels.Add(new PromLabel(k, v));
        }

        _targetLabels = [.. labels];
        _resource = BuildResource(job.JobName, target, job.Scheme, resource);
    }

    public string Job => _job.JobName;

    public string Target { get; }

    /// <summary>Why the last scrape failed, or null.</summary>
    public string? LastError { get; private set; }

    /// <summary>Lines of the last exposition that could not be parsed.</summary>
    public int LastInvalidLines { get; private set; }

    private static Resource BuildResource(string job, string target, string scheme, PgResourceOptions options)
    {
        var resource = new Resource();
        void Add(string key, string value)
        {
            if (value.Length > 0)
            {
                resource.Attributes.Add(new KeyValue { Key = key, Value = new AnyValue { StringValue = value } });
            }
        }

        Add("service.name", job);
        Add("service.instance.id", target);
        var colon = target.LastIndexOf(':');
        Add("server.address", colon > 0 ? target[..colon] : target);
        Add("server.port", colon > 0 ? target[(colon + 1)..] : "");
        Add("url.scheme", scheme);
        Add("db.cluster", options.Cluster);
        Add("deployment.environment", options.Environment);
        Add("host.name", options.HostName.Length > 0 ? options.HostName : Environment.MachineName.ToLowerInvariant());
        Add("agent.id", options.AgentId.Length > 0 ? options.AgentId : Environment.MachineName.ToLowerInvariant());
        foreach (var (key, value) in options.Attributes)
        {
            Add(key, value);
        }

        return resource;
    }

    /// <summary>Scrapes once; points without their own timestamp carry <paramref name="at"/>.</summary>
    public async Task<ResourceMetrics> ScrapeAsync(DateTimeOffset at, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var started = Stopwatch.StartNew();
        var time = (ulong)at.ToUnixTimeMilliseconds() * NanosPerMilli;
        var scope = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent/prometheus", Version = typeof(PrometheusTarget).Assembly.GetName().Version?.ToString(3) ?? "" } };
        var up = 0;
        int scraped = 0, kept = 0;
        char[]? buffer = null;
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            using var request = new HttpRequestMessage(HttpMethod.Get, _url);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/plain") { Parameters = { new NameValueHeaderValue("version", "0.0.4") } });
            request.Headers.Add("X-Prometheus-Scrape-Timeout-Seconds", timeout.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture));
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new HttpRequestException($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            }

            var length = 0;
            buffer = ArrayPool<char>.Shared.Rent(64 * 1024);
            await using (var stream = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false))
            using (var reader = new StreamReader(stream, System.Text.Encoding.UTF8))
            {
                while (true)
                {
                    if (length == buffer.Length)
                    {
                        var bigger = ArrayPool<char>.Shared.Rent(buffer.Length * 2);
                        buffer.AsSpan(0, length).CopyTo(bigger);
                        ArrayPool<char>.Shared.Return(buffer);
                        buffer = bigger;
                    }

                    var read = await reader.ReadAsync(buffer.AsMemory(length), deadline.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    length += read;
                }
            }

            (scraped, kept) = Build(buffer.AsSpan(0, length), time, scope);
            ForgetOldSeries();
            up = 1;
            LastError = _parser.FirstProblem is { } problem ? $"{_parser.InvalidLines} lines skipped; first: {problem}" : null;
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or InvalidDataException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            LastError = ex is OperationCanceledException ? $"timed out after {timeout.TotalSeconds:0.###} s" : ex.Message;
            scope.Metrics.Clear();
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<char>.Shared.Return(buffer);
            }
        }

        // The series Prometheus adds to every scrape.
        AddSynthetic(scope, "up", "1 if the target was scraped, 0 if it was not.", "", up, time);
        AddSynthetic(scope, "scrape_duration_seconds", "How long the scrape took.", "s", started.Elapsed.TotalSeconds, time);
        AddSynthetic(scope, "scrape_samples_scraped", "Samples the target exposed.", "", scraped, time);
        AddSynthetic(scope, "scrape_samples_post_metric_relabeling", "Samples left after metric_relabel_configs.", "", kept, time);
        var rm = new ResourceMetrics { Resource = _resource.Clone() };
        rm.ScopeMetrics.Add(scope);
        return rm;
    }

    /// <summary>Parses and converts an exposition as one scrape would (for tests): the points and the synthetic series.</summary>
    internal ResourceMetrics FromText(string text, DateTimeOffset at)
    {
        var time = (ulong)at.ToUnixTimeMilliseconds() * NanosPerMilli;
        var scope = new ScopeMetrics();
        var (scraped, kept) = Build(text, time, scope);
        ForgetOldSeries();
        AddSynthetic(scope, "scrape_samples_scraped", "", "", scraped, time);
        AddSynthetic(scope, "scrape_samples_post_metric_relabeling", "", "", kept, time);
        var rm = new ResourceMetrics { Resource = _resource.Clone() };
        rm.ScopeMetrics.Add(scope);
        return rm;
    }

    private (int Scraped, int Kept) Build(ReadOnlySpan<char> text, ulong time, ScopeMetrics scope)
    {
        var families = _parser.Parse(text);
        LastInvalidLines = _parser.InvalidLines;
        _generation++;
        var scraped = 0;
        foreach (var family in families)
        {
            scraped += family.Samples.Count;
        }

        if (_job.SampleLimit > 0 && scraped > _job.SampleLimit)
        {
            throw new InvalidDataException($"{scraped} samples exceed sample_limit {_job.SampleLimit}");
        }

        var kept = 0;
        foreach (var family in families)
        {
            kept += Convert(family, time, scope);
        }

        return (scraped, kept);
    }

    private static void AddSynthetic(ScopeMetrics scope, string name, string description, string unit, double value, ulong time)
    {
        var metric = new Metric { Name = name, Description = description, Unit = unit, Gauge = new Gauge() };
        metric.Gauge.DataPoints.Add(new NumberDataPoint { TimeUnixNano = time, AsDouble = value });
        scope.Metrics.Add(metric);
    }

    /// <summary>Converts one family; returns the samples kept after relabelling.</summary>
    private int Convert(PromFamily family, ulong time, ScopeMetrics scope)
    {
        var kept = 0;
        Metric? metric = null;
        Dictionary<SeriesKey, int>? groups = null;
        foreach (var sample in family.Samples)
        {
            if (!Keep(sample))
            {
                continue;
            }

            kept++;
            var pointTime = sample.TimestampMs is { } ms && ms > 0 ? (ulong)ms * NanosPerMilli : time;
            switch (family.Type)
            {
                case PromMetricType.Counter:
                {
                    metric ??= NewMetric(family, m => m.Sum = new Sum { AggregationTemporality = AggregationTemporality.Cumulative, IsMonotonic = true });
                    var point = new NumberDataPoint { TimeUnixNano = pointTime, AsDouble = sample.Value };
                    AddAttributes(point.Attributes, sample.Labels, null);
                    point.StartTimeUnixNano = StartTime(new SeriesKey(family.Name, sample.Labels), sample.Value, pointTime);
                    metric.Sum.DataPoints.Add(point);
                    break;
                }

                case PromMetricType.Gauge or PromMetricType.Untyped:
                {
                    metric ??= NewMetric(family, m => m.Gauge = new Gauge());
                    var point = new NumberDataPoint { TimeUnixNano = pointTime, AsDouble = sample.Value };
                    AddAttributes(point.Attributes, sample.Labels, null);
                    metric.Gauge.DataPoints.Add(point);
                    break;
                }

                case PromMetricType.Histogram:
                    metric ??= NewMetric(family, m => m.Histogram = new Histogram { AggregationTemporality = AggregationTemporality.Cumulative });
                    AddHistogramSample(family, metric.Histogram, sample, pointTime, groups ??= new(SeriesKeyComparer.Instance));
                    break;

                case PromMetricType.Summary:
                    metric ??= NewMetric(family, m => m.Summary = new Summary());
                    AddSummarySample(family, metric.Summary, sample, pointTime, groups ??= new(SeriesKeyComparer.Instance));
                    break;
            }
        }

        if (metric is null)
        {
            return kept;
        }

        if (metric.DataCase == Metric.DataOneofCase.Histogram)
        {
            FinishHistograms(family, metric.Histogram);
        }
        else if (metric.DataCase == Metric.DataOneofCase.Summary)
        {
            foreach (var p in metric.Summary.DataPoints)
            {
                p.StartTimeUnixNano = StartTime(new SeriesKey(family.Name, KeyOf(p.Attributes)), p.Count, p.TimeUnixNano);
            }
        }

        scope.Metrics.Add(metric);
        return kept;
    }

    private static Metric NewMetric(PromFamily family, Action<Metric> data)
    {
        // The exposition format has no units; names stay as the target wrote them (no unit suffixes added).
        var metric = new Metric { Name = family.Name, Description = family.Help };
        data(metric);
        return metric;
    }

    /// <summary>The labels of a histogram / summary sample without <paramref name="skip"/> (le, quantile).</summary>
    private PromLabel[] Without(PromLabel[] labels, string skip, out string? skipped)
    {
        skipped = null;
        _scratch.Clear();
        foreach (var l in labels)
        {
            if (l.Name == skip)
            {
                skipped = l.Value;
            }
            else
            {
                _scratch.Add(l);
            }
        }

        return skipped is null ? labels : [.. _scratch];
    }

    private void AddHistogramSample(PromFamily family, Histogram histogram, PromSample sample, ulong time, Dictionary<SeriesKey, int> groups)
    {
        var labels = Without(sample.Labels, "le", out var le);
        var key = new SeriesKey(family.Name, labels);
        if (!groups.TryGetValue(key, out var index))
        {
            index = histogram.DataPoints.Count;
            groups[key] = index;
            var p = new HistogramDataPoint { TimeUnixNano = time };
            AddAttributes(p.Attributes, labels, null);
            histogram.DataPoints.Add(p);
            _pendingBuckets.Add([]);
        }

        var point = histogram.DataPoints[index];
        var suffix = sample.Name.AsSpan(family.Name.Length);
        if (suffix.SequenceEqual("_bucket"))
        {
            if (le is not null && PrometheusTextParser.TryParseValue(le, out var bound))
            {
                _pendingBuckets[index].Add((bound, sample.Value));
            }
        }
        else if (suffix.SequenceEqual("_sum"))
        {
            point.Sum = sample.Value;
        }
        else if (suffix.SequenceEqual("_count"))
        {
            point.Count = (ulong)Math.Max(0, sample.Value);
            _hasCount.Add(index);
        }
    }

    private readonly List<List<(double Bound, double Cumulative)>> _pendingBuckets = [];
    private readonly HashSet<int> _hasCount = [];

    private void FinishHistograms(PromFamily family, Histogram histogram)
    {
        for (var i = 0; i < histogram.DataPoints.Count; i++)
        {
            var point = histogram.DataPoints[i];
            var buckets = _pendingBuckets[i];
            buckets.Sort((a, b) => a.Bound.CompareTo(b.Bound));
            double previous = 0;
            foreach (var (bound, cumulative) in buckets)
            {
                if (!double.IsPositiveInfinity(bound))
                {
                    point.ExplicitBounds.Add(bound);
                }

                point.BucketCounts.Add((ulong)Math.Max(0, cumulative - previous));
                previous = cumulative;
            }

            if (buckets.Count > 0 && !double.IsPositiveInfinity(buckets[^1].Bound))
            {
                // No +Inf bucket was exposed: the overflow bucket holds what _count has beyond the last bound.
                point.BucketCounts.Add(_hasCount.Contains(i) ? (ulong)Math.Max(0, point.Count - previous) : 0);
            }

            if (!_hasCount.Contains(i) && buckets.Count > 0)
            {
                point.Count = (ulong)Math.Max(0, buckets[^1].Cumulative);
            }

            point.StartTimeUnixNano = StartTime(new SeriesKey(family.Name, KeyOf(point.Attributes)), point.Count, point.TimeUnixNano);
        }

        _pendingBuckets.Clear();
        _hasCount.Clear();
    }

    private void AddSummarySample(PromFamily family, Summary summary, PromSample sample, ulong time, Dictionary<SeriesKey, int> groups)
    {
        var labels = Without(sample.Labels, "quantile", out var quantile);
        var key = new SeriesKey(family.Name, labels);
        if (!groups.TryGetValue(key, out var index))
        {
            index = summary.DataPoints.Count;
            groups[key] = index;
            var p = new SummaryDataPoint { TimeUnixNano = time };
            AddAttributes(p.Attributes, labels, null);
            summary.DataPoints.Add(p);
        }

        var point = summary.DataPoints[index];
        var suffix = sample.Name.AsSpan(family.Name.Length);
        if (quantile is not null && suffix.IsEmpty)
        {
            if (PrometheusTextParser.TryParseValue(quantile, out var q))
            {
                point.QuantileValues.Add(new SummaryDataPoint.Types.ValueAtQuantile { Quantile = q, Value = sample.Value });
            }
        }
        else if (suffix.SequenceEqual("_sum"))
        {
            point.Sum = sample.Value;
        }
        else if (suffix.SequenceEqual("_count"))
        {
            point.Count = (ulong)Math.Max(0, sample.Value);
        }
    }

    /// <summary>The start time of a cumulative series: when it was first seen, or when it last went down.</summary>
    private ulong StartTime(SeriesKey key, double value, ulong time)
    {
        if (!_series.TryGetValue(key, out var state))
        {
            _series[key] = new SeriesState { Start = time, Last = value, Generation = _generation };
            return time;
        }

        if (value < state.Last)
        {
            state.Start = time;
        }

        state.Last = value;
        state.Generation = _generation;
        return state.Start;
    }

    /// <summary>Series not seen for five scrapes are forgotten, so churning label values cannot grow the state.</summary>
    private void ForgetOldSeries()
    {
        if (_generation % 5 != 0)
        {
            return;
        }

        List<SeriesKey>? stale = null;
        foreach (var (key, state) in _series)
        {
            if (_generation - state.Generation >= 5)
            {
                (stale ??= []).Add(key);
            }
        }

        if (stale is not null)
        {
            foreach (var key in stale)
            {
                _series.Remove(key);
            }
        }
    }

    private bool Keep(PromSample sample)
    {
        foreach (var rule in _job.MetricRelabelConfigs)
        {
            bool match;
            if (rule.SourceLabels.Count == 1)
            {
                match = rule.Compiled.IsMatch(LabelValue(sample, rule.SourceLabels[0]));
            }
            else
            {
                var values = new string[rule.SourceLabels.Count];
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = LabelValue(sample, rule.SourceLabels[i]);
                }

                match = rule.Compiled.IsMatch(string.Join(rule.Separator, values));
            }

            if (match != (rule.Action == RelabelAction.Keep))
            {
                return false;
            }
        }

        return true;
    }

    private string LabelValue(PromSample sample, string name)
    {
        switch (name)
        {
            case "__name__":
                return sample.Name;
            case "job":
                return _job.JobName;
            case "instance":
                return Target;
        }

        foreach (var l in sample.Labels)
        {
            if (l.Name == name)
            {
                return l.Value;
            }
        }

        foreach (var l in _targetLabels)
        {
            if (l.Name == name)
            {
                return l.Value;
            }
        }

        return "";
    }

    private void AddAttributes(Google.Protobuf.Collections.RepeatedField<KeyValue> attributes, PromLabel[] labels, string? skip)
    {
        foreach (var l in labels)
        {
            if (l.Name == skip)
            {
                continue;
            }

            var name = l.Name;
            if (!_job.HonorLabels && (name is "job" or "instance" || IsTargetLabel(name)))
            {
                // As Prometheus does: a target's own job/instance (or a static label) is kept as exported_*.
                name = "exported_" + name;
            }

            attributes.Add(new KeyValue { Key = name, Value = new AnyValue { StringValue = l.Value } });
        }

        foreach (var t in _targetLabels)
        {
            if (_job.HonorLabels && Has(labels, t.Name))
            {
                continue;
            }

            attributes.Add(new KeyValue { Key = t.Name, Value = new AnyValue { StringValue = t.Value } });
        }
    }

    private bool IsTargetLabel(string name)
    {
        foreach (var t in _targetLabels)
        {
            if (t.Name == name)
            {
                return true;
            }
        }

        return false;
    }

    private static bool Has(PromLabel[] labels, string name)
    {
        foreach (var l in labels)
        {
            if (l.Name == name)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The series key of a converted point (its attributes, which include the target labels).</summary>
    private static PromLabel[] KeyOf(Google.Protobuf.Collections.RepeatedField<KeyValue> attributes)
    {
        var labels = new PromLabel[attributes.Count];
        for (var i = 0; i < labels.Length; i++)
        {
            labels[i] = new PromLabel(attributes[i].Key, attributes[i].Value.StringValue);
        }

        return labels;
    }

    private sealed class SeriesState
    {
        public ulong Start;
        public double Last;
        public int Generation;
    }

    private readonly record struct SeriesKey(string Name, PromLabel[] Labels);

    private sealed class SeriesKeyComparer : IEqualityComparer<SeriesKey>
    {
        public static readonly SeriesKeyComparer Instance = new();

        public bool Equals(SeriesKey x, SeriesKey y)
        {
            if (!string.Equals(x.Name, y.Name, StringComparison.Ordinal) || x.Labels.Length != y.Labels.Length)
            {
                return false;
            }

            for (var i = 0; i < x.Labels.Length; i++)
            {
                if (!string.Equals(x.Labels[i].Name, y.Labels[i].Name, StringComparison.Ordinal) || !string.Equals(x.Labels[i].Value, y.Labels[i].Value, StringComparison.Ordinal))
                {
                    return false;
                }
            }

            return true;
        }

        public int GetHashCode(SeriesKey key)
        {
            var hash = new HashCode();
            hash.Add(key.Name, StringComparer.Ordinal);
            foreach (var l in key.Labels)
            {
                hash.Add(l.Name, StringComparer.Ordinal);
                hash.Add(l.Value, StringComparer.Ordinal);
            }

            return hash.ToHashCode();
        }
    }
}

using System.Globalization;
using System.Text;
using Google.Protobuf.Collections;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;

namespace PgOtelGateway.Gateway.Export.Parquet;

/// <summary>
/// The resource of a group of rows: the well-known attributes that have columns of their own, the rest as a map,
/// and a key that identifies the resource for sorting. Shared by every row of one <c>ResourceMetrics</c>.
/// </summary>
internal sealed class RowResource
{
    public static readonly RowResource Empty = new(null, null, null, null, null, [], "");

    public RowResource(string? serviceName, string? dbCluster, string? dbInstance, string? dbRole, string? hostName, KeyValuePair<string, string>[] others, string key)
    {
        ServiceName = serviceName;
        DbCluster = dbCluster;
        DbInstance = dbInstance;
        DbRole = dbRole;
        HostName = hostName;
        Others = others;
        Key = key;
    }

    public string? ServiceName { get; }

    public string? DbCluster { get; }

    public string? DbInstance { get; }

    public string? DbRole { get; }

    public string? HostName { get; }

    /// <summary>Every other resource attribute, sorted by key.</summary>
    public KeyValuePair<string, string>[] Others { get; }

    /// <summary>An ordinal sort key of all the resource's attributes.</summary>
    public string Key { get; }
}

/// <summary>One Parquet row: one data point (a summary's quantiles become rows of their own).</summary>
internal struct MetricRow
{
    public long TimeUnixNano;
    public long StartTimeUnixNano;
    public string MetricName;
    public string MetricType;
    public string Unit;
    public string? Temporality;
    public bool? IsMonotonic;
    public double? ValueDouble;
    public long? ValueInt;
    public long? Count;
    public double? Sum;
    public double[]? ExplicitBounds;
    public long[]? BucketCounts;
    public RowResource Resource;
    public KeyValuePair<string, string>[] Attributes;
    public string AttributesKey;
    public string? ScopeName;
}

/// <summary>
/// Flattens OTLP requests into <see cref="MetricRow"/>s, one per data point, and sorts them by metric, series
/// and time so that equal values sit next to each other (long dictionary runs, small deltas). Strings are
/// interned per set, so a file's million rows share a few thousand string objects.
/// </summary>
internal sealed class MetricRowSet
{
    public const string WellKnownServiceName = "service.name";
    public const string WellKnownDbCluster = "db.cluster";
    public const string WellKnownDbInstance = "db.instance";
    public const string WellKnownDbRole = "db.role";
    public const string WellKnownHostName = "host.name";

    private static readonly KeyValuePair<string, string>[] NoAttributes = [];
    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RowResource> _resources = new(StringComparer.Ordinal);
    private readonly Dictionary<string, KeyValuePair<string, string>[]> _attributeSets = new(StringComparer.Ordinal);
    private readonly StringBuilder _key = new();
    private MetricRow[] _rows = new MetricRow[1024];
    private int _count;

    /// <summary>Rows added so far.</summary>
    public int Count => _count;

    /// <summary>The rows (valid up to <see cref="Count"/>).</summary>
    public ReadOnlySpan<MetricRow> Rows => _rows.AsSpan(0, _count);

    /// <summary>The row at <paramref name="index"/>.</summary>
    public ref readonly MetricRow this[int index] => ref _rows[index];

    /// <summary>Forgets every row, keeping the buffers and interned strings.</summary>
    public void Clear()
    {
        Array.Clear(_rows, 0, _count);
        _count = 0;
    }

    /// <summary>Adds one row per data point of <paramref name="request"/>; returns how many were added.</summary>
    public int Add(ExportMetricsServiceRequest request)
    {
        var before = _count;
        foreach (var rm in request.ResourceMetrics)
        {
            var resource = ResourceOf(rm.Resource);
            foreach (var sm in rm.ScopeMetrics)
            {
                var scope = sm.Scope is { Name.Length: > 0 } s ? Intern(s.Name) : null;
                foreach (var metric in sm.Metrics)
                {
                    AddMetric(metric, resource, scope);
                }
            }
        }

        return _count - before;
    }

    /// <summary>
    /// Sorts the rows by time partition (<paramref name="bucketNanos"/> wide; 0 for none), metric name, resource,
    /// point attributes, then time.
    /// </summary>
    public void Sort(long bucketNanos = 0) => _rows.AsSpan(0, _count).Sort((a, b) =>
    {
        if (bucketNanos > 0)
        {
            var p = (a.TimeUnixNano / bucketNanos).CompareTo(b.TimeUnixNano / bucketNanos);
            if (p != 0)
            {
                return p;
            }
        }

        var c = string.CompareOrdinal(a.MetricName, b.MetricName);
        if (c != 0)
        {
            return c;
        }

        c = ReferenceEquals(a.Resource, b.Resource) ? 0 : string.CompareOrdinal(a.Resource.Key, b.Resource.Key);
        if (c != 0)
        {
            return c;
        }

        c = ReferenceEquals(a.AttributesKey, b.AttributesKey) ? 0 : string.CompareOrdinal(a.AttributesKey, b.AttributesKey);
        return c != 0 ? c : a.TimeUnixNano.CompareTo(b.TimeUnixNano);
    });

    private void AddMetric(Metric metric, RowResource resource, string? scope)
    {
        var name = Intern(metric.Name);
        var unit = Intern(metric.Unit);
        switch (metric.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
                foreach (var p in metric.Gauge.DataPoints)
                {
                    ref var row = ref NewRow(name, "gauge", unit, resource, scope, p.TimeUnixNano, p.StartTimeUnixNano, p.Attributes);
                    SetNumber(ref row, p);
                }

                break;
            case Metric.DataOneofCase.Sum:
                var temporality = Temporality(metric.Sum.AggregationTemporality);
                foreach (var p in metric.Sum.DataPoints)
                {
                    ref var row = ref NewRow(name, "sum", unit, resource, scope, p.TimeUnixNano, p.StartTimeUnixNano, p.Attributes);
                    row.Temporality = temporality;
                    row.IsMonotonic = metric.Sum.IsMonotonic;
                    SetNumber(ref row, p);
                }

                break;
            case Metric.DataOneofCase.Histogram:
                var htemporality = Temporality(metric.Histogram.AggregationTemporality);
                foreach (var p in metric.Histogram.DataPoints)
                {
                    ref var row = ref NewRow(name, "histogram", unit, resource, scope, p.TimeUnixNano, p.StartTimeUnixNano, p.Attributes);
                    row.Temporality = htemporality;
                    row.Count = (long)p.Count;
                    row.Sum = p.HasSum ? p.Sum : null;
                    row.ExplicitBounds = [.. p.ExplicitBounds];
                    var counts = new long[p.BucketCounts.Count];
                    for (var i = 0; i < counts.Length; i++)
                    {
                        counts[i] = (long)p.BucketCounts[i];
                    }

                    row.BucketCounts = counts;
                }

                break;
            case Metric.DataOneofCase.ExponentialHistogram:
                var etemporality = Temporality(metric.ExponentialHistogram.AggregationTemporality);
                foreach (var p in metric.ExponentialHistogram.DataPoints)
                {
                    ref var row = ref NewRow(name, "exponential_histogram", unit, resource, scope, p.TimeUnixNano, p.StartTimeUnixNano, p.Attributes);
                    row.Temporality = etemporality;
                    row.Count = (long)p.Count;
                    row.Sum = p.HasSum ? p.Sum : null;
                    (row.ExplicitBounds, row.BucketCounts) = ExponentialToExplicit(p);
                }

                break;
            case Metric.DataOneofCase.Summary:
                foreach (var p in metric.Summary.DataPoints)
                {
                    ref var row = ref NewRow(name, "summary", unit, resource, scope, p.TimeUnixNano, p.StartTimeUnixNano, p.Attributes);
                    row.Count = (long)p.Count;
                    row.Sum = p.Sum;

                    // Each quantile is a row of its own with a `quantile` attribute, the way Prometheus shows a summary.
                    foreach (var q in p.QuantileValues)
                    {
                        var attributes = new RepeatedField<KeyValue> { p.Attributes };
                        attributes.Add(new KeyValue { Key = "quantile", Value = new AnyValue { StringValue = q.Quantile.ToString("R", CultureInfo.InvariantCulture) } });
                        ref var qrow = ref NewRow(name, "summary", unit, resource, scope, p.TimeUnixNano, p.StartTimeUnixNano, attributes);
                        qrow.ValueDouble = q.Value;
                    }
                }

                break;
        }
    }

    /// <summary>The earliest point time of a request (Unix nanoseconds), or <see cref="long.MaxValue"/> when it has none.</summary>
    public static long Earliest(ExportMetricsServiceRequest request)
    {
        var first = long.MaxValue;
        foreach (var rm in request.ResourceMetrics)
        {
            foreach (var sm in rm.ScopeMetrics)
            {
                foreach (var metric in sm.Metrics)
                {
                    switch (metric.DataCase)
                    {
                        case Metric.DataOneofCase.Gauge:
                            foreach (var p in metric.Gauge.DataPoints)
                            {
                                first = Math.Min(first, (long)p.TimeUnixNano);
                            }

                            break;
                        case Metric.DataOneofCase.Sum:
                            foreach (var p in metric.Sum.DataPoints)
                            {
                                first = Math.Min(first, (long)p.TimeUnixNano);
                            }

                            break;
                        case Metric.DataOneofCase.Histogram:
                            foreach (var p in metric.Histogram.DataPoints)
                            {
                                first = Math.Min(first, (long)p.TimeUnixNano);
                            }

                            break;
                        case Metric.DataOneofCase.ExponentialHistogram:
                            foreach (var p in metric.ExponentialHistogram.DataPoints)
                            {
                                first = Math.Min(first, (long)p.TimeUnixNano);
                            }

                            break;
                        case Metric.DataOneofCase.Summary:
                            foreach (var p in metric.Summary.DataPoints)
                            {
                                first = Math.Min(first, (long)p.TimeUnixNano);
                            }

                            break;
                    }
                }
            }
        }

        return first;
    }

    /// <summary>
    /// An exponential histogram as explicit buckets: the first bucket holds the zero and negative counts
    /// (≤ base^offset), then one bucket per positive bucket with its upper bound, then an empty overflow bucket.
    /// </summary>
    internal static (double[] Bounds, long[] Counts) ExponentialToExplicit(ExponentialHistogramDataPoint p)
    {
        var positive = p.Positive?.BucketCounts;
        var n = positive?.Count ?? 0;
        var offset = p.Positive?.Offset ?? 0;
        var baseValue = Math.Pow(2, Math.Pow(2, -p.Scale));
        var bounds = new double[n + 1];
        var counts = new long[n + 2];
        for (var i = 0; i <= n; i++)
        {
            bounds[i] = Math.Pow(baseValue, offset + i);
        }

        long low = (long)p.ZeroCount;
        if (p.Negative is { } negative)
        {
            foreach (var c in negative.BucketCounts)
            {
                low += (long)c;
            }
        }

        counts[0] = low;
        for (var i = 0; i < n; i++)
        {
            counts[i + 1] = (long)positive![i];
        }

        return (bounds, counts);
    }

    private static string? Temporality(AggregationTemporality temporality) => temporality switch
    {
        AggregationTemporality.Cumulative => "cumulative",
        AggregationTemporality.Delta => "delta",
        _ => null,
    };

    private static void SetNumber(ref MetricRow row, NumberDataPoint p)
    {
        if (p.ValueCase == NumberDataPoint.ValueOneofCase.AsInt)
        {
            row.ValueInt = p.AsInt;
        }
        else if (p.ValueCase == NumberDataPoint.ValueOneofCase.AsDouble)
        {
            row.ValueDouble = p.AsDouble;
        }
    }

    private ref MetricRow NewRow(string name, string type, string unit, RowResource resource, string? scope, ulong time, ulong start, RepeatedField<KeyValue> attributes)
    {
        if (_count == _rows.Length)
        {
            Array.Resize(ref _rows, _rows.Length * 2);
        }

        ref var row = ref _rows[_count++];
        row.MetricName = name;
        row.MetricType = type;
        row.Unit = unit;
        row.Resource = resource;
        row.ScopeName = scope;
        row.TimeUnixNano = (long)time;
        row.StartTimeUnixNano = (long)start;
        (row.Attributes, row.AttributesKey) = AttributesOf(attributes);
        return ref row;
    }

    private RowResource ResourceOf(Resource? resource)
    {
        if (resource is null || resource.Attributes.Count == 0)
        {
            return RowResource.Empty;
        }

        var (pairs, key) = AttributesOf(resource.Attributes);
        if (_resources.TryGetValue(key, out var known))
        {
            return known;
        }

        string? service = null, cluster = null, instance = null, role = null, host = null;
        var others = new List<KeyValuePair<string, string>>(pairs.Length);
        foreach (var pair in pairs)
        {
            switch (pair.Key)
            {
                case WellKnownServiceName: service = pair.Value; break;
                case WellKnownDbCluster: cluster = pair.Value; break;
                case WellKnownDbInstance: instance = pair.Value; break;
                case WellKnownDbRole: role = pair.Value; break;
                case WellKnownHostName: host = pair.Value; break;
                default: others.Add(pair); break;
            }
        }

        var made = new RowResource(service, cluster, instance, role, host, [.. others], key);
        _resources[key] = made;
        return made;
    }

    /// <summary>The attributes as sorted, interned pairs, and their key (the same array for the same set).</summary>
    private (KeyValuePair<string, string>[] Pairs, string Key) AttributesOf(RepeatedField<KeyValue> attributes)
    {
        if (attributes.Count == 0)
        {
            return (NoAttributes, "");
        }

        var pairs = new KeyValuePair<string, string>[attributes.Count];
        for (var i = 0; i < pairs.Length; i++)
        {
            pairs[i] = new(attributes[i].Key, Text(attributes[i].Value));
        }

        if (pairs.Length > 1)
        {
            Array.Sort(pairs, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        }

        _key.Clear();
        foreach (var pair in pairs)
        {
            _key.Append(pair.Key).Append('\u0001').Append(pair.Value).Append('\u0002');
        }

        var key = _key.ToString();
        if (_attributeSets.TryGetValue(key, out var known))
        {
            return (known, _strings[key]);
        }

        for (var i = 0; i < pairs.Length; i++)
        {
            pairs[i] = new(Intern(pairs[i].Key), Intern(pairs[i].Value));
        }

        key = Intern(key);
        _attributeSets[key] = pairs;
        return (pairs, key);
    }

    private string Intern(string value)
    {
        if (value.Length == 0)
        {
            return "";
        }

        if (_strings.TryGetValue(value, out var known))
        {
            return known;
        }

        _strings[value] = value;
        return value;
    }

    /// <summary>An attribute value as text: strings as they are, numbers invariant, arrays and maps as JSON.</summary>
    internal static string Text(AnyValue? value)
    {
        if (value is null)
        {
            return "";
        }

        switch (value.ValueCase)
        {
            case AnyValue.ValueOneofCase.StringValue:
                return value.StringValue;
            case AnyValue.ValueOneofCase.IntValue:
                return value.IntValue.ToString(CultureInfo.InvariantCulture);
            case AnyValue.ValueOneofCase.DoubleValue:
                return value.DoubleValue.ToString("R", CultureInfo.InvariantCulture);
            case AnyValue.ValueOneofCase.BoolValue:
                return value.BoolValue ? "true" : "false";
            case AnyValue.ValueOneofCase.BytesValue:
                return Convert.ToBase64String(value.BytesValue.Span);
            case AnyValue.ValueOneofCase.ArrayValue:
            case AnyValue.ValueOneofCase.KvlistValue:
                var sb = new StringBuilder();
                AppendJson(sb, value);
                return sb.ToString();
            default:
                return "";
        }
    }

    private static void AppendJson(StringBuilder sb, AnyValue value)
    {
        switch (value.ValueCase)
        {
            case AnyValue.ValueOneofCase.ArrayValue:
                sb.Append('[');
                for (var i = 0; i < value.ArrayValue.Values.Count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(',');
                    }

                    AppendJson(sb, value.ArrayValue.Values[i]);
                }

                sb.Append(']');
                break;
            case AnyValue.ValueOneofCase.KvlistValue:
                sb.Append('{');
                for (var i = 0; i < value.KvlistValue.Values.Count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(',');
                    }

                    var kv = value.KvlistValue.Values[i];
                    sb.Append(System.Text.Json.JsonSerializer.Serialize(kv.Key)).Append(':');
                    AppendJson(sb, kv.Value);
                }

                sb.Append('}');
                break;
            case AnyValue.ValueOneofCase.StringValue:
                sb.Append(System.Text.Json.JsonSerializer.Serialize(value.StringValue));
                break;
            case AnyValue.ValueOneofCase.None:
                sb.Append("null");
                break;
            default:
                sb.Append(Text(value));
                break;
        }
    }
}

using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;

namespace PgOtelGateway.Agent.Catalog;

/// <summary>
/// The metrics of one instance's scrape as they are collected: one OTLP metric per definition, points added
/// with their attributes, all stamped with the scrape's aligned time (and counters with the server start).
/// </summary>
internal sealed class MetricSet
{
    private readonly Dictionary<string, Metric> _metrics = new(StringComparer.Ordinal);
    private readonly List<Metric> _order = [];
    private readonly Func<string, bool> _enabled;
    private readonly ulong _time;
    private ulong _start;

    public MetricSet(ulong timeUnixNano, ulong startUnixNano, Func<string, bool> enabled)
    {
        _time = timeUnixNano;
        _start = startUnixNano;
        _enabled = enabled;
    }

    /// <summary>The counters' start time: the server's start, learnt during the scrape.</summary>
    public ulong Start { get => _start; set => _start = value; }

    public IReadOnlyList<Metric> Metrics => _order;

    public int PointCount { get; private set; }

    public void Add(MetricDefinition definition, double value, params (string Key, string? Value)[] attributes) =>
        AddPoint(definition, definition.Name, definition.Unit, definition.Description, value, null, attributes);

    public void Add(MetricDefinition definition, long value, params (string Key, string? Value)[] attributes) =>
        AddPoint(definition, definition.Name, definition.Unit, definition.Description, value, value, attributes);

    /// <summary>A point of a metric not in the catalog (custom queries).</summary>
    public void AddCustom(string name, MetricKind kind, string unit, string description, double value, IReadOnlyList<(string Key, string? Value)> attributes) =>
        AddPoint(new MetricDefinition(name, kind, unit, description), name, unit, description, value, null, attributes);

    private void AddPoint(MetricDefinition definition, string name, string unit, string description, double value, long? intValue, IReadOnlyList<(string Key, string? Value)> attributes)
    {
        if (!_enabled(name))
        {
            return;
        }

        if (!_metrics.TryGetValue(name, out var metric))
        {
            metric = new Metric { Name = name, Unit = unit, Description = description };
            if (definition.Kind == MetricKind.Counter)
            {
                metric.Sum = new Sum { AggregationTemporality = AggregationTemporality.Cumulative, IsMonotonic = true };
            }
            else
            {
                metric.Gauge = new Gauge();
            }

            _metrics[name] = metric;
            _order.Add(metric);
        }

        var point = NumberPoint(_time, value, intValue, attributes);
        if (definition.Kind == MetricKind.Counter)
        {
            point.StartTimeUnixNano = _start;
            metric.Sum.DataPoints.Add(point);
        }
        else
        {
            metric.Gauge.DataPoints.Add(point);
        }

        PointCount++;
    }

    /// <summary>
    /// One number point at <paramref name="timeUnixNano"/>: an int when <paramref name="intValue"/> is set, else a
    /// double; attributes whose value is null are left out.
    /// </summary>
    internal static NumberDataPoint NumberPoint(ulong timeUnixNano, double value, long? intValue, IReadOnlyList<(string Key, string? Value)> attributes)
    {
        var point = new NumberDataPoint { TimeUnixNano = timeUnixNano };
        if (intValue is { } i)
        {
            point.AsInt = i;
        }
        else
        {
            point.AsDouble = value;
        }

        foreach (var (key, text) in attributes)
        {
            if (text is not null)
            {
                point.Attributes.Add(new KeyValue { Key = key, Value = new AnyValue { StringValue = text } });
            }
        }

        return point;
    }

    /// <summary>Sets the counters' start time on every point (it is known only after the first query).</summary>
    public void StampStart()
    {
        foreach (var metric in _order)
        {
            if (metric.DataCase == Metric.DataOneofCase.Sum)
            {
                foreach (var p in metric.Sum.DataPoints)
                {
                    p.StartTimeUnixNano = _start;
                }
            }
        }
    }
}

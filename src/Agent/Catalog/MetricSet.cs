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

    // The catalog's definitions by reference: the hot per-row path resolves a definition without hashing its name.
    private readonly Dictionary<MetricDefinition, Metric?> _byDefinition = new(ReferenceEqualityComparer.Instance);
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

    /// <summary>The time every point is stamped with.</summary>
    public ulong Time => _time;

    public IReadOnlyList<Metric> Metrics => _order;

    public int PointCount { get; private set; }

    public void Add(MetricDefinition definition, double value, params (string Key, string? Value)[] attributes) =>
        AddPoint(definition, definition.Name, definition.Unit, definition.Description, value, null, attributes);

    public void Add(MetricDefinition definition, long value, params (string Key, string? Value)[] attributes) =>
        AddPoint(definition, definition.Name, definition.Unit, definition.Description, value, value, attributes);

    /// <summary>A point of a metric not in the catalog (custom queries).</summary>
    public void AddCustom(string name, MetricKind kind, string unit, string description, double value, IReadOnlyList<(string Key, string? Value)> attributes) =>
        AddPoint(new MetricDefinition(name, kind, unit, description), name, unit, description, value, null, attributes);

    /// <summary>
    /// A point whose attributes are shared <see cref="KeyValue"/> objects (see <see cref="AttributeCache"/>): no
    /// attribute object is built per point. The objects may appear in many points; nothing downstream mutates one.
    /// </summary>
    public void Add(MetricDefinition definition, long value, KeyValue a, KeyValue b, KeyValue c, KeyValue? d = null, KeyValue? e = null)
    {
        if (Resolve(definition) is not { } metric)
        {
            return;
        }

        var point = new NumberDataPoint { TimeUnixNano = _time, AsInt = value };
        point.Attributes.Capacity = e is not null ? 5 : d is not null ? 4 : 3;
        point.Attributes.Add(a);
        point.Attributes.Add(b);
        point.Attributes.Add(c);
        if (d is not null)
        {
            point.Attributes.Add(d);
        }

        if (e is not null)
        {
            point.Attributes.Add(e);
        }

        Append(definition, metric, point);
    }

    /// <inheritdoc cref="Add(MetricDefinition, long, KeyValue, KeyValue, KeyValue, KeyValue?, KeyValue?)"/>
    public void Add(MetricDefinition definition, double value, KeyValue a, KeyValue b, KeyValue c, KeyValue? d = null, KeyValue? e = null)
    {
        if (Resolve(definition) is not { } metric)
        {
            return;
        }

        var point = new NumberDataPoint { TimeUnixNano = _time, AsDouble = value };
        point.Attributes.Capacity = e is not null ? 5 : d is not null ? 4 : 3;
        point.Attributes.Add(a);
        point.Attributes.Add(b);
        point.Attributes.Add(c);
        if (d is not null)
        {
            point.Attributes.Add(d);
        }

        if (e is not null)
        {
            point.Attributes.Add(e);
        }

        Append(definition, metric, point);
    }

    /// <summary>
    /// Moves every point of <paramref name="others"/> (collected in parallel, e.g. one per database) into this set,
    /// each metric's point list sized once for all of them (large lists would otherwise grow on the large object heap
    /// step by step, every scrape).
    /// </summary>
    public void AddAll(IReadOnlyList<MetricSet> others)
    {
        var totals = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var other in others)
        {
            foreach (var source in other._order)
            {
                totals[source.Name] = totals.GetValueOrDefault(source.Name) + Points(source).Count;
            }
        }

        foreach (var (name, count) in totals)
        {
            var total = count;
            if (_metrics.TryGetValue(name, out var metric))
            {
                total += Points(metric).Count;
            }
            else
            {
                var like = others.First(o => o._metrics.ContainsKey(name))._metrics[name];
                metric = new Metric { Name = like.Name, Unit = like.Unit, Description = like.Description };
                if (like.DataCase == Metric.DataOneofCase.Sum)
                {
                    metric.Sum = new Sum { AggregationTemporality = like.Sum.AggregationTemporality, IsMonotonic = like.Sum.IsMonotonic };
                }
                else
                {
                    metric.Gauge = new Gauge();
                }

                _metrics[name] = metric;
                _order.Add(metric);
            }

            if (Points(metric).Capacity < total)
            {
                Points(metric).Capacity = total;
            }
        }

        foreach (var other in others)
        {
            AddAll(other);
        }
    }

    private static Google.Protobuf.Collections.RepeatedField<NumberDataPoint> Points(Metric metric) =>
        metric.DataCase == Metric.DataOneofCase.Sum ? metric.Sum.DataPoints : metric.Gauge.DataPoints;

    /// <summary>Moves every point of <paramref name="other"/> (collected in parallel, e.g. per database) into this set.</summary>
    public void AddAll(MetricSet other)
    {
        foreach (var source in other._order)
        {
            if (!_metrics.TryGetValue(source.Name, out var metric))
            {
                _metrics[source.Name] = source;
                _order.Add(source);
                PointCount += source.DataCase == Metric.DataOneofCase.Sum ? source.Sum.DataPoints.Count : source.Gauge.DataPoints.Count;
                continue;
            }

            if (source.DataCase == Metric.DataOneofCase.Sum)
            {
                metric.Sum.DataPoints.Add(source.Sum.DataPoints);
                PointCount += source.Sum.DataPoints.Count;
            }
            else
            {
                metric.Gauge.DataPoints.Add(source.Gauge.DataPoints);
                PointCount += source.Gauge.DataPoints.Count;
            }
        }
    }

    private Metric? Resolve(MetricDefinition definition)
    {
        if (!_byDefinition.TryGetValue(definition, out var metric))
        {
            metric = _enabled(definition.Name) ? GetOrCreate(definition, definition.Name, definition.Unit, definition.Description) : null;
            _byDefinition[definition] = metric;
        }

        return metric;
    }

    private Metric GetOrCreate(MetricDefinition definition, string name, string unit, string description)
    {
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

        return metric;
    }

    private void Append(MetricDefinition definition, Metric metric, NumberDataPoint point)
    {
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

    private void AddPoint(MetricDefinition definition, string name, string unit, string description, double value, long? intValue, IReadOnlyList<(string Key, string? Value)> attributes)
    {
        if (!_enabled(name))
        {
            return;
        }

        var metric = GetOrCreate(definition, name, unit, description);
        Append(definition, metric, NumberPoint(_time, value, intValue, attributes));
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

using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;

namespace PgOtelGateway.Agent.HostMetrics;

/// <summary>The metrics of one host scrape: one OTLP metric per name, points stamped with the scrape time.</summary>
internal sealed class HostMetricSet(ulong timeUnixNano)
{
    private readonly Dictionary<string, Metric> _metrics = new(StringComparer.Ordinal);

    /// <summary>The counters' start time (boot).</summary>
    public ulong Start { get; set; }

    public List<Metric> Metrics { get; } = [];

    /// <summary>A running total since boot: monotonic cumulative sum.</summary>
    public void Counter(string name, string unit, string description, double value, params (string Key, string? Value)[] attributes)
    {
        var metric = Get(name, unit, description, m => m.Sum = new Sum { AggregationTemporality = AggregationTemporality.Cumulative, IsMonotonic = true });
        metric.Sum.DataPoints.Add(Point(value, null, Start, attributes));
    }

    /// <summary>A level that goes up and down (an UpDownCounter): non-monotonic cumulative sum.</summary>
    public void UpDown(string name, string unit, string description, long value, params (string Key, string? Value)[] attributes)
    {
        var metric = Get(name, unit, description, m => m.Sum = new Sum { AggregationTemporality = AggregationTemporality.Cumulative, IsMonotonic = false });
        metric.Sum.DataPoints.Add(Point(0, value, Start, attributes));
    }

    public void Gauge(string name, string unit, string description, double value, params (string Key, string? Value)[] attributes)
    {
        var metric = Get(name, unit, description, m => m.Gauge = new Gauge());
        metric.Gauge.DataPoints.Add(Point(value, null, 0, attributes));
    }

    private Metric Get(string name, string unit, string description, Action<Metric> init)
    {
        if (!_metrics.TryGetValue(name, out var metric))
        {
            metric = new Metric { Name = name, Unit = unit, Description = description };
            init(metric);
            _metrics[name] = metric;
            Metrics.Add(metric);
        }

        return metric;
    }

    private NumberDataPoint Point(double value, long? intValue, ulong start, (string Key, string? Value)[] attributes)
    {
        var point = Catalog.MetricSet.NumberPoint(timeUnixNano, value, intValue, attributes);
        point.StartTimeUnixNano = start;
        return point;
    }
}

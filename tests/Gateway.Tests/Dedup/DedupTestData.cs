using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Gateway.Tests.Dedup;

/// <summary>Agent-shaped requests and a consumer that keeps what reached it.</summary>
internal static class DedupTestData
{
    public static KeyValue Kv(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };

    /// <summary>
    /// One resource (an HA agent's view of <paramref name="instance"/>) with a gauge of <paramref name="tables"/>
    /// points and a counter of one point, all at <paramref name="timeUnixNano"/>.
    /// </summary>
    public static ExportMetricsServiceRequest Agent(string instance, string agent, ulong timeUnixNano, int tables = 3, string cluster = "c1", double value = 1)
    {
        var rm = new ResourceMetrics { Resource = new Resource() };
        rm.Resource.Attributes.Add([Kv("service.name", "postgresql"), Kv("db.instance", instance), Kv("db.cluster", cluster), Kv("agent.id", agent)]);
        var sm = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent/postgresql" } };
        var rows = new Metric { Name = "postgresql.table.rows", Gauge = new Gauge() };
        for (var t = 0; t < tables; t++)
        {
            var p = new NumberDataPoint { TimeUnixNano = timeUnixNano, AsDouble = value };
            p.Attributes.Add([Kv("database_name", "app"), Kv("table_name", $"t{t}")]);
            rows.Gauge.DataPoints.Add(p);
        }

        var commits = new Metric { Name = "postgresql.commits", Sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Cumulative } };
        commits.Sum.DataPoints.Add(new NumberDataPoint { TimeUnixNano = timeUnixNano, StartTimeUnixNano = 1, AsInt = 5 });
        sm.Metrics.Add([rows, commits]);
        rm.ScopeMetrics.Add(sm);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    /// <summary>Several requests merged into one (a request may mix instances and clusters).</summary>
    public static ExportMetricsServiceRequest Merge(params ExportMetricsServiceRequest[] requests)
    {
        var merged = new ExportMetricsServiceRequest();
        foreach (var r in requests)
        {
            merged.ResourceMetrics.Add(r.ResourceMetrics);
        }

        return merged;
    }
}

/// <summary>The end of a test pipeline: keeps every request, or refuses while <see cref="Refuse"/> is set.</summary>
internal sealed class CollectingConsumer : IMetricsConsumer
{
    private readonly List<ExportMetricsServiceRequest> _received = [];

    public bool Refuse { get; set; }

    public IReadOnlyList<ExportMetricsServiceRequest> Received
    {
        get
        {
            lock (_received)
            {
                return [.. _received];
            }
        }
    }

    public int Points
    {
        get
        {
            var total = 0;
            foreach (var r in Received)
            {
                total += MetricsCounting.DataPoints(r);
            }

            return total;
        }
    }

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        if (Refuse)
        {
            throw new PipelineRefusedException(RefusalReason.QueueFull, "full", TimeSpan.FromSeconds(1));
        }

        lock (_received)
        {
            _received.Add(request);
        }

        return Task.CompletedTask;
    }
}

using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// Requests shaped like the agent's output (the same shapes tests/LoadGen sends): one PostgreSQL instance's
/// resource, the five table metrics over 20 databases × tables, gauges and monotonic cumulative sums.
/// </summary>
internal static class AgentShapedRequests
{
    /// <summary>Points per request in every per-point benchmark (also their <c>OperationsPerInvoke</c>).</summary>
    public const int Points = 1000;

    private static readonly string[] TableMetrics = ["postgresql.table.rows", "postgresql.table.dead_rows", "postgresql.table.size", "postgresql.table.modifications", "postgresql.table.scans"];

    /// <summary>A request of <paramref name="points"/> points (a multiple of 5) for instance <paramref name="instance"/>.</summary>
    public static ExportMetricsServiceRequest Build(int points, int instance = 1, ulong timeUnixNano = 1_700_000_000_000_000_000UL)
    {
        var resource = new Resource();
        resource.Attributes.Add([
            Kv("service.name", "postgresql"), Kv("service.instance.id", $"pg-{instance:D4}:5432"), Kv("db.instance", $"pg-{instance:D4}:5432"),
            Kv("db.cluster", $"cluster-{instance / 2:D4}"), Kv("db.role", "primary"), Kv("db.system", "postgresql")]);
        var scope = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent/postgresql" } };
        var perMetric = points / TableMetrics.Length;
        foreach (var name in TableMetrics)
        {
            var counter = name is "postgresql.table.modifications" or "postgresql.table.scans";
            var metric = new Metric { Name = name, Unit = name == "postgresql.table.size" ? "By" : "{row}" };
            var list = new List<NumberDataPoint>(perMetric);
            for (var i = 0; i < perMetric; i++)
            {
                var p = new NumberDataPoint { TimeUnixNano = timeUnixNano, AsInt = i * 13 };
                p.Attributes.Add([Kv("database_name", $"db{i % 20:D2}"), Kv("schema_name", "public"), Kv("table_name", $"t{i / 20:D4}")]);
                if (counter)
                {
                    p.StartTimeUnixNano = 1_600_000_000_000_000_000UL;
                    p.Attributes.Add(Kv("operation", "insert"));
                }

                list.Add(p);
            }

            if (counter)
            {
                metric.Sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Cumulative };
                metric.Sum.DataPoints.Add(list);
            }
            else
            {
                metric.Gauge = new Gauge();
                metric.Gauge.DataPoints.Add(list);
            }

            scope.Metrics.Add(metric);
        }

        var rm = new ResourceMetrics { Resource = resource };
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    private static KeyValue Kv(string k, string v) => new() { Key = k, Value = new AnyValue { StringValue = v } };
}

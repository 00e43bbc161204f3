using System.Text;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Shared.Translation;

namespace PgOtelGateway.LoadGen;

/// <summary>
/// Requests shaped like the agent's: one resource per PostgreSQL instance, the catalog's table metrics over
/// 20 databases × tables, counters with a fixed start time, wall-clock timestamps. Instance n mod N sends request
/// n, and every request of an instance carries the same series, so the series set is N × (points + target_info).
/// </summary>
internal sealed class AgentShapes
{
    private static readonly string[] TableMetrics = ["postgresql.table.rows", "postgresql.table.dead_rows", "postgresql.table.size", "postgresql.table.modifications", "postgresql.table.scans"];
    private readonly int _instances;
    private readonly int _perMetric;

    private AgentShapes(int instances, int points)
    {
        _instances = instances;
        _perMetric = Math.Max(1, points / TableMetrics.Length);
    }

    /// <summary>Data points in every request (a multiple of the five table metrics).</summary>
    public int PointsPerRequest => _perMetric * TableMetrics.Length;

    public static AgentShapes Build(int instances, int pointsPerRequest) => new(instances, pointsPerRequest);

    /// <summary>Prometheus samples one request becomes under the default exporter options (points + target_info).</summary>
    public int SamplesPerRequest() => OtlpToPrometheus.Translate(Next(0, DateTimeOffset.UtcNow), new TranslationOptions()).Series.Count;

    /// <summary>Distinct Prometheus series over one cycle of all instances, counted from their translations.</summary>
    public int DistinctSeries()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var now = DateTimeOffset.UtcNow;
        var text = new StringBuilder();
        for (var i = 0; i < _instances; i++)
        {
            foreach (var series in OtlpToPrometheus.Translate(Next(i, now), new TranslationOptions()).Series)
            {
                text.Clear();
                foreach (var label in series.Labels)
                {
                    text.Append(label.Name).Append('=').Append(label.Value).Append(',');
                }

                seen.Add(text.ToString());
            }
        }

        return seen.Count;
    }

    /// <summary>Request number <paramref name="n"/>: instance n mod N.</summary>
    public ExportMetricsServiceRequest Next(int n, DateTimeOffset now)
    {
        var instance = n % _instances;
        // Each instance's requests come in order, so wall-clock milliseconds keep every series in time order.
        var time = (ulong)now.ToUnixTimeMilliseconds() * 1_000_000;
        var resource = new Resource();
        resource.Attributes.Add(Kv("service.name", "postgresql"));
        resource.Attributes.Add(Kv("service.instance.id", $"pg-{instance:D4}:5432"));
        resource.Attributes.Add(Kv("db.instance", $"pg-{instance:D4}:5432"));
        resource.Attributes.Add(Kv("db.cluster", $"cluster-{instance / 2:D4}"));
        resource.Attributes.Add(Kv("db.role", instance % 2 == 0 ? "primary" : "replica"));
        resource.Attributes.Add(Kv("db.system", "postgresql"));
        var scope = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent/postgresql" } };
        foreach (var name in TableMetrics)
        {
            var counter = name is "postgresql.table.modifications" or "postgresql.table.scans";
            var metric = new Metric { Name = name, Unit = name == "postgresql.table.size" ? "By" : "{row}" };
            var points = new List<NumberDataPoint>(_perMetric);
            for (var i = 0; i < _perMetric; i++)
            {
                var p = new NumberDataPoint { TimeUnixNano = time, AsInt = (n * 7L + i) % 1_000_000 };
                p.Attributes.Add(Kv("database_name", $"db{i % 20:D2}"));
                p.Attributes.Add(Kv("schema_name", "public"));
                p.Attributes.Add(Kv("table_name", $"t{i / 20:D4}"));
                if (counter)
                {
                    p.StartTimeUnixNano = 1_700_000_000_000_000_000UL;
                    p.Attributes.Add(Kv("operation", "insert"));
                }

                points.Add(p);
            }

            if (counter)
            {
                metric.Sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Cumulative };
                metric.Sum.DataPoints.Add(points);
            }
            else
            {
                metric.Gauge = new Gauge();
                metric.Gauge.DataPoints.Add(points);
            }

            scope.Metrics.Add(metric);
        }

        var rm = new ResourceMetrics { Resource = resource };
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    private static KeyValue Kv(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };
}

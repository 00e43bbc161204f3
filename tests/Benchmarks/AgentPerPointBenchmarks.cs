using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using PgOtelGateway.Agent.Catalog;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// The agent's row → OTLP mapping per data point: pg_stat_user_tables-like rows (database, schema, table) turned
/// into the catalog's table metrics through <see cref="MetricSet"/>, as the scraper does, then the export
/// encoding of the resulting request (Mean and Allocated are per point).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(PerPointConfig))]
public class AgentPerPointBenchmarks
{
    private const int Points = AgentShapedRequests.Points;
    private const int Rows = Points / 5;
    private readonly string[] _databases = new string[Rows];
    private readonly string[] _tables = new string[Rows];
    private OpenTelemetry.Proto.Metrics.V1.ResourceMetrics _mapped = new();

    [GlobalSetup]
    public void Setup()
    {
        // The strings come from the data reader in the scraper; here they exist before the measured loop.
        for (var i = 0; i < Rows; i++)
        {
            _databases[i] = $"db{i % 20:D2}";
            _tables[i] = $"t{i / 20:D4}";
        }

        _mapped = new OpenTelemetry.Proto.Metrics.V1.ResourceMetrics();
        _mapped.ScopeMetrics.Add(new OpenTelemetry.Proto.Metrics.V1.ScopeMetrics());
        _mapped.ScopeMetrics[0].Metrics.Add(Map().Metrics);
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "agent row → OTLP points (MetricSet)")]
    public int RowToOtlp() => Map().PointCount;

    [Benchmark(OperationsPerInvoke = Points, Description = "agent OTLP encode (protobuf, before zstd)")]
    public int Encode() => _mapped.ToByteArray().Length;

    private MetricSet Map()
    {
        var set = new MetricSet(1_700_000_000_000_000_000UL, 1_600_000_000_000_000_000UL, static _ => true);
        for (var i = 0; i < Rows; i++)
        {
            var db = _databases[i];
            var table = _tables[i];
            set.Add(MetricCatalog.TableRows, 1000L + i, ("database_name", db), ("schema_name", "public"), ("table_name", table));
            set.Add(MetricCatalog.TableDeadRows, 10L + i, ("database_name", db), ("schema_name", "public"), ("table_name", table));
            set.Add(MetricCatalog.TableSize, 8192L * i, ("database_name", db), ("schema_name", "public"), ("table_name", table));
            set.Add(MetricCatalog.TableModifications, 5L * i, ("database_name", db), ("schema_name", "public"), ("table_name", table), ("operation", "insert"));
            set.Add(MetricCatalog.TableScans, 3L * i, ("database_name", db), ("schema_name", "public"), ("table_name", table), ("scan_type", "sequential"));
        }

        return set;
    }
}

using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Agent.Catalog;
using PgOtelGateway.Agent.Export;
using ZstdSharp;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// The agent's row → OTLP mapping per data point: pg_stat_user_tables-like rows (database, schema, table) turned
/// into the catalog's table metrics through <see cref="MetricSet"/>, as the scraper does, then the export
/// encoding of the resulting request (Mean and Allocated are per point): Google.Protobuf's <c>ToByteArray</c> against
/// the agent's <see cref="OtlpRequestEncoder"/>, with a new attribute object per point (the tuple overload) and with
/// the shared per-name objects the scraper uses (<see cref="AttributeCache"/>), and zstd over the encoded bytes.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(PerPointConfig))]
public class AgentPerPointBenchmarks
{
    private const int Points = AgentShapedRequests.Points;
    private const int Rows = Points / 5;
    private readonly string[] _databases = new string[Rows];
    private readonly string[] _tables = new string[Rows];
    private readonly Compressor _zstd = new(3);
    private ExportMetricsServiceRequest _mapped = new();
    private ExportMetricsServiceRequest _shared = new();
    private byte[] _encoded = [];

    [GlobalSetup]
    public void Setup()
    {
        // The strings come from the data reader in the scraper; here they exist before the measured loop.
        for (var i = 0; i < Rows; i++)
        {
            _databases[i] = $"db{i % 20:D2}";
            _tables[i] = $"t{i / 20:D4}";
        }

        _mapped = Request(Map());
        _shared = Request(MapShared());
        _encoded = _shared.ToByteArray();
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "agent row → OTLP points (MetricSet)")]
    public int RowToOtlp() => Map().PointCount;

    [Benchmark(OperationsPerInvoke = Points, Description = "agent OTLP encode (protobuf, before zstd)")]
    public int Encode() => _mapped.ToByteArray().Length;

    [Benchmark(OperationsPerInvoke = Points, Description = "agent OTLP encode (OtlpRequestEncoder, before zstd)")]
    public int EncodeSpan()
    {
        using var encoded = OtlpRequestEncoder.Encode(_mapped);
        return encoded.Length;
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "agent OTLP encode, shared attributes (protobuf)")]
    public int EncodeShared() => _shared.ToByteArray().Length;

    [Benchmark(OperationsPerInvoke = Points, Description = "agent OTLP encode, shared attributes (OtlpRequestEncoder)")]
    public int EncodeSharedSpan()
    {
        using var encoded = OtlpRequestEncoder.Encode(_shared);
        return encoded.Length;
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "agent zstd level 3 of the encoded request")]
    public int Zstd() => _zstd.Wrap(_encoded).Length;

    private static ExportMetricsServiceRequest Request(MetricSet set)
    {
        var scope = new OpenTelemetry.Proto.Metrics.V1.ScopeMetrics();
        scope.Metrics.Add(set.Metrics);
        var rm = new OpenTelemetry.Proto.Metrics.V1.ResourceMetrics();
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    /// <summary>The same points with the scraper's shared attribute objects: one per database, schema and table name.</summary>
    private MetricSet MapShared()
    {
        var set = new MetricSet(1_700_000_000_000_000_000UL, 1_600_000_000_000_000_000UL, static _ => true);
        var caches = new Dictionary<string, AttributeCache>();
        var insert = AttributeCache.Text("operation", "insert");
        var sequential = AttributeCache.Text("scan_type", "sequential");
        for (var i = 0; i < Rows; i++)
        {
            if (!caches.TryGetValue(_databases[i], out var names))
            {
                names = caches[_databases[i]] = new AttributeCache(_databases[i]);
            }

            var schema = names.Schema("public");
            var table = names.Table(_tables[i]);
            set.Add(MetricCatalog.TableRows, 1000L + i, names.Database, schema, table);
            set.Add(MetricCatalog.TableDeadRows, 10L + i, names.Database, schema, table);
            set.Add(MetricCatalog.TableSize, 8192L * i, names.Database, schema, table);
            set.Add(MetricCatalog.TableModifications, 5L * i, names.Database, schema, table, insert);
            set.Add(MetricCatalog.TableScans, 3L * i, names.Database, schema, table, sequential);
        }

        return set;
    }

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

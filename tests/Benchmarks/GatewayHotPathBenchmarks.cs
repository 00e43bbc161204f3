using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Shared.RemoteWrite.Proto;
using PgOtelGateway.Shared.Translation;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// The gateway's per-request hot path on a 1,000-point request shaped like the agent's output:
/// <c>dotnet run -c Release --project tests/Benchmarks -- --filter '*GatewayHotPath*'</c>.
/// Divide times and allocations by 1,000 for per-point figures.
/// </summary>
[MemoryDiagnoser]
public class GatewayHotPathBenchmarks
{
    private byte[] _encoded = [];
    private ExportMetricsServiceRequest _request = new();
    private WriteRequest _write = new();
    private readonly TranslationOptions _options = new() { TargetInfo = true, CopyResourceAttributes = ["db.cluster"] };

    [GlobalSetup]
    public void Setup()
    {
        _request = AgentLikeRequest(1000);
        _encoded = _request.ToByteArray();
        _write = new WriteRequest();
        _write.Timeseries.AddRange(OtlpToPrometheus.Translate(_request, _options).Series);
    }

    [Benchmark(Description = "OTLP decode, 1000 points")]
    public ExportMetricsServiceRequest Decode() => ExportMetricsServiceRequest.Parser.ParseFrom(_encoded);

    [Benchmark(Description = "OTLP to Prometheus translation, 1000 points")]
    public int Translate() => OtlpToPrometheus.Translate(_request, _options).Series.Count;

    [Benchmark(Description = "remote-write encode + snappy, 1000 points")]
    public int EncodeAndCompress() => Snappier.Snappy.CompressToArray(_write.ToByteArray()).Length;

    [Benchmark(Description = "decode + translate + encode + snappy, 1000 points")]
    public int Whole()
    {
        var request = ExportMetricsServiceRequest.Parser.ParseFrom(_encoded);
        var write = new WriteRequest();
        write.Timeseries.AddRange(OtlpToPrometheus.Translate(request, _options).Series);
        return Snappier.Snappy.CompressToArray(write.ToByteArray()).Length;
    }

    internal static ExportMetricsServiceRequest AgentLikeRequest(int points)
    {
        static KeyValue Kv(string k, string v) => new() { Key = k, Value = new AnyValue { StringValue = v } };
        var resource = new Resource();
        resource.Attributes.Add([Kv("service.name", "postgresql"), Kv("service.instance.id", "pg-0001:5432"), Kv("db.instance", "pg-0001:5432"), Kv("db.cluster", "c1"), Kv("db.role", "primary")]);
        var scope = new ScopeMetrics();
        string[] names = ["postgresql.table.rows", "postgresql.table.dead_rows", "postgresql.table.size", "postgresql.table.modifications", "postgresql.table.scans"];
        foreach (var name in names)
        {
            var counter = name.EndsWith("modifications", StringComparison.Ordinal) || name.EndsWith("scans", StringComparison.Ordinal);
            var metric = new Metric { Name = name, Unit = name.EndsWith("size", StringComparison.Ordinal) ? "By" : "{row}" };
            var list = new List<NumberDataPoint>();
            for (var i = 0; i < points / names.Length; i++)
            {
                var p = new NumberDataPoint { TimeUnixNano = 1_700_000_000_000_000_000UL, AsInt = i * 13 };
                p.Attributes.Add([Kv("database_name", $"db{i % 20}"), Kv("schema_name", "public"), Kv("table_name", $"t{i / 20}")]);
                if (counter)
                {
                    p.StartTimeUnixNano = 1_600_000_000_000_000_000UL;
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
}

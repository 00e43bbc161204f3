using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
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

    internal static ExportMetricsServiceRequest AgentLikeRequest(int points) => AgentShapedRequests.Build(points);
}

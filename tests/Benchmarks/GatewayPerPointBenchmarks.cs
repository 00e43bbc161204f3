using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.RemoteWrite.Proto;
using PgOtelGateway.Shared.Translation;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// The gateway's hot path per data point, on 1,000-point agent-shaped requests (Mean and Allocated are per point):
/// <c>dotnet run -c Release --project tests/Benchmarks -- --filter '*PerPoint*'</c>. Target (issue 8): no
/// allocation per point on the steady-state path, i.e. under 16 B/point.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(PerPointConfig))]
public class GatewayPerPointBenchmarks
{
    private const int Points = AgentShapedRequests.Points;
    private readonly TranslationOptions _options = new();
    private byte[] _otlp = [];
    private ExportMetricsServiceRequest _request = new();
    private WriteRequest _write = new();
    private byte[] _writeBytes = [];

    [GlobalSetup]
    public void Setup()
    {
        _request = AgentShapedRequests.Build(Points);
        _otlp = _request.ToByteArray();
        _write = new WriteRequest();
        _write.Timeseries.AddRange(OtlpToPrometheus.Translate(_request, _options).Series);
        _writeBytes = _write.ToByteArray();
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "OTLP decode (protobuf → objects)")]
    public int OtlpDecode() => ExportMetricsServiceRequest.Parser.ParseFrom(_otlp).ResourceMetrics.Count;

    [Benchmark(OperationsPerInvoke = Points, Description = "OTLP → Prometheus translation")]
    public int Translate() => OtlpToPrometheus.Translate(_request, _options).Series.Count;

    [Benchmark(OperationsPerInvoke = Points, Description = "remote-write encode (protobuf)")]
    public int RemoteWriteEncode() => _write.ToByteArray().Length;

    [Benchmark(OperationsPerInvoke = Points, Description = "remote-write snappy (block)")]
    public int RemoteWriteSnappy() => Snappier.Snappy.CompressToArray(_writeBytes).Length;

    [Benchmark(OperationsPerInvoke = Points, Description = "remote-write encode + snappy")]
    public int RemoteWriteEncodeAndSnappy() => Snappier.Snappy.CompressToArray(_write.ToByteArray()).Length;

    [Benchmark(OperationsPerInvoke = Points, Description = "whole path: decode + translate + encode + snappy")]
    public int WholePath()
    {
        var request = ExportMetricsServiceRequest.Parser.ParseFrom(_otlp);
        var write = new WriteRequest();
        write.Timeseries.AddRange(OtlpToPrometheus.Translate(request, _options).Series);
        return Snappier.Snappy.CompressToArray(write.ToByteArray()).Length;
    }
}

using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Gateway.Export.RemoteWrite;
using PgOtelGateway.Shared.Otlp;
using PgOtelGateway.Shared.RemoteWrite.Proto;
using PgOtelGateway.Shared.Translation;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// The gateway's hot path per data point, on 1,000-point agent-shaped requests (Mean and Allocated are per point):
/// <c>dotnet run -c Release --project tests/Benchmarks -- --filter '*PerPoint*'</c>. Target (issue 8): no
/// allocation per point on the steady-state path, i.e. under 16 B/point. The "exporter" cases are the gateway's
/// path (translation straight into pooled remote-write bytes); the "object API" cases build <c>TimeSeries</c>
/// objects and a <c>WriteRequest</c> as the exporter did before (still used by the load tool and tests), for comparison.
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
    private readonly List<BatchItem> _batch = new(Points + 16);

    [GlobalSetup]
    public void Setup()
    {
        _request = AgentShapedRequests.Build(Points);
        _otlp = _request.ToByteArray();
        _write = new WriteRequest();
        _write.Timeseries.AddRange(OtlpToPrometheus.Translate(_request, _options).Series);
        _writeBytes = _write.ToByteArray();
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "OTLP decode (caching reader → objects)")]
    public int OtlpDecode() => OtlpRequestReader.Parse(_otlp).ResourceMetrics.Count;

    [Benchmark(OperationsPerInvoke = Points, Description = "object API: OTLP decode by the generic parser")]
    public int OtlpDecodeGeneric() => ExportMetricsServiceRequest.Parser.ParseFrom(_otlp).ResourceMetrics.Count;

    [Benchmark(OperationsPerInvoke = Points, Description = "object API: OTLP → TimeSeries objects")]
    public int Translate() => OtlpToPrometheus.Translate(_request, _options).Series.Count;

    [Benchmark(OperationsPerInvoke = Points, Description = "object API: WriteRequest.ToByteArray")]
    public int RemoteWriteEncode() => _write.ToByteArray().Length;

    [Benchmark(OperationsPerInvoke = Points, Description = "object API: snappy to a new array")]
    public int RemoteWriteSnappy() => Snappier.Snappy.CompressToArray(_writeBytes).Length;

    [Benchmark(OperationsPerInvoke = Points, Description = "object API: ToByteArray + snappy")]
    public int RemoteWriteEncodeAndSnappy() => Snappier.Snappy.CompressToArray(_write.ToByteArray()).Length;

    [Benchmark(OperationsPerInvoke = Points, Description = "exporter: OTLP → remote-write bytes (pooled)")]
    public int TranslateToBytes()
    {
        var encoder = new RemoteWriteSeriesEncoder([], Points);
        OtlpToPrometheus.Translate(_request, _options, encoder);
        var encoded = encoder.Finish(4);
        var count = encoded.Count;
        encoded.Signal(count);
        return count;
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "exporter: translate + frame + snappy (pooled)")]
    public int ExporterPath() => ExporterPath(_request);

    [Benchmark(OperationsPerInvoke = Points, Description = "exporter whole path: decode + translate + frame + snappy")]
    public int ExporterWholePath() => ExporterPath(OtlpRequestReader.Parse(_otlp));

    private int ExporterPath(ExportMetricsServiceRequest request)
    {
        var encoder = new RemoteWriteSeriesEncoder([], Points);
        OtlpToPrometheus.Translate(request, _options, encoder);
        var encoded = encoder.Finish(1);
        var count = encoded.Count;
        _batch.Clear();
        for (var i = 0; i < count; i++)
        {
            _batch.Add(new BatchItem(encoded, i));
        }

        var (body, length) = RemoteWriteExporter.Encode(_batch, 0, count);
        PgOtelGateway.Gateway.BufferPools.Bytes.Return(body);
        _batch.Clear();
        encoded.Signal(count);
        return length;
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "object API whole path (before): decode + objects + ToByteArray + snappy")]
    public int WholePath()
    {
        var request = ExportMetricsServiceRequest.Parser.ParseFrom(_otlp);
        var write = new WriteRequest();
        write.Timeseries.AddRange(OtlpToPrometheus.Translate(request, _options).Series);
        return Snappier.Snappy.CompressToArray(write.ToByteArray()).Length;
    }
}

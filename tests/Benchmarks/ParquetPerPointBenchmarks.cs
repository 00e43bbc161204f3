using BenchmarkDotNet.Attributes;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using Parquet;
using PgOtelGateway.Gateway.Export.Parquet;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// Cold tier per data point (branch <c>cold</c>, src/Gateway/Export/Parquet): OTLP → rows, sort, and the Parquet
/// column writing of a 10-request (10,000-point) file with zstd and dictionaries (Mean and Allocated are per point).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(PerPointConfig))]
public class ParquetPerPointBenchmarks
{
    private const int Requests = 10;
    private const int Points = AgentShapedRequests.Points * Requests;
    private readonly MetricRowSet _rows = new();
    private readonly MemoryStream _output = new();
    private readonly ParquetOptions _options = MetricsParquetWriter.Options(CompressionMethod.Zstd);
    private ExportMetricsServiceRequest[] _requests = [];

    [GlobalSetup]
    public void Setup()
    {
        _requests = new ExportMetricsServiceRequest[Requests];
        for (var i = 0; i < Requests; i++)
        {
            _requests[i] = AgentShapedRequests.Build(AgentShapedRequests.Points, instance: i, timeUnixNano: 1_700_000_000_000_000_000UL + ((ulong)i * 10_000_000_000UL));
        }

        Fill();
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "parquet: OTLP → rows + sort")]
    public int RowsAndSort() => Fill();

    [Benchmark(OperationsPerInvoke = Points, Description = "parquet: column writing (zstd, dictionaries)")]
    public async Task<long> WriteColumns()
    {
        _output.SetLength(0);
        await MetricsParquetWriter.WriteAsync(_rows, 0, _rows.Count, _output, _options, CancellationToken.None);
        return _output.Length;
    }

    private int Fill()
    {
        _rows.Clear();
        foreach (var request in _requests)
        {
            _rows.Add(request);
        }

        _rows.Sort();
        return _rows.Count;
    }
}

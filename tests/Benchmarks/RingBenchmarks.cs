using BenchmarkDotNet.Attributes;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Ring;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// Ring routing on a 1,000-point agent-like request over a 3-member ring (128 tokens each):
/// <c>dotnet run -c Release --project tests/Benchmarks -- --filter '*RingBenchmarks*'</c>.
/// </summary>
[MemoryDiagnoser]
public class RingBenchmarks
{
    private readonly HashRing _ring = new(["gateway-0", "gateway-1", "gateway-2"], 128);
    private readonly List<(int Owner, ExportMetricsServiceRequest Part)> _parts = new(3);
    private ExportMetricsServiceRequest _request = new();

    [GlobalSetup]
    public void Setup() => _request = GatewayHotPathBenchmarks.AgentLikeRequest(1000);

    [Benchmark(Description = "owner lookup, 1 key")]
    public int Lookup() => _ring.OwnerOf(0x0123456789ABCDEFUL);

    [Benchmark(Description = "partition by stream, 1000 points")]
    public int PartitionByStream()
    {
        _parts.Clear();
        RequestPartitioner.Partition(_request, _ring, RoutingKey.Stream, _parts);
        return _parts.Count;
    }

    [Benchmark(Description = "partition by resource (one owner, no copy), 1000 points")]
    public int PartitionByResource()
    {
        _parts.Clear();
        RequestPartitioner.Partition(_request, _ring, RoutingKey.Resource, _parts);
        return _parts.Count;
    }
}

using BenchmarkDotNet.Attributes;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Ring;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// Ring routing per data point (branch <c>ring</c>, src/Shared/Ring): the stream hash of each point, the owner
/// lookup on a 3-member ring with 128 tokens each, and the whole request partitioning (Mean and Allocated are per
/// point).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(PerPointConfig))]
public class RingPerPointBenchmarks
{
    private const int Points = AgentShapedRequests.Points;
    private readonly List<(int Owner, ExportMetricsServiceRequest Part)> _parts = [];
    private HashRing _ring = HashRing.Empty;
    private ExportMetricsServiceRequest _request = new();
    private ulong[] _hashes = [];

    [GlobalSetup]
    public void Setup()
    {
        _ring = new HashRing(["gateway-0", "gateway-1", "gateway-2"], HashRing.DefaultTokensPerMember);
        _request = AgentShapedRequests.Build(Points);
        _hashes = new ulong[Points];
        var n = 0;
        var rm = _request.ResourceMetrics[0];
        var resource = StreamHash.OfResource(rm.Resource);
        foreach (var metric in rm.ScopeMetrics[0].Metrics)
        {
            var points = metric.Gauge?.DataPoints ?? metric.Sum.DataPoints;
            foreach (var p in points)
            {
                _hashes[n++] = StreamHash.OfStream(resource, StreamHash.OfName(metric.Name), StreamHash.OfAttributes(p.Attributes));
            }
        }
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "ring: stream key hash")]
    public ulong StreamKey()
    {
        ulong x = 0;
        var rm = _request.ResourceMetrics[0];
        var resource = StreamHash.OfResource(rm.Resource);
        foreach (var metric in rm.ScopeMetrics[0].Metrics)
        {
            var name = StreamHash.OfName(metric.Name);
            var points = metric.Gauge?.DataPoints ?? metric.Sum.DataPoints;
            for (var i = 0; i < points.Count; i++)
            {
                x ^= StreamHash.OfStream(resource, name, StreamHash.OfAttributes(points[i].Attributes));
            }
        }

        return x;
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "ring: owner lookup (3 members × 128 tokens)")]
    public int Lookup()
    {
        var sum = 0;
        for (var i = 0; i < _hashes.Length; i++)
        {
            sum += _ring.OwnerOf(_hashes[i]);
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "ring: partition a request by stream owner")]
    public int Partition()
    {
        _parts.Clear();
        RequestPartitioner.Partition(_request, _ring, RoutingKey.Stream, _parts);
        return _parts.Count;
    }
}

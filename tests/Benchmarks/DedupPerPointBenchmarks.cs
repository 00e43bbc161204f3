using BenchmarkDotNet.Attributes;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Gateway.Dedup;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// Dedup per data point (branch <c>dedup</c>, src/Gateway/Dedup): the 128-bit point identity from the default
/// <c>identifier_keys</c>, and the local LRU claim that stops most duplicates before Redis (Mean and Allocated are per
/// point). The Redis round trip (one per request) is not in here: the gateway-vs-vmagent run measures it.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(PerPointConfig))]
public class DedupPerPointBenchmarks
{
    private const int Points = AgentShapedRequests.Points;
    private readonly PointIdentity _identity = new(["db.instance", PointIdentity.MetricNameKey, PointIdentity.TimestampKey]);
    private ExportMetricsServiceRequest _request = new();
    private UInt128[] _identities = [];
    private IdentityCache _cache = new(1, 1);
    private long _now;

    [GlobalSetup]
    public void Setup()
    {
        _request = AgentShapedRequests.Build(Points);
        _identities = new UInt128[Points];
        Hash(_identities);
        _cache = new IdentityCache(500_000, 60_000);
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "dedup: point identity hash")]
    public UInt128 IdentityHash()
    {
        Hash(_identities);
        return _identities[0];
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "dedup: local LRU claim (new identities, full cache)")]
    public int ClaimNew()
    {
        // Each invocation is a later timestamp: new identities, as in steady state, evicting the oldest.
        _now++;
        var claimed = 0;
        for (var i = 0; i < _identities.Length; i++)
        {
            claimed += _cache.TryClaim(_identities[i] + (UInt128)(ulong)_now, _now) ? 1 : 0;
        }

        return claimed;
    }

    [Benchmark(OperationsPerInvoke = Points, Description = "dedup: local LRU claim (duplicates)")]
    public int ClaimDuplicate()
    {
        var claimed = 0;
        for (var i = 0; i < _identities.Length; i++)
        {
            claimed += _cache.TryClaim(_identities[i], 0) ? 1 : 0;
        }

        return claimed;
    }

    private void Hash(UInt128[] into)
    {
        var n = 0;
        foreach (var rm in _request.ResourceMetrics)
        {
            if (!_identity.TryResource(rm.Resource, out var resource))
            {
                continue;
            }

            foreach (var sm in rm.ScopeMetrics)
            {
                foreach (var metric in sm.Metrics)
                {
                    var m = _identity.Metric(resource, metric.Name);
                    var points = metric.Gauge?.DataPoints ?? metric.Sum.DataPoints;
                    for (var i = 0; i < points.Count; i++)
                    {
                        into[n++] = _identity.Point(m, points[i].Attributes, points[i].TimeUnixNano);
                    }
                }
            }
        }
    }
}

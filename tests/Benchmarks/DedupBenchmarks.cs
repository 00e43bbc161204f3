using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Gateway.Dedup;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// The <c>dedupe</c> processor's local work on a 1,000-point agent-shaped request (no Redis):
/// <c>dotnet run -c Release --project tests/Benchmarks -- --filter '*Dedup*'</c>. Divide by 1,000 for per-point figures.
/// </summary>
[MemoryDiagnoser]
public class DedupBenchmarks
{
    private readonly PointIdentity _identity = new(new DedupeOptions().IdentifierKeys);
    private ExportMetricsServiceRequest _request = new();
    private DedupeProcessor _processor = null!;
    private ulong _time;

    [GlobalSetup]
    public void Setup()
    {
        _request = GatewayHotPathBenchmarks.AgentLikeRequest(1000);
        _processor = new DedupeProcessor("dedupe", new DedupeOptions { CacheSize = 100_000 }, new Discard(), NullLogger<DedupeProcessor>.Instance, TimeProvider.System);
    }

    [Benchmark(Description = "identity hashes, 1000 points")]
    public UInt128 Hash()
    {
        UInt128 acc = 0;
        foreach (var rm in _request.ResourceMetrics)
        {
            _identity.TryResource(rm.Resource, out var resource);
            foreach (var sm in rm.ScopeMetrics)
            {
                foreach (var metric in sm.Metrics)
                {
                    var m = _identity.Metric(resource, metric.Name);
                    var points = metric.DataCase == OpenTelemetry.Proto.Metrics.V1.Metric.DataOneofCase.Gauge ? metric.Gauge.DataPoints : metric.Sum.DataPoints;
                    foreach (var p in points)
                    {
                        acc ^= _identity.Point(m, p.Attributes, p.TimeUnixNano);
                    }
                }
            }
        }

        return acc;
    }

    [Benchmark(Description = "dedupe, new points (hash + LRU claim), 1000 points")]
    public Task NewPoints()
    {
        // A new timestamp each call: every point is a miss that is claimed; the cache is soon full and evicts the oldest.
        var request = _request.Clone();
        _time += 1_000_000_000;
        foreach (var metric in request.ResourceMetrics[0].ScopeMetrics[0].Metrics)
        {
            var points = metric.DataCase == OpenTelemetry.Proto.Metrics.V1.Metric.DataOneofCase.Gauge ? metric.Gauge.DataPoints : metric.Sum.DataPoints;
            foreach (var p in points)
            {
                p.TimeUnixNano = _time;
            }
        }

        return _processor.ConsumeAsync(request, CancellationToken.None);
    }

    [Benchmark(Description = "request clone only (baseline of the line above), 1000 points")]
    public ExportMetricsServiceRequest CloneOnly() => _request.Clone();

    private sealed class Discard : IMetricsConsumer
    {
        public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

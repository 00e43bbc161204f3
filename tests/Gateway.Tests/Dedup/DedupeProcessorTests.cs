using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PgOtelGateway.Gateway.Dedup;
using PgOtelGateway.Gateway.Tests.Admin;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Tests.Common;
using StackExchange.Redis;
using Xunit;
using static PgOtelGateway.Gateway.Tests.Dedup.DedupTestData;

namespace PgOtelGateway.Gateway.Tests.Dedup;

/// <summary><c>dedupe</c> on its own and with the harness's real Redis shared by two processors (two gateways).</summary>
public sealed class DedupeProcessorTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static async Task<DedupeProcessor> StartAsync(IMetricsConsumer next, string redisPrefix)
    {
        var dedupe = Create(next, redisPrefix);
        await dedupe.StartAsync(CancellationToken.None).WaitAsync(Timeout);
        return dedupe;
    }

    private static DedupeProcessor Create(IMetricsConsumer next, string? redisPrefix = null, TimeProvider? time = null, string endpoint = "", ILogger<DedupeProcessor>? logger = null)
    {
        var options = new DedupeOptions { CacheTtl = TimeSpan.FromMinutes(5) };
        if (redisPrefix is not null)
        {
            options.Redis = new RedisOptions { Endpoint = endpoint.Length > 0 ? endpoint : TestEnvironment.Redis, KeyPrefix = redisPrefix + ":" };
            if (endpoint.Length == 0)
            {
                // The real Redis on a loaded 2-core machine can take over the 1 s default; a timed-out confirm
                // leaves claims pending, which these tests would read as a wrong TTL or a lost duplicate.
                options.Redis.Timeout = TimeSpan.FromSeconds(10);
            }
        }

        return new DedupeProcessor("dedupe", options, next, logger ?? NullLogger<DedupeProcessor>.Instance, time ?? TimeProvider.System);
    }

    [Fact]
    public async Task ConsumeAsync_SecondReplicaSendsSamePoints_OnlyFirstPasses()
    {
        var sink = new CollectingConsumer();
        await using var dedupe = Create(sink);

        await dedupe.ConsumeAsync(Agent("pg1:5432", "a", 1000), CancellationToken.None).WaitAsync(Timeout);
        await dedupe.ConsumeAsync(Agent("pg1:5432", "b", 1000), CancellationToken.None).WaitAsync(Timeout);

        Assert.Single(sink.Received);
        Assert.Equal(4, sink.Points);
        var snapshot = dedupe.Snapshot();
        Assert.Equal((4L, 4L, 0L, 4L), (snapshot.Misses, snapshot.HitsLocal, snapshot.HitsRedis, snapshot.CacheSize));
    }

    [Fact]
    public async Task ConsumeAsync_PartlyDuplicate_KeepsStructureMinusDroppedPoints()
    {
        var sink = new CollectingConsumer();
        await using var dedupe = Create(sink);
        await dedupe.ConsumeAsync(Agent("pg1:5432", "a", 1000, tables: 2), CancellationToken.None).WaitAsync(Timeout);

        // Tables t0, t1 and the counter are known; t2 and t3 are new, and so is another instance.
        await dedupe.ConsumeAsync(Merge(Agent("pg1:5432", "b", 1000, tables: 4), Agent("pg2:5432", "b", 1000, tables: 1)), CancellationToken.None).WaitAsync(Timeout);

        var second = sink.Received[1];
        Assert.Equal(2, second.ResourceMetrics.Count);
        var rows = second.ResourceMetrics[0].ScopeMetrics[0].Metrics;
        var metric = Assert.Single(rows); // the counter was a duplicate: its metric is gone
        Assert.Equal("postgresql.table.rows", metric.Name);
        Assert.Equal(["t2", "t3"], metric.Gauge.DataPoints.Select(p => p.Attributes.Single(a => a.Key == "table_name").Value.StringValue));
        Assert.Equal(2, MetricsCounting.DataPoints(new OpenTelemetry.Proto.Collector.Metrics.V1.ExportMetricsServiceRequest { ResourceMetrics = { second.ResourceMetrics[1] } }));
    }

    [Fact]
    public async Task ConsumeAsync_ResourceWithoutIdentifierKeys_PassesEveryTime()
    {
        var sink = new CollectingConsumer();
        await using var dedupe = Create(sink);
        var request = Agent("pg1:5432", "a", 1000);
        request.ResourceMetrics[0].Resource.Attributes.Remove(request.ResourceMetrics[0].Resource.Attributes.Single(a => a.Key == "db.instance"));

        await dedupe.ConsumeAsync(request.Clone(), CancellationToken.None).WaitAsync(Timeout);
        await dedupe.ConsumeAsync(request.Clone(), CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(8, sink.Points);
        Assert.Equal(0, dedupe.Snapshot().HitsLocal);
    }

    [Fact]
    public async Task ConsumeAsync_DownstreamRefuses_ReleasesIdentitiesSoTheRetryPasses()
    {
        var sink = new CollectingConsumer { Refuse = true };
        await using var dedupe = await StartAsync(sink, UniqueName.For());

        await Assert.ThrowsAsync<PipelineRefusedException>(() => dedupe.ConsumeAsync(Agent("pg1:5432", "a", 1000), CancellationToken.None).WaitAsync(Timeout));
        sink.Refuse = false;
        await dedupe.ConsumeAsync(Agent("pg1:5432", "a", 1000), CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(4, sink.Points);
    }

    [Fact]
    public async Task ConsumeAsync_TwoGatewaysShareRedis_FirstWriterWinsWithAClaimAndAConfirmRoundTripPerRequest()
    {
        var prefix = UniqueName.For();
        var sinkA = new CollectingConsumer();
        var sinkB = new CollectingConsumer();
        await using var a = await StartAsync(sinkA, prefix);
        await using var b = await StartAsync(sinkB, prefix);

        for (var t = 1UL; t <= 5; t++)
        {
            // A large request spans several script calls, still one round trip.
            var big = t == 5 ? DedupeProcessor.MaxKeysPerCall + 10 : 3;
            await a.ConsumeAsync(Agent("pg1:5432", "a", t * 1000, tables: big), CancellationToken.None).WaitAsync(Timeout);
            await b.ConsumeAsync(Agent("pg1:5432", "b", t * 1000, tables: big), CancellationToken.None).WaitAsync(Timeout);
        }

        var sa = a.Snapshot();
        var sb = b.Snapshot();
        Assert.Equal(0, sinkB.Points);
        Assert.Equal(sa.Misses, sinkA.Points);
        Assert.Equal(sa.Misses, sb.HitsRedis);
        Assert.Equal((0L, 0L), (sa.RedisErrors, sb.RedisErrors));
        // The writer claims (pending) and confirms once its data is queued; the other only asks, and is told taken.
        Assert.Equal((10L, 5L), (sa.RedisRoundTrips, sb.RedisRoundTrips));

        // Within the local cache's reach, a repeat costs no round trip.
        await b.ConsumeAsync(Agent("pg1:5432", "b", 1000), CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(5L, b.Snapshot().RedisRoundTrips);
        Assert.Equal(4L, b.Snapshot().HitsLocal);
    }

    [Fact]
    public async Task ConsumeAsync_KeysInRedis_AreCompactAndExpireAfterCacheTtl()
    {
        var prefix = UniqueName.For();
        await using var dedupe = await StartAsync(new CollectingConsumer(), prefix);
        await dedupe.ConsumeAsync(Agent("pg1:5432", "a", 1000), CancellationToken.None).WaitAsync(Timeout);

        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestEnvironment.Redis).WaitAsync(Timeout);
        var server = redis.GetServer(redis.GetEndPoints()[0]);
        var keys = server.Keys(pattern: prefix + ":dedup:*").ToList();
        Assert.Equal(4, keys.Count);
        Assert.All(keys, k => Assert.Equal(prefix.Length + ":dedup:".Length + 16, ((byte[])k!).Length));
        var ttl = await redis.GetDatabase().KeyTimeToLiveAsync(keys[0]).WaitAsync(Timeout);
        Assert.InRange(ttl!.Value, TimeSpan.FromMinutes(4), TimeSpan.FromMinutes(5));
    }

    [Fact]
    public async Task ConsumeAsync_RedisUnreachable_DedupsLocallyCountsErrorsAndDoesNotThrow()
    {
        var sink = new CollectingConsumer();
        var closed = FreePort.Get();
        var logger = new ListLogger<DedupeProcessor>();
        await using var dedupe = Create(sink, UniqueName.For(), endpoint: $"127.0.0.1:{closed}", logger: logger);
        await dedupe.StartAsync(CancellationToken.None);

        for (var t = 1UL; t <= 3; t++)
        {
            await dedupe.ConsumeAsync(Agent("pg1:5432", "a", t), CancellationToken.None).WaitAsync(Timeout);
            await dedupe.ConsumeAsync(Agent("pg1:5432", "b", t), CancellationToken.None).WaitAsync(Timeout);
        }

        Assert.Equal(12, sink.Points);
        var snapshot = dedupe.Snapshot();
        Assert.Equal(12, snapshot.HitsLocal);
        Assert.Equal(3, snapshot.RedisErrors);
        Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning); // logged once, not per request
    }
}

/// <summary>A logger that keeps what was logged.</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    private readonly List<(LogLevel Level, string Message)> _entries = [];

    public IReadOnlyList<(LogLevel Level, string Message)> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_entries)
        {
            _entries.Add((logLevel, formatter(state, exception)));
        }
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Gateway.Dedup;
using PgOtelGateway.Gateway.Queue;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Gateway.Tests.Queue;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Tests.Common;
using StackExchange.Redis;
using Xunit;
using static PgOtelGateway.Gateway.Tests.Dedup.DedupTestData;

namespace PgOtelGateway.Gateway.Tests.Dedup;

/// <summary>
/// <c>dedupe</c>'s claims are pending until the request's data is queued: confirmed after, released on refusal, and
/// a point held by someone else's pending claim is never taken for a duplicate. Against the harness's real Redis.
/// </summary>
public sealed class DedupePendingClaimTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static async Task<DedupeProcessor> StartAsync(string processor, IMetricsConsumer next, string prefix, TimeSpan? pendingTtl = null, TimeSpan? pendingWait = null)
    {
        var options = new DedupeOptions
        {
            CacheTtl = TimeSpan.FromMinutes(5),
            PendingTtl = pendingTtl ?? TimeSpan.FromSeconds(10),
            PendingWait = pendingWait ?? TimeSpan.FromSeconds(1),
            Redis = new RedisOptions { Endpoint = TestEnvironment.Redis, KeyPrefix = prefix + ":" },
        };
        var dedupe = new DedupeProcessor(processor, options, next, NullLogger<DedupeProcessor>.Instance, TimeProvider.System);
        await dedupe.StartAsync(CancellationToken.None).WaitAsync(Timeout);
        return dedupe;
    }

    private static async Task<List<(string Value, TimeSpan? Ttl)>> KeysAsync(ConnectionMultiplexer redis, string prefix)
    {
        var server = redis.GetServer(redis.GetEndPoints()[0]);
        var list = new List<(string, TimeSpan?)>();
        foreach (var key in server.Keys(pattern: prefix + ":dedup:*"))
        {
            var value = await redis.GetDatabase().StringGetWithExpiryAsync(key).WaitAsync(Timeout);
            list.Add(((string)value.Value!, value.Expiry));
        }

        return list;
    }

    private static double Claims(string processor, string result) => GatewayMetrics.DedupClaims.WithLabels(processor, result).Value;

    [Fact]
    public async Task ConsumeAsync_UntilDownstreamAccepts_ClaimsArePendingThenConfirmed()
    {
        var prefix = UniqueName.For();
        var sink = new GatedConsumer();
        await using var dedupe = await StartAsync(prefix, sink, prefix, pendingTtl: TimeSpan.FromSeconds(20));
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestEnvironment.Redis).WaitAsync(Timeout);

        var consume = dedupe.ConsumeAsync(Agent("pg1:5432", "a", 1000), CancellationToken.None);
        var call = await sink.NextAsync().WaitAsync(Timeout);

        // In flight: four pending keys carrying this request's token, expiring after pending_ttl.
        var pending = await KeysAsync(redis, prefix);
        Assert.Equal(4, pending.Count);
        Assert.All(pending, k => Assert.StartsWith("p", k.Value, StringComparison.Ordinal));
        Assert.Single(pending.Select(k => k.Value).Distinct());
        Assert.All(pending, k => Assert.InRange(k.Ttl!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(20)));

        call.Accept();
        await consume.WaitAsync(Timeout);

        // Queued: final, for cache_ttl.
        var final = await KeysAsync(redis, prefix);
        Assert.Equal(4, final.Count);
        Assert.All(final, k => Assert.Equal("1", k.Value));
        Assert.All(final, k => Assert.InRange(k.Ttl!.Value, TimeSpan.FromMinutes(4), TimeSpan.FromMinutes(5)));
        Assert.Equal((4.0, 0.0, 0.0), (Claims(prefix, "confirmed"), Claims(prefix, "released"), Claims(prefix, "late")));
        Assert.Equal(2, dedupe.Snapshot().RedisRoundTrips); // claim + confirm
    }

    [Fact]
    public async Task ConsumeAsync_DurableQueueFull_ReleasesPendingClaimsSoTheTwinAndTheRetryPass()
    {
        var prefix = UniqueName.For();
        using var dir = new TempDirectory();
        var exporter = new RecordingExporter();
        exporter.Hold();
        using var queue = new DurableQueue("metrics", dir.Path, QueueTestKit.Options(maxSize: 1 << 20, segmentSize: 128 << 10), [("held", exporter)], NullLoggerFactory.Instance);
        await queue.StartAsync(CancellationToken.None).WaitAsync(Timeout);
        await using var a = await StartAsync(prefix + "_a", queue, prefix);
        var twinSink = new CollectingConsumer();
        await using var b = await StartAsync(prefix + "_b", twinSink, prefix);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestEnvironment.Redis).WaitAsync(Timeout);

        // Fill the queue to the brim while its only exporter is held: until even a one-point request is refused.
        foreach (var points in new[] { 2000, 200, 20, 1 })
        {
            await Assert.ThrowsAsync<PipelineRefusedException>(async () =>
            {
                for (var i = 0; i < 10_000; i++)
                {
                    await queue.ConsumeAsync(QueueTestKit.Request("filler" + i, points), CancellationToken.None).WaitAsync(Timeout);
                }
            });
        }

        var refused = await Assert.ThrowsAsync<PipelineRefusedException>(() => a.ConsumeAsync(Agent("pg1:5432", "a", 1000), CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(RefusalReason.QueueFull, refused.Reason);
        Assert.Empty(await KeysAsync(redis, prefix));
        Assert.Equal((4.0, 0.0), (Claims(prefix + "_a", "released"), Claims(prefix + "_a", "confirmed")));

        // The twin's copy on another gateway is not a duplicate of data nobody kept: it passes whole.
        await b.ConsumeAsync(Agent("pg1:5432", "b", 1000), CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(4, twinSink.Points);

        // A fresh copy of other points passes on the refusing gateway once the queue has room.
        exporter.Release();
        await TestTimeouts.WaitUntilAsync(async () =>
        {
            try
            {
                await a.ConsumeAsync(Agent("pg1:5432", "a", 2000), CancellationToken.None).WaitAsync(Timeout);
                return true;
            }
            catch (PipelineRefusedException)
            {
                return false;
            }
        }, Timeout, "the queue to take data again", TimeSpan.FromMilliseconds(100));
        Assert.Equal(4.0, Claims(prefix + "_a", "confirmed"));
        await queue.StopAsync(CancellationToken.None).WaitAsync(Timeout);
    }

    [Fact]
    public async Task ConsumeAsync_TwinArrivesWhileFirstIsInFlight_WaitsAndIsDuplicateOnceFirstIsQueued()
    {
        var prefix = UniqueName.For();
        var sink = new GatedConsumer();
        await using var dedupe = await StartAsync(prefix, sink, prefix, pendingWait: TimeSpan.FromSeconds(20));

        var first = dedupe.ConsumeAsync(Agent("pg1:5432", "a", 1000), CancellationToken.None);
        var call = await sink.NextAsync().WaitAsync(Timeout);
        var twin = dedupe.ConsumeAsync(Agent("pg1:5432", "b", 1000), CancellationToken.None);
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(GatewayMetrics.DedupPending.WithLabels(prefix, "local").Value >= 4 || twin.IsCompleted), Timeout, "the twin to wait", TimeSpan.FromMilliseconds(10));
        Assert.False(twin.IsCompleted, "the twin was decided while the first copy was still in flight");

        call.Accept();
        await Task.WhenAll(first, twin).WaitAsync(Timeout);

        Assert.Equal(1, sink.Calls);
        var snapshot = dedupe.Snapshot();
        Assert.Equal((4L, 4L), (snapshot.Misses, snapshot.HitsLocal));
        Assert.Equal(4.0, GatewayMetrics.DedupPending.WithLabels(prefix, "local").Value);
    }

    [Fact]
    public async Task ConsumeAsync_TwinArrivesWhileFirstIsInFlightAndFirstIsRefused_TwinPasses()
    {
        var prefix = UniqueName.For();
        var sink = new GatedConsumer();
        await using var dedupe = await StartAsync(prefix, sink, prefix, pendingWait: TimeSpan.FromSeconds(20));

        var first = dedupe.ConsumeAsync(Agent("pg1:5432", "a", 1000), CancellationToken.None);
        var firstCall = await sink.NextAsync().WaitAsync(Timeout);
        var twin = dedupe.ConsumeAsync(Agent("pg1:5432", "b", 1000), CancellationToken.None);
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(GatewayMetrics.DedupPending.WithLabels(prefix, "local").Value >= 4 || twin.IsCompleted), Timeout, "the twin to wait", TimeSpan.FromMilliseconds(10));

        // The first copy never reaches the queue: the twin's copy must, not be dropped as its duplicate.
        firstCall.Refuse();
        await Assert.ThrowsAsync<PipelineRefusedException>(() => first.WaitAsync(Timeout));
        var twinCall = await sink.NextAsync().WaitAsync(Timeout);
        Assert.Equal(4, MetricsCounting.DataPoints(twinCall.Request));
        Assert.Equal("b", twinCall.Request.ResourceMetrics[0].Resource.Attributes.Single(kv => kv.Key == "agent.id").Value.StringValue);
        twinCall.Accept();
        await twin.WaitAsync(Timeout);

        // And the first agent's retry is now a duplicate.
        var retry = dedupe.ConsumeAsync(Agent("pg1:5432", "a", 1000), CancellationToken.None);
        await retry.WaitAsync(Timeout);
        Assert.Equal(2, sink.Calls);
        Assert.Equal((4.0, 4.0), (Claims(prefix, "released"), Claims(prefix, "confirmed")));
    }

    [Fact]
    public async Task ConsumeAsync_PendingClaimOfAGatewayThatDied_RefusedWithRetryInfoThenAcceptedAfterExpiry()
    {
        var prefix = UniqueName.For();
        var pendingTtl = TimeSpan.FromSeconds(2);
        var deadSink = new GatedConsumer();
        await using var dead = await StartAsync(prefix + "_dead", deadSink, prefix, pendingTtl: pendingTtl);
        var sink = new CollectingConsumer();
        await using var alive = await StartAsync(prefix + "_alive", sink, prefix, pendingTtl: pendingTtl, pendingWait: TimeSpan.FromMilliseconds(200));

        // The first gateway claims and then never gets its data queued (as if killed there).
        var stuck = dead.ConsumeAsync(Agent("pg1:5432", "a", 1000), CancellationToken.None);
        var stuckCall = await deadSink.NextAsync().WaitAsync(Timeout);

        // Its claims are pending: the copy on the other gateway is neither passed nor dropped, but refused for now.
        var refused = await Assert.ThrowsAsync<PipelineRefusedException>(() => alive.ConsumeAsync(Agent("pg1:5432", "b", 1000), CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(RefusalReason.Unavailable, refused.Reason);
        Assert.Equal(pendingTtl, refused.RetryAfter);
        Assert.Equal(0, sink.Points);
        Assert.Equal(1.0, GatewayMetrics.DedupPendingRefused.WithLabels(prefix + "_alive").Value);
        Assert.True(GatewayMetrics.DedupPending.WithLabels(prefix + "_alive", "redis").Value >= 4);

        // Retried after the delay it was given, it finds the claims expired and takes them.
        await Task.Delay(refused.RetryAfter);
        await alive.ConsumeAsync(Agent("pg1:5432", "b", 1000), CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(4, sink.Points);

        // Had the first gateway come back after all, its confirm would find its claims gone and count them late.
        stuckCall.Accept();
        await stuck.WaitAsync(Timeout);
        Assert.Equal(4.0, Claims(prefix + "_dead", "late"));
    }
}

/// <summary>The end of a test pipeline whose calls the test completes one by one: accepted or refused.</summary>
internal sealed class GatedConsumer : IMetricsConsumer
{
    private readonly System.Threading.Channels.Channel<Call> _calls = System.Threading.Channels.Channel.CreateUnbounded<Call>();
    private int _count;

    public int Calls => Volatile.Read(ref _count);

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _count);
        var call = new Call(request);
        _calls.Writer.TryWrite(call);
        return call.Done.Task;
    }

    /// <summary>The next call made (waits for it).</summary>
    public Task<Call> NextAsync() => _calls.Reader.ReadAsync().AsTask();

    internal sealed class Call(ExportMetricsServiceRequest request)
    {
        public ExportMetricsServiceRequest Request { get; } = request;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Accept() => Done.TrySetResult();

        public void Refuse() => Done.TrySetException(new PipelineRefusedException(RefusalReason.QueueFull, "full", TimeSpan.FromSeconds(1)));
    }
}

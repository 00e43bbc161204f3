using Microsoft.Extensions.Logging.Abstractions;
using PgOtelGateway.Gateway.Dedup;
using PgOtelGateway.Gateway.Tests.Admin;
using PgOtelGateway.Tests.Common;
using StackExchange.Redis;
using Xunit;
using static PgOtelGateway.Gateway.Tests.Dedup.DedupTestData;

namespace PgOtelGateway.Gateway.Tests.Dedup;

/// <summary><c>ha_tracker</c> on a hand-moved clock, alone and with two processors sharing the real Redis.</summary>
public sealed class HaTrackerProcessorTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static HaTrackerProcessor Create(CollectingConsumer sink, TimeProvider time, string? redisPrefix = null)
    {
        var options = new HaTrackerOptions { UpdateTimeout = TimeSpan.FromSeconds(15), FailoverTimeout = TimeSpan.FromSeconds(30) };
        if (redisPrefix is not null)
        {
            options.Redis = new RedisOptions { Endpoint = TestEnvironment.Redis, KeyPrefix = redisPrefix + ":" };
        }

        return new HaTrackerProcessor("ha_tracker", options, sink, NullLogger<HaTrackerProcessor>.Instance, time);
    }

    private static async Task<HaTrackerProcessor> StartAsync(CollectingConsumer sink, TimeProvider time, string? redisPrefix = null)
    {
        var tracker = Create(sink, time, redisPrefix);
        await tracker.StartAsync(CancellationToken.None).WaitAsync(Timeout);
        return tracker;
    }

    private static async Task<int> SendAsync(HaTrackerProcessor tracker, CollectingConsumer sink, string agent, string cluster = "c1")
    {
        var before = sink.Points;
        await tracker.ConsumeAsync(Agent("pg1:5432", agent, 1, cluster: cluster), CancellationToken.None).WaitAsync(Timeout);
        return sink.Points - before;
    }

    [Fact]
    public async Task ConsumeAsync_LocalOnly_FirstReplicaElectedOtherDroppedUntilFailoverTimeout()
    {
        var clock = new ManualTimeProvider();
        var sink = new CollectingConsumer();
        await using var tracker = Create(sink, clock);

        Assert.Equal(4, await SendAsync(tracker, sink, "a"));
        Assert.Equal(0, await SendAsync(tracker, sink, "b"));
        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(0, await SendAsync(tracker, sink, "b"));
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(4, await SendAsync(tracker, sink, "b"));
        Assert.Equal(0, await SendAsync(tracker, sink, "a"));

        var row = Assert.Single(tracker.Snapshot().Clusters);
        Assert.Equal(("c1", "b", 1L), (row.Cluster, row.ElectedReplica, row.Failovers));
        Assert.Equal(clock.GetUtcNow(), row.Since);
    }

    [Fact]
    public async Task ConsumeAsync_DataWithoutClusterOrReplica_Passes()
    {
        var sink = new CollectingConsumer();
        await using var tracker = Create(sink, new ManualTimeProvider());
        var request = Agent("pg1:5432", "a", 1);
        var attributes = request.ResourceMetrics[0].Resource.Attributes;
        attributes.Remove(attributes.Single(a => a.Key == "agent.id"));

        await tracker.ConsumeAsync(request, CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(4, sink.Points);
        Assert.Empty(tracker.Snapshot().Clusters);
    }

    [Fact]
    public async Task ConsumeAsync_RequestMixesClusters_DecidesEachClusterOnItsOwnInOneRoundTrip()
    {
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var sink = new CollectingConsumer();
        await using var tracker = await StartAsync(sink, clock, UniqueName.For());
        await tracker.ConsumeAsync(Agent("pg1:5432", "a", 1, cluster: "c1"), CancellationToken.None).WaitAsync(Timeout);
        await tracker.ConsumeAsync(Agent("pg2:5432", "y", 1, cluster: "c2"), CancellationToken.None).WaitAsync(Timeout);

        // b (c1) is not elected, x (c2) is not, a (c1) is, and c3 is new: only a and z pass.
        var before = sink.Points;
        await tracker.ConsumeAsync(
            Merge(Agent("pg1:5432", "b", 2, cluster: "c1"), Agent("pg2:5432", "x", 2, cluster: "c2"), Agent("pg1:5432", "a", 2, cluster: "c1"), Agent("pg3:5432", "z", 2, cluster: "c3")),
            CancellationToken.None).WaitAsync(Timeout);

        var last = sink.Received[^1];
        Assert.Equal(["a", "z"], last.ResourceMetrics.Select(r => r.Resource.Attributes.Single(a => a.Key == "agent.id").Value.StringValue));
        Assert.Equal(8, sink.Points - before);
        Assert.Equal(["c1", "c2", "c3"], tracker.Snapshot().Clusters.Select(c => c.Cluster));
        Assert.Equal(3, tracker.RoundTrips);
    }

    [Fact]
    public async Task ConsumeAsync_TwoGatewaysShareRedis_OneReplicaWinsAndFailoverMovesTheElection()
    {
        var prefix = UniqueName.For();
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var sinkA = new CollectingConsumer();
        var sinkB = new CollectingConsumer();
        await using var gatewayA = await StartAsync(sinkA, clock, prefix);
        await using var gatewayB = await StartAsync(sinkB, clock, prefix);

        // Replica a reports through gateway A, replica b through gateway B, every 10 s.
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(4, await SendAsync(gatewayA, sinkA, "a"));
            Assert.Equal(0, await SendAsync(gatewayB, sinkB, "b"));
            clock.Advance(TimeSpan.FromSeconds(10));
        }

        // The elected replica refreshed Redis at most every update_timeout: 60 s of data, ≤ 1 + 60/15 round trips.
        Assert.InRange(gatewayA.RoundTrips, 1, 5);

        // a stops. Within failover_timeout + one interval, b's data takes over through gateway B.
        var electedAfter = TimeSpan.Zero;
        while (await SendAsync(gatewayB, sinkB, "b") == 0)
        {
            clock.Advance(TimeSpan.FromSeconds(10));
            electedAfter += TimeSpan.FromSeconds(10);
            Assert.True(electedAfter <= TimeSpan.FromSeconds(40), "b was not elected within failover_timeout + one interval");
        }

        var row = Assert.Single(gatewayB.Snapshot().Clusters);
        Assert.Equal(("b", 1L), (row.ElectedReplica, row.Failovers));

        // a comes back: now it is the one dropped, and gateway A learns of the failover.
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, await SendAsync(gatewayA, sinkA, "a"));
        Assert.Equal(("b", 1L), (gatewayA.Snapshot().Clusters[0].ElectedReplica, gatewayA.Snapshot().Clusters[0].Failovers));
    }

    [Fact]
    public async Task ElectScript_ManyGatewaysRaceForANewCluster_ExactlyOneReplicaIsElected()
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestEnvironment.Redis).WaitAsync(Timeout);
        var db = redis.GetDatabase();
        var key = (RedisKey)(UniqueName.For() + ":ha:c1");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        var calls = Enumerable.Range(0, 50).Select(i => db.ScriptEvaluateAsync(
            HaTrackerProcessor.ElectScript, [key], [now, 15_000, 30_000, 60_000, $"replica-{i}"])).ToArray();
        var answers = (await Task.WhenAll(calls).WaitAsync(Timeout)).Select(r => (RedisResult[])r!).ToArray();

        Assert.Single(answers, a => (long)a[3] == 1);
        var winner = answers.Single(a => (long)a[3] == 1)[0].ToString();
        Assert.All(answers, a => Assert.Equal(winner, a[0].ToString()));

        // Not seen for failover_timeout: the next other replica takes over once (outcome 2), the one after does not.
        var later = now + 30_001;
        var first = (RedisResult[])(await db.ScriptEvaluateAsync(HaTrackerProcessor.ElectScript, [key], [later, 15_000, 30_000, 60_000, "late-1"]).WaitAsync(Timeout))!;
        var second = (RedisResult[])(await db.ScriptEvaluateAsync(HaTrackerProcessor.ElectScript, [key], [later, 15_000, 30_000, 60_000, "late-2"]).WaitAsync(Timeout))!;
        Assert.Equal(("late-1", 2L), (first[0].ToString(), (long)first[3]));
        Assert.Equal(("late-1", 0L), (second[0].ToString(), (long)second[3]));
    }

    [Fact]
    public async Task ClaimScript_ConcurrentWriters_EachIdentityTakenExactlyOnce()
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestEnvironment.Redis).WaitAsync(Timeout);
        var db = redis.GetDatabase();
        var prefix = UniqueName.For() + ":";
        var ids = new byte[200 * 16];
        for (var i = 0; i < 200; i++)
        {
            PointIdentity.Write((UInt128)(ulong)i, ids.AsSpan(i * 16, 16));
        }

        var calls = Enumerable.Range(0, 8).Select(w => db.ScriptEvaluateAsync(DedupeProcessor.ClaimScript, null, [60_000, prefix, ids, $"pw{w}"])).ToArray();
        var answers = (await Task.WhenAll(calls).WaitAsync(Timeout)).Select(r => (string)r!).ToArray();

        // One writer holds each identity pending; the others see it pending, not taken.
        Assert.All(answers, a => Assert.Equal(200, a.Length));
        for (var k = 0; k < 200; k++)
        {
            Assert.Equal(1, answers.Count(a => a[k] == '1'));
            Assert.Equal(7, answers.Count(a => a[k] == 'p'));
        }

        var key = new byte[prefix.Length + 16];
        System.Text.Encoding.ASCII.GetBytes(prefix).CopyTo(key, 0);
        PointIdentity.Write(199, key.AsSpan(prefix.Length));
        var holder = Array.FindIndex(answers, a => a[199] == '1');
        Assert.Equal($"pw{holder}", (string?)await db.StringGetAsync(key).WaitAsync(Timeout));

        // Once the holder confirms, the identity is final: everyone else is told it is taken.
        var late = (long)(await db.ScriptEvaluateAsync(DedupeProcessor.ConfirmScript, null, [60_000, prefix, ids.AsSpan(199 * 16, 16).ToArray(), $"pw{holder}"]).WaitAsync(Timeout))!;
        Assert.Equal(0, late);
        Assert.Equal("1", (string?)await db.StringGetAsync(key).WaitAsync(Timeout));
        var again = (string)(await db.ScriptEvaluateAsync(DedupeProcessor.ClaimScript, null, [60_000, prefix, ids, "pw-late"]).WaitAsync(Timeout))!;
        Assert.Equal('0', again[199]);
        Assert.Equal('p', again[0]);
    }
}

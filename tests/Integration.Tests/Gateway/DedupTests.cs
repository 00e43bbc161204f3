using System.Globalization;
using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// HA deduplication across two gateways sharing the harness's Redis, checked in the harness's Prometheus: an HA
/// pair of agents reporting one PostgreSQL, each agent sending to another gateway.
/// </summary>
public sealed class DedupTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Dedupe_HaPairThroughTwoGateways_EverySampleOnceInPrometheusWithoutGaps()
    {
        var name = UniqueName.For();
        var pair = new HaPair(name, TimeSpan.FromSeconds(2));
        var processors = DedupAdmin.DedupeYaml(name);
        await using var gatewayA = await TestGateway.StartAsync(processors: processors, processorList: "dedupe, ");
        await using var gatewayB = await TestGateway.StartAsync(processors: processors, processorList: "dedupe, ");

        // Both agents scrape at each boundary and send at once; their values differ a little, as real scrapes do, so
        // a duplicate that got through would be refused by Prometheus and counted as dropped.
        const int scrapes = 12;
        var rechecks = PgOtelGateway.Gateway.Telemetry.GatewayMetrics.DedupRechecks.WithLabels("dedupe");
        var rechecksBefore = rechecks.Value;
        var first = pair.NextBoundary(TimeSpan.FromSeconds(1));
        var times = new List<DateTimeOffset>();
        for (var k = 0; k < scrapes; k++)
        {
            var at = first + (k * pair.Interval);
            await HaPair.WaitUntilAsync(at);
            await Task.WhenAll(
                pair.SendAsync(gatewayA, "agent-a", at, (k * 10) + 1),
                pair.SendAsync(gatewayB, "agent-b", at, (k * 10) + 2));
            times.Add(at);
        }

        using var prometheus = new PrometheusClient();
        var series = await pair.WaitForSamplesAsync(prometheus, first, s => s.Samples.Count >= scrapes);

        var expected = times.Select(t => t.ToUnixTimeMilliseconds() / 1000.0).ToList();
        foreach (var s in series)
        {
            // Exactly the scrape times, each once, each value from one of the two agents' scrapes at that time.
            Assert.Equal(expected, s.Samples.Select(x => x.Time).ToList());
            for (var k = 0; k < scrapes; k++)
            {
                Assert.Contains(s.Samples[k].Value, new[] { (k * 10) + 1.0, (k * 10) + 2.0 });
            }
        }

        // Nothing was refused by Prometheus on either gateway.
        Assert.Equal((0L, 0L), Refused(await gatewayA.ExporterCountsAsync()));
        Assert.Equal((0L, 0L), Refused(await gatewayB.ExporterCountsAsync()));

        // Each point passed exactly once over both gateways. A request that wins costs two Redis round trips (claim,
        // confirm once queued); the twin's costs one, plus a re-check or two when it arrived while the winner's claim
        // was still pending.
        var a = await DedupAdmin.DedupAsync(gatewayA);
        var b = await DedupAdmin.DedupAsync(gatewayB);
        output.WriteLine($"gateway A: {a}");
        output.WriteLine($"gateway B: {b}");
        const long points = scrapes * HaPair.SeriesPerScrape;
        Assert.Equal(points, a.Misses + b.Misses);
        Assert.Equal(points, a.HitsRedis + b.HitsRedis + a.HitsLocal + b.HitsLocal);
        Assert.True(a.HitsRedis + b.HitsRedis > 0, "no duplicate was found through Redis");
        Assert.Equal((0L, 0L), (a.RedisErrors, b.RedisErrors));
        var asked = (long)(rechecks.Value - rechecksBefore);
        output.WriteLine($"re-checks of pending claims: {asked}");
        Assert.InRange(a.RedisRoundTrips + b.RedisRoundTrips - asked, 3 * scrapes, 4 * scrapes);
        Assert.Contains(a.Misses.ToString(CultureInfo.InvariantCulture), await AdminCliAsync(gatewayA, "dedup"), StringComparison.Ordinal);

        static (long Failed, long Dropped) Refused((long Sent, long Failed, long Dropped) c) => (c.Failed, c.Dropped);
    }

    [Fact]
    public async Task HaTracker_ElectedAgentStops_OtherIsElectedWithinFailoverTimeoutAndAdminShowsFailover()
    {
        var name = UniqueName.For();
        var pair = new HaPair(name, TimeSpan.FromSeconds(1));
        // Short, but with room for a busy machine: agent-a must not lose its election while it reports.
        var failover = TimeSpan.FromSeconds(6);
        var processors = $"""
            ha_tracker:
              update_timeout: 2s
              failover_timeout: 6s
              redis:
                endpoint: {TestEnvironment.Redis}
                key_prefix: "{name}:"
            """;
        await using var gatewayA = await TestGateway.StartAsync(processors: processors, processorList: "ha_tracker, ");
        await using var gatewayB = await TestGateway.StartAsync(processors: processors, processorList: "ha_tracker, ");

        // agent-a starts first and is elected; then both report, agent-b's data is dropped throughout.
        var k = 0;
        var at = pair.NextBoundary(TimeSpan.FromSeconds(1));
        var start = at;
        for (; k < 2; k++, at += pair.Interval)
        {
            await HaPair.WaitUntilAsync(at);
            await pair.SendAsync(gatewayA, "agent-a", at, (k * 10) + 1);
        }

        var lastA = at;
        var lastAAcked = DateTimeOffset.UtcNow;
        for (; k < 7; k++, at += pair.Interval)
        {
            await HaPair.WaitUntilAsync(at);
            await Task.WhenAll(pair.SendAsync(gatewayA, "agent-a", at, (k * 10) + 1), pair.SendAsync(gatewayB, "agent-b", at, (k * 10) + 2));
            lastA = at;
            lastAAcked = DateTimeOffset.UtcNow;
            var view = await DedupAdmin.HaAsync(gatewayB, pair.Cluster);
            Assert.Equal("agent-a", view?.ElectedReplica);
        }

        // agent-a stops. agent-b's data takes over at the latest with its first scrape sent after agent-a's last
        // sign of life + failover_timeout, i.e. within failover_timeout + one interval.
        DateTimeOffset? electedAt = null;
        DateTimeOffset previousSend = lastAAcked;
        for (; k < 40 && electedAt is null; k++, at += pair.Interval)
        {
            await HaPair.WaitUntilAsync(at);
            var sent = DateTimeOffset.UtcNow;
            await pair.SendAsync(gatewayB, "agent-b", at, (k * 10) + 2);
            var view = await DedupAdmin.HaAsync(gatewayB, pair.Cluster);
            if (view?.ElectedReplica == "agent-b")
            {
                electedAt = at;
                Assert.Equal(1, view.Failovers);
                Assert.True(previousSend < lastAAcked + failover, $"agent-b's scrape sent at {previousSend:O} did not take over, though agent-a was last seen before {lastAAcked:O}");
                Assert.True(sent >= lastA + TimeSpan.FromSeconds(1), $"agent-b took over at {sent:O}, right after agent-a's last scrape at {lastA:O}");
            }

            previousSend = sent;
        }

        Assert.NotNull(electedAt);
        var cli = await AdminCliAsync(gatewayB, "ha");
        Assert.Contains(pair.Cluster, cli, StringComparison.Ordinal);
        Assert.Contains("agent-b", cli, StringComparison.Ordinal);
        output.WriteLine($"agent-a last scraped {lastA:O}; agent-b elected with its scrape of {electedAt:O} ({(electedAt.Value - lastA).TotalSeconds} s later)");

        // Prometheus got agent-a's samples up to its stop, then agent-b's: one writer per timestamp, none refused.
        using var prometheus = new PrometheusClient();
        var series = await pair.WaitForSamplesAsync(prometheus, start, s => s.Samples.Count > 0 && s.Samples[^1].Time >= (at - pair.Interval).ToUnixTimeMilliseconds() / 1000.0);
        foreach (var s in series)
        {
            foreach (var (time, value) in s.Samples)
            {
                var fromA = ((long)value % 10) == 1;
                Assert.True(fromA ? time <= lastA.ToUnixTimeMilliseconds() / 1000.0 : time >= electedAt.Value.ToUnixTimeMilliseconds() / 1000.0,
                    string.Create(CultureInfo.InvariantCulture, $"sample {value} at {time} came from the wrong agent"));
            }
        }

        Assert.Equal(0L, (await gatewayA.ExporterCountsAsync()).Dropped);
        Assert.Equal(0L, (await gatewayB.ExporterCountsAsync()).Dropped);
    }

    /// <summary>What <c>pgotel-gateway admin COMMAND --url …</c> prints for a gateway.</summary>
    private static async Task<string> AdminCliAsync(TestGateway gateway, string command)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await PgOtelGateway.Gateway.Admin.AdminCli.RunAsync(
            PgOtelGateway.Shared.Cli.CommandLine.Parse(["admin", command, "--url", $"http://127.0.0.1:{gateway.AdminPort}/"]), stdout, stderr).WaitAsync(TestTimeouts.Short);
        Assert.True(code == 0, stderr.ToString());
        return stdout.ToString();
    }
}

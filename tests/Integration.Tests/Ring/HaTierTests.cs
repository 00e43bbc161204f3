using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Ring;

/// <summary>
/// The gateway tier as a whole: three gateway processes forming a ring through the shared Redis, each running the
/// Redis-backed <c>dedupe</c>, the real Prometheus behind them, and an HA pair of agents (identical output but for
/// <c>agent.id</c>, timestamps on the interval grid), each agent talking to another gateway.
/// </summary>
public sealed class HaTierTests(ITestOutputHelper output)
{
    /// <summary>PostgreSQL instances the HA pair reports (so the streams spread over every member).</summary>
    private const int Instances = 4;

    [Fact]
    public async Task HaPairThroughRedisRing_KillNineOneGatewayUnderLoad_EverySampleOnceNoGapAndRingDropsIt()
    {
        var name = UniqueName.For();
        using var dir = new TempDirectory();
        var gateways = GatewayProcess.Create("gw" + name[^6..], 3, dir.Path);
        var members = $"redis:\n  endpoint: {TestEnvironment.Redis}\n  key_prefix: \"{name}-ring:\"\n  heartbeat_interval: 500ms\n  ttl: 3s";
        await Task.WhenAll(gateways.Select(g => g.StartAsync(members, processors: DedupAdmin.DedupeYaml(name), processorList: "dedupe, ")));
        try
        {
            foreach (var g in gateways)
            {
                await g.WaitForRingAsync([.. gateways]);
            }

            var interval = TimeSpan.FromSeconds(2);
            var pairs = Enumerable.Range(0, Instances).Select(i => new HaPair($"{name}_p{i}", interval)).ToList();
            var victim = gateways[1];
            var a = new HaSender("agent-a", gateways, 0);
            var b = new HaSender("agent-b", gateways, 1);

            // Both agents scrape at each boundary and send at once. Their values differ (as two real scrapes a few
            // milliseconds apart do), so a duplicate that got past dedupe would be refused by Prometheus: the
            // exporters' dropped counters would grow and a sample could carry the other agent's value.
            var ticks = TestEnvironment.Soak ? 150 : 16;
            const int KillAt = 6;
            var times = new List<DateTimeOffset>();
            var at = pairs[0].NextBoundary(TimeSpan.FromSeconds(1));
            for (var k = 0; k < ticks; k++, at += interval)
            {
                await HaPair.WaitUntilAsync(at);
                await Task.WhenAll(
                    a.SendAsync(HaSender.Scrape(pairs, a.Agent, at, (k * 10) + 1)),
                    b.SendAsync(HaSender.Scrape(pairs, b.Agent, at, (k * 10) + 2)));
                times.Add(at);
                if (k == KillAt)
                {
                    // Between two scrapes, once the victim has written what it acknowledged: a SIGKILL loses only
                    // what is in flight, and the senders retry exactly that.
                    await TestTimeouts.WaitUntilAsync(async () => (await victim.ExporterAsync()).Queued == 0, TestTimeouts.Short, "the victim's queue to drain", TimeSpan.FromMilliseconds(20));
                    Assert.Equal(0, (await victim.ExporterAsync()).Dropped);
                    await victim.KillAsync();
                    output.WriteLine($"killed {victim.Id} after the scrape of {at:O}");
                }
            }

            output.WriteLine($"agent-a: {a.Retries} retries, {a.Failovers} failovers; agent-b: {b.Retries} retries, {b.Failovers} failovers, now on {b.Current.Id}");

            // agent-b lost its gateway and went on through another one.
            Assert.True(b.Failovers > 0, "agent-b never failed over");
            Assert.NotSame(victim, b.Current);

            // Every (series, timestamp) exactly once, with one agent's value, and no scrape missing around the kill.
            await HaTierCheck.AssertExactlyOnceAsync($"{{__name__=~\"{name}_p[0-9]+_.*\"}}", Instances * HaPair.SeriesPerScrape, times,
                (k, value) => value == (k * 10) + 1 || value == (k * 10) + 2);

            // Prometheus refused nothing; the survivors' dedupe saw both agents' copies and kept one.
            var survivors = new[] { gateways[0], gateways[2] };
            foreach (var g in survivors)
            {
                var (sent, dropped, _) = await g.ExporterAsync();
                output.WriteLine($"{g.Id}: sent {sent}, dropped {dropped}, dedup {await GatewayDedup.DedupAsync(g)}, fallback for {victim.Id}: {await g.MetricAsync("pgotel_gateway_forward_fallback_points_total", $"member=\"{victim.Id}\"")}");
                Assert.Equal(0, dropped);
            }

            var dedup = await GatewayDedup.SumAsync(survivors);
            Assert.True(dedup.HitsLocal + dedup.HitsRedis > 0, $"the survivors dropped no duplicate: {dedup}");

            // The ring on each survivor shows the killed member gone (its heartbeat key expired).
            foreach (var g in survivors)
            {
                await g.WaitForRingAsync(survivors);
                Assert.DoesNotContain(await g.RingAsync(), m => m.Id == victim.Id);
            }
        }
        catch
        {
            foreach (var g in gateways)
            {
                output.WriteLine($"--- {g.Id} ---\n{g.Output}");
            }

            throw;
        }
        finally
        {
            foreach (var g in gateways)
            {
                await g.DisposeAsync();
            }
        }
    }
}

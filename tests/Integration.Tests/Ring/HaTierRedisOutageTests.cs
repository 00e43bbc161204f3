using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Ring;

/// <summary>The gateway tier of <see cref="HaTierTests"/> while the shared Redis is down for 30 s.</summary>
[Collection(ServiceFaultCollection.Name)]
[Trait("Category", ServiceFaultCollection.Category)]
public sealed class HaTierRedisOutageTests(ITestOutputHelper output)
{
    private const int Instances = 4;

    [Fact]
    public async Task HaPairThroughRing_RedisDownForThirtySeconds_IngestionContinuesAndDedupUsesRedisAgain()
    {
        var outage = TimeSpan.FromSeconds(TestEnvironment.Soak ? 300 : 30);
        var name = UniqueName.For();
        using var dir = new TempDirectory();

        // A static ring (membership must not depend on the Redis that goes away). Both agents' copies of a stream
        // meet at its owner, whose local cache would catch every duplicate before Redis is asked; a one-entry cache
        // makes Redis decide, as it does when the copies land on different gateways (fallback, ring changes).
        var gateways = GatewayProcess.Create("gw" + name[^6..], 3, dir.Path);
        var members = $"probe_interval: 500ms\nstatic: {GatewayProcess.StaticMembers(gateways)}";
        var processors = DedupAdmin.DedupeYaml(name) + "\n  cache_size: 1";
        await Task.WhenAll(gateways.Select(g => g.StartAsync(members, processors: processors, processorList: "dedupe, ")));
        try
        {
            foreach (var g in gateways)
            {
                await g.WaitForRingAsync([.. gateways]);
            }

            var interval = TimeSpan.FromSeconds(2);
            var pairs = Enumerable.Range(0, Instances).Select(i => new HaPair($"{name}_p{i}", interval)).ToList();
            var a = new HaSender("agent-a", gateways, 0);
            var b = new HaSender("agent-b", gateways, 2);

            // Identical values from both agents: while Redis is down a duplicate may pass (the local cache holds one
            // identity), and Prometheus takes an identical sample twice without complaint or a second sample.
            var times = new List<DateTimeOffset>();
            var at = pairs[0].NextBoundary(TimeSpan.FromSeconds(1));
            async Task ScrapeAsync()
            {
                await HaPair.WaitUntilAsync(at);
                var value = times.Count;
                await Task.WhenAll(a.SendAsync(HaSender.Scrape(pairs, a.Agent, at, value)), b.SendAsync(HaSender.Scrape(pairs, b.Agent, at, value)));
                times.Add(at);
                at += interval;
            }

            for (var i = 0; i < 3; i++)
            {
                await ScrapeAsync();
            }

            var before = await GatewayDedup.SumAsync(gateways);
            Assert.True(before.HitsRedis > 0, $"Redis found no duplicate before the outage: {before}");
            Assert.Equal(0, before.RedisErrors);

            await ServiceControl.StopAsync("redis");
            try
            {
                var until = DateTimeOffset.UtcNow + outage;
                while (DateTimeOffset.UtcNow < until)
                {
                    await ScrapeAsync();
                }
            }
            finally
            {
                await ServiceControl.StartAsync("redis");
            }

            // Ingestion went on: every scrape of the outage was acknowledged (ScrapeAsync retries until it is).
            var during = await GatewayDedup.SumAsync(gateways);
            output.WriteLine($"before {before}; after the outage {during}; retries a {a.Retries}, b {b.Retries}");
            Assert.True(during.RedisErrors > 0, "no Redis error was counted during the outage");
            Assert.Equal(before.HitsRedis, during.HitsRedis);

            // Redis is back: the gateways use it again and find duplicates through it.
            var recovered = during;
            for (var i = 0; i < 30 && recovered.HitsRedis == during.HitsRedis; i++)
            {
                await ScrapeAsync();
                recovered = await GatewayDedup.SumAsync(gateways);
            }

            output.WriteLine($"recovered {recovered} after {times.Count} scrapes");
            Assert.True(recovered.HitsRedis > during.HitsRedis, $"dedup did not use Redis again after it came back: {recovered}");

            // No gap and no refusal: every scrape time of every series is in Prometheus once.
            await HaTierCheck.AssertExactlyOnceAsync($"{{__name__=~\"{name}_p[0-9]+_.*\"}}", Instances * HaPair.SeriesPerScrape, times, (k, value) => value == k);
            foreach (var g in gateways)
            {
                Assert.Equal(0, (await g.ExporterAsync()).Dropped);
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

using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary><c>dedupe</c> while the shared Redis is down: ingestion goes on, errors are counted, Redis is used again after.</summary>
[Collection(ServiceFaultCollection.Name)]
[Trait("Category", ServiceFaultCollection.Category)]
public sealed class DedupRedisOutageTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Dedupe_RedisDownForThirtySeconds_IngestionContinuesErrorsCountedAndRedisDedupRecovers()
    {
        var outage = TimeSpan.FromSeconds(TestEnvironment.Soak ? 300 : 30);
        var name = UniqueName.For();
        var pair = new HaPair(name, TimeSpan.FromSeconds(2));
        var processors = DedupAdmin.DedupeYaml(name);
        await using var gatewayA = await TestGateway.StartAsync(processors: processors, processorList: "dedupe, ");
        await using var gatewayB = await TestGateway.StartAsync(processors: processors, processorList: "dedupe, ");

        // Identical values from both agents: while Redis is down both copies pass (each gateway dedups only what it
        // sees), and Prometheus takes an identical sample twice without complaint.
        var at = pair.NextBoundary(TimeSpan.FromSeconds(1));
        var start = at;
        var scrapes = 0;
        async Task ScrapeAsync()
        {
            await HaPair.WaitUntilAsync(at);
            await Task.WhenAll(pair.SendAsync(gatewayA, "agent-a", at, scrapes), pair.SendAsync(gatewayB, "agent-b", at, scrapes));
            scrapes++;
            at += pair.Interval;
        }

        for (var i = 0; i < 3; i++)
        {
            await ScrapeAsync();
        }

        var before = Sum(await DedupAdmin.DedupAsync(gatewayA), await DedupAdmin.DedupAsync(gatewayB));
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

        var during = Sum(await DedupAdmin.DedupAsync(gatewayA), await DedupAdmin.DedupAsync(gatewayB));
        output.WriteLine($"before {before}; after the outage {during}");
        Assert.True(during.RedisErrors > 0, "no Redis error was counted during the outage");
        Assert.Equal(before.HitsRedis, during.HitsRedis);

        // Redis is back: within a minute the gateways use it again and find duplicates through it.
        var recovered = during;
        for (var i = 0; i < 30 && recovered.HitsRedis == during.HitsRedis; i++)
        {
            await ScrapeAsync();
            recovered = Sum(await DedupAdmin.DedupAsync(gatewayA), await DedupAdmin.DedupAsync(gatewayB));
        }

        output.WriteLine($"recovered {recovered}");
        Assert.True(recovered.HitsRedis > during.HitsRedis, $"dedup did not use Redis again after it came back: {recovered}");
        var errorsAfterRecovery = recovered.RedisErrors;
        for (var i = 0; i < 3; i++)
        {
            await ScrapeAsync();
        }

        var settled = Sum(await DedupAdmin.DedupAsync(gatewayA), await DedupAdmin.DedupAsync(gatewayB));
        Assert.Equal(errorsAfterRecovery, settled.RedisErrors);
        Assert.True(settled.HitsRedis > recovered.HitsRedis || settled.HitsLocal > recovered.HitsLocal);

        // No gap: every scrape time of every series reached Prometheus, and nothing was refused.
        using var prometheus = new PrometheusClient();
        var expected = Enumerable.Range(0, scrapes).Select(k => (start + (k * pair.Interval)).ToUnixTimeMilliseconds() / 1000.0).ToList();
        var series = await pair.WaitForSamplesAsync(prometheus, start, s => s.Samples.Count >= scrapes);
        foreach (var s in series)
        {
            Assert.Equal(expected, s.Samples.Select(x => x.Time).ToList());
        }

        Assert.Equal(0L, (await gatewayA.ExporterCountsAsync()).Dropped);
        Assert.Equal(0L, (await gatewayB.ExporterCountsAsync()).Dropped);
    }

    private static DedupAdmin.Dedup Sum(DedupAdmin.Dedup a, DedupAdmin.Dedup b) =>
        new(a.CacheSize + b.CacheSize, a.HitsLocal + b.HitsLocal, a.HitsRedis + b.HitsRedis, a.Misses + b.Misses, a.RedisErrors + b.RedisErrors, a.RedisRoundTrips + b.RedisRoundTrips);
}

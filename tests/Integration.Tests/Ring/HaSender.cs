using System.Text.Json;
using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Ring;

/// <summary>
/// One agent of an HA pair in front of a gateway tier: sends each scrape (of several PostgreSQL instances, as
/// <see cref="HaPair"/> builds them) to its gateway until it is acknowledged, retries what was refused, and fails
/// over to the next gateway when its own cannot be reached any more.
/// </summary>
internal sealed class HaSender(string agent, IReadOnlyList<GatewayProcess> gateways, int first)
{
    private int _current = first;

    public string Agent => agent;

    /// <summary>The gateway this sender talks to now.</summary>
    public GatewayProcess Current => gateways[_current];

    /// <summary>Attempts that were not acknowledged and sent again.</summary>
    public int Retries { get; private set; }

    /// <summary>Times the sender gave up on its gateway and moved to the next one.</summary>
    public int Failovers { get; private set; }

    /// <summary>One request holding the scrape of every pair at <paramref name="at"/>, every value <paramref name="value"/>.</summary>
    public static byte[] Scrape(IEnumerable<HaPair> pairs, string agent, DateTimeOffset at, double value)
    {
        var request = new ExportMetricsServiceRequest();
        foreach (var pair in pairs)
        {
            request.MergeFrom(pair.Scrape(agent, at, value));
        }

        return request.ToByteArray();
    }

    /// <summary>Sends <paramref name="request"/> until a gateway acknowledges it whole.</summary>
    public async Task SendAsync(byte[] request)
    {
        var deadline = DateTime.UtcNow + TestTimeouts.Pipeline;
        while (true)
        {
            string error;
            try
            {
                var answer = await RawOtlpClient.GrpcAsync(Current.GrpcPort, request).WaitAsync(TestTimeouts.Short);
                if (answer.Code == 0)
                {
                    Assert.True(answer.Rejected == 0, $"{agent}: {Current.Id} rejected part of a scrape: {answer}");
                    return;
                }

                // UNAVAILABLE and the like: the same gateway, after a pause, as an agent honours RetryInfo.
                error = answer.ToString();
            }
            catch (HttpRequestException ex)
            {
                // The gateway is gone (connection refused or reset): the next one takes over.
                error = ex.Message;
                _current = (_current + 1) % gateways.Count;
                Failovers++;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"{agent}: no gateway acknowledged a scrape; last error: {error}");
            }

            Retries++;
            await Task.Delay(200);
        }
    }
}

/// <summary>The dedupe view of a gateway process's admin API.</summary>
internal static class GatewayDedup
{
    private static readonly HttpClient Http = new() { Timeout = TestTimeouts.Short };

    public static async Task<DedupAdmin.Dedup> DedupAsync(GatewayProcess gateway)
    {
        using var doc = JsonDocument.Parse(await Http.GetStringAsync(new Uri($"http://127.0.0.1:{gateway.AdminPort}/api/v1/dedup")).WaitAsync(TestTimeouts.Short));
        Assert.True(doc.RootElement.GetProperty("enabled").GetBoolean(), $"{gateway.Id} runs no dedupe processor");
        var p = Assert.Single(doc.RootElement.GetProperty("processors").EnumerateArray());
        return new DedupAdmin.Dedup(
            p.GetProperty("cache_size").GetInt64(), p.GetProperty("hits_local").GetInt64(), p.GetProperty("hits_redis").GetInt64(),
            p.GetProperty("misses").GetInt64(), p.GetProperty("redis_errors").GetInt64(), p.GetProperty("redis_round_trips").GetInt64());
    }

    /// <summary>The counters of several gateways added up.</summary>
    public static async Task<DedupAdmin.Dedup> SumAsync(IEnumerable<GatewayProcess> gateways)
    {
        var sum = new DedupAdmin.Dedup(0, 0, 0, 0, 0, 0);
        foreach (var g in gateways)
        {
            var d = await DedupAsync(g);
            sum = new DedupAdmin.Dedup(sum.CacheSize + d.CacheSize, sum.HitsLocal + d.HitsLocal, sum.HitsRedis + d.HitsRedis, sum.Misses + d.Misses,
                sum.RedisErrors + d.RedisErrors, sum.RedisRoundTrips + d.RedisRoundTrips);
        }

        return sum;
    }
}

/// <summary>Prometheus checks of an HA pair's samples written through a gateway tier.</summary>
internal static class HaTierCheck
{
    /// <summary>
    /// Waits until every one of <paramref name="seriesCount"/> series of <paramref name="selector"/> holds exactly
    /// one sample at each of <paramref name="times"/> and nothing else, each value one that
    /// <paramref name="allowed"/> accepts for its scrape index; fails with what differs when that does not happen.
    /// </summary>
    public static async Task AssertExactlyOnceAsync(string selector, int seriesCount, IReadOnlyList<DateTimeOffset> times, Func<int, double, bool> allowed)
    {
        using var prometheus = new PrometheusClient();
        var expected = times.Select(t => t.ToUnixTimeMilliseconds() / 1000.0).ToList();
        var window = DateTimeOffset.UtcNow - times[0] + TimeSpan.FromMinutes(1);
        string? wrong = "not checked";
        try
        {
            await TestTimeouts.WaitUntilAsync(async () => (wrong = Check(await prometheus.RawSamplesAsync(selector, window))) is null, TestTimeouts.Pipeline, "every sample exactly once in Prometheus", TimeSpan.FromSeconds(1));
        }
        catch (TimeoutException)
        {
            Assert.Fail($"Prometheus does not hold every (series, timestamp) exactly once: {wrong}");
        }

        string? Check(IReadOnlyList<PromSeries> series)
        {
            if (series.Count != seriesCount)
            {
                return $"{series.Count} of {seriesCount} series";
            }

            foreach (var s in series)
            {
                var got = s.Samples.Select(x => x.Time).ToList();
                if (!got.SequenceEqual(expected))
                {
                    return $"{PrometheusClient.Describe([s])}: sample times [{string.Join(", ", got)}], expected [{string.Join(", ", expected)}]";
                }

                for (var k = 0; k < expected.Count; k++)
                {
                    if (!allowed(k, s.Samples[k].Value))
                    {
                        return $"{PrometheusClient.Describe([s])}: scrape {k} has value {s.Samples[k].Value}";
                    }
                }
            }

            return null;
        }
    }
}

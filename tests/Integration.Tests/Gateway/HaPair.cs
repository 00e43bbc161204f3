using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// Two agents of an HA pair scraping one PostgreSQL: the same resource except <c>agent.id</c>, timestamps aligned
/// to the collection interval, and (as real scrapes a few milliseconds apart) values that may differ, so that a
/// duplicate reaching Prometheus would be refused as a different sample at the same timestamp.
/// </summary>
internal sealed class HaPair(string name, TimeSpan interval)
{
    /// <summary>Tables reported per scrape (one gauge series each) besides the one counter series.</summary>
    public const int Tables = 4;

    /// <summary>Series per scrape: one per table plus the commit counter.</summary>
    public const int SeriesPerScrape = Tables + 1;

    public string Instance { get; } = $"{name}-pg:5432";

    public string Cluster { get; } = $"{name}-cluster";

    /// <summary>Prometheus selector of every series the pair writes.</summary>
    public string Selector => $"{{__name__=~\"{name}_.*\"}}";

    public TimeSpan Interval { get; } = interval;

    /// <summary>The first interval boundary at least <paramref name="ahead"/> from now.</summary>
    public DateTimeOffset NextBoundary(TimeSpan ahead = default)
    {
        var ms = DateTimeOffset.UtcNow.Add(ahead).ToUnixTimeMilliseconds();
        var step = (long)Interval.TotalMilliseconds;
        return DateTimeOffset.FromUnixTimeMilliseconds(((ms / step) + 1) * step);
    }

    /// <summary>Waits for <paramref name="at"/> (the scrape time), with a timeout.</summary>
    public static async Task WaitUntilAsync(DateTimeOffset at)
    {
        var wait = at - DateTimeOffset.UtcNow;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait).WaitAsync(TestTimeouts.Short);
        }
    }

    /// <summary>One scrape of <paramref name="agent"/> at <paramref name="at"/>; every value is <paramref name="value"/>.</summary>
    public byte[] Scrape(string agent, DateTimeOffset at, double value)
    {
        static KeyValue Kv(string k, string v) => new() { Key = k, Value = new AnyValue { StringValue = v } };
        var time = (ulong)at.ToUnixTimeMilliseconds() * 1_000_000UL;
        var resource = new Resource();
        resource.Attributes.Add([
            Kv("service.name", "postgresql"), Kv("service.instance.id", Instance), Kv("db.system", "postgresql"),
            Kv("db.instance", Instance), Kv("db.cluster", Cluster), Kv("db.role", "primary"), Kv("agent.id", agent),
        ]);
        var rows = new Metric { Name = $"{name}.table.rows", Unit = "{row}", Gauge = new Gauge() };
        for (var t = 0; t < Tables; t++)
        {
            var p = new NumberDataPoint { TimeUnixNano = time, AsDouble = value };
            p.Attributes.Add([Kv("database_name", "app"), Kv("schema_name", "public"), Kv("table_name", $"t{t}")]);
            rows.Gauge.DataPoints.Add(p);
        }

        var commits = new Metric { Name = $"{name}.commits", Unit = "{commit}", Sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Cumulative } };
        commits.Sum.DataPoints.Add(new NumberDataPoint { TimeUnixNano = time, StartTimeUnixNano = 1_700_000_000_000_000_000UL, AsDouble = value });
        var scope = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent/postgresql" } };
        scope.Metrics.Add([rows, commits]);
        var rm = new ResourceMetrics { Resource = resource };
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request.ToByteArray();
    }

    /// <summary>Sends one scrape to a gateway over OTLP/gRPC and asserts it was accepted whole.</summary>
    public async Task SendAsync(TestGateway gateway, string agent, DateTimeOffset at, double value)
    {
        var answer = await RawOtlpClient.GrpcAsync(gateway.GrpcPort, Scrape(agent, at, value)).WaitAsync(TestTimeouts.Short);
        if (answer.Code == 14 && answer.RetryAfter is { } delay && delay < TestTimeouts.Short)
        {
            // UNAVAILABLE with RetryInfo (e.g. dedupe: the twin's claim on these points is not confirmed yet): an
            // agent retries after the delay it was given.
            await Task.Delay(delay);
            answer = await RawOtlpClient.GrpcAsync(gateway.GrpcPort, Scrape(agent, at, value)).WaitAsync(TestTimeouts.Short);
        }

        Assert.True(answer.Code == 0 && answer.Rejected == 0, $"{agent}'s scrape at {at:O} was not accepted: {answer}");
    }

    /// <summary>Waits until Prometheus holds every series of the pair and each is <paramref name="complete"/>, and returns them.</summary>
    public async Task<IReadOnlyList<PromSeries>> WaitForSamplesAsync(PrometheusClient prometheus, DateTimeOffset since, Func<PromSeries, bool> complete)
    {
        IReadOnlyList<PromSeries> series = [];
        var window = DateTimeOffset.UtcNow - since + TimeSpan.FromMinutes(1);
        await TestTimeouts.WaitUntilAsync(async () =>
        {
            series = await prometheus.RawSamplesAsync(Selector, window);
            return series.Count == SeriesPerScrape && series.All(complete);
        }, TestTimeouts.Pipeline, $"every series of {Selector} in Prometheus; last: {PrometheusClient.Describe(series)}");
        return series;
    }
}

/// <summary>The dedupe and HA views of a gateway's admin API.</summary>
internal static class DedupAdmin
{
    private static readonly HttpClient Http = new() { Timeout = TestTimeouts.Short };

    public sealed record Dedup(long CacheSize, long HitsLocal, long HitsRedis, long Misses, long RedisErrors, long RedisRoundTrips);

    public sealed record Ha(string Cluster, string ElectedReplica, DateTimeOffset Since, long Failovers);

    public static async Task<Dedup> DedupAsync(TestGateway gateway)
    {
        using var doc = JsonDocument.Parse(await Http.GetStringAsync(new Uri($"http://127.0.0.1:{gateway.AdminPort}/api/v1/dedup")).WaitAsync(TestTimeouts.Short));
        Assert.True(doc.RootElement.GetProperty("enabled").GetBoolean());
        var p = Assert.Single(doc.RootElement.GetProperty("processors").EnumerateArray());
        return new Dedup(
            p.GetProperty("cache_size").GetInt64(), p.GetProperty("hits_local").GetInt64(), p.GetProperty("hits_redis").GetInt64(),
            p.GetProperty("misses").GetInt64(), p.GetProperty("redis_errors").GetInt64(), p.GetProperty("redis_round_trips").GetInt64());
    }

    public static async Task<Ha?> HaAsync(TestGateway gateway, string cluster)
    {
        using var doc = JsonDocument.Parse(await Http.GetStringAsync(new Uri($"http://127.0.0.1:{gateway.AdminPort}/api/v1/ha")).WaitAsync(TestTimeouts.Short));
        Assert.True(doc.RootElement.GetProperty("enabled").GetBoolean());
        foreach (var c in doc.RootElement.GetProperty("clusters").EnumerateArray())
        {
            if (c.GetProperty("cluster").GetString() == cluster)
            {
                return new Ha(cluster, c.GetProperty("elected_replica").GetString()!, DateTimeOffset.Parse(c.GetProperty("since").GetString()!, CultureInfo.InvariantCulture), c.GetProperty("failovers").GetInt64());
            }
        }

        return null;
    }

    /// <summary>The <c>processors:</c> YAML of a Redis-backed <c>dedupe</c> under its own key prefix.</summary>
    public static string DedupeYaml(string keyPrefix) => $"""
        dedupe:
          cache_ttl: 5m
          redis:
            endpoint: {TestEnvironment.Redis}
            key_prefix: "{keyPrefix}:"
        """;
}

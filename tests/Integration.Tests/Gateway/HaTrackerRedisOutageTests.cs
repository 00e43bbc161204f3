using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Gateway.Hosting;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;
using StackExchange.Redis;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// <c>ha_tracker</c> while the shared Redis is down: the gateway keeps accepting and deciding on its local view
/// (the elected replica stays elected, the other is still dropped), counts the Redis errors, logs the outage
/// once, and writes the election to Redis again when it is back.
/// </summary>
[Collection(ServiceFaultCollection.Name)]
[Trait("Category", ServiceFaultCollection.Category)]
public sealed class HaTrackerRedisOutageTests(ITestOutputHelper output)
{
    private const string Errors = "pgotel_gateway_dedup_redis_errors_total";
    private const string RoundTrips = "pgotel_gateway_dedup_redis_round_trips_total";

    [Fact]
    public async Task HaTracker_RedisDown_KeepsAcceptingWithLocalDecisionsCountsLogsOnceAndUsesRedisAgain()
    {
        var outage = TimeSpan.FromSeconds(12);
        var name = UniqueName.For();
        var pair = new HaPair(name, TimeSpan.FromSeconds(1));
        var logs = new CapturingLoggerProvider();
        await using var gateway = await HaGateway.StartAsync(name, logs);
        using var redis = await ConnectionMultiplexer.ConnectAsync(TestEnvironment.Redis + ",abortConnect=false,connectTimeout=2000").WaitAsync(TestTimeouts.Short);
        var key = $"{name}:ha:{pair.Cluster}";

        var at = pair.NextBoundary(TimeSpan.FromSeconds(1));
        var start = at;
        var scrapes = 0;
        async Task ScrapeAsync()
        {
            await HaPair.WaitUntilAsync(at);
            // agent-a's values end in 1, agent-b's in 2: only agent-a's may reach Prometheus. agent-a reports first,
            // so it is the one elected.
            await SendAsync(gateway, pair.Scrape("agent-a", at, (scrapes * 10) + 1));
            await SendAsync(gateway, pair.Scrape("agent-b", at, (scrapes * 10) + 2));
            scrapes++;
            at += pair.Interval;
        }

        for (var i = 0; i < 3; i++)
        {
            await ScrapeAsync();
        }

        Assert.Equal("agent-a", (string?)await redis.GetDatabase().HashGetAsync(key, "replica").WaitAsync(TestTimeouts.Short));
        var metricsBefore = await gateway.SelfMetricsAsync();
        var errorsBefore = Value(metricsBefore, Errors);

        await ServiceControl.StopAsync("redis");
        double errorsDuring;
        try
        {
            var until = DateTimeOffset.UtcNow + outage;
            while (DateTimeOffset.UtcNow < until)
            {
                await ScrapeAsync();
            }

            errorsDuring = Value(await gateway.SelfMetricsAsync(), Errors);
        }
        finally
        {
            await ServiceControl.StartAsync("redis");
        }

        output.WriteLine($"Redis errors: {errorsBefore} before, {errorsDuring} after the outage");
        Assert.True(errorsDuring > errorsBefore, "no Redis error was counted during the outage");
        Assert.Equal(1, logs.Count(7001));

        // Redis is back, empty (it keeps nothing on disk): the gateway writes the election there again.
        RedisValue replica = RedisValue.Null;
        for (var i = 0; i < 20 && replica.IsNull; i++)
        {
            await ScrapeAsync();
            try
            {
                replica = await redis.GetDatabase().HashGetAsync(key, "replica").WaitAsync(TestTimeouts.Short);
            }
            catch (RedisException)
            {
                // The test's own connection is reconnecting as well.
            }
        }

        Assert.Equal("agent-a", (string?)replica);
        var recovered = await gateway.SelfMetricsAsync();

        // The elected replica's next round trip is due update_timeout (2 s) after the last one. Scrapes that fell
        // behind their schedule while Redis reconnected go out back to back, so three of them can pass in under
        // 2 s: keep scraping until that much wall-clock time has passed as well.
        var recoveredAt = Stopwatch.StartNew();
        for (var i = 0; i < 3 || recoveredAt.Elapsed < TimeSpan.FromSeconds(3); i++)
        {
            await ScrapeAsync();
        }

        var settled = await gateway.SelfMetricsAsync();
        Assert.Equal(Value(recovered, Errors), Value(settled, Errors));
        Assert.True(Value(settled, RoundTrips) > Value(recovered, RoundTrips), "no Redis round trip after the recovery");
        Assert.Equal(1, logs.Count(7001));
        Assert.Equal(1, logs.Count(7002));

        // Every scrape of agent-a arrived, none of agent-b's, before, during and after the outage.
        using var prometheus = new PrometheusClient();
        var expected = Enumerable.Range(0, scrapes).Select(k => (start + (k * pair.Interval)).ToUnixTimeMilliseconds() / 1000.0).ToList();
        var series = await pair.WaitForSamplesAsync(prometheus, start, s => s.Samples.Count >= scrapes);
        foreach (var s in series)
        {
            Assert.Equal(expected, s.Samples.Select(x => x.Time).ToList());
            Assert.All(s.Samples, x => Assert.Equal(1, x.Value % 10));
        }
    }

    private static async Task SendAsync(HaGateway gateway, byte[] scrape)
    {
        var answer = await RawOtlpClient.GrpcAsync(gateway.GrpcPort, scrape).WaitAsync(TestTimeouts.Short);
        Assert.True(answer.Code == 0 && answer.Rejected == 0, $"a scrape was not accepted: {answer}");
    }

    private static double Value(string metricsText, string name)
    {
        var prefix = name + "{processor=\"ha_tracker\"} ";
        foreach (var line in metricsText.Split('\n'))
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return double.Parse(line[prefix.Length..], CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    /// <summary>A gateway with <c>ha_tracker</c> whose log events the test can count.</summary>
    private sealed class HaGateway : IAsyncDisposable
    {
        private readonly GatewayHost _host;
        private readonly TempDirectory _queue;

        private HaGateway(GatewayHost host, TempDirectory queue, int grpc, int metrics)
        {
            _host = host;
            _queue = queue;
            GrpcPort = grpc;
            MetricsPort = metrics;
        }

        public int GrpcPort { get; }

        public int MetricsPort { get; }

        public static async Task<HaGateway> StartAsync(string name, ILoggerProvider logs)
        {
            var queue = new TempDirectory("pgotel-gw-queue");
            int grpc = FreePort.Get(), http = FreePort.Get(), metrics = FreePort.Get();
            var yaml = $"""
                receivers:
                  otlp:
                    protocols:
                      grpc:
                        endpoint: 127.0.0.1:{grpc}
                      http:
                        endpoint: 127.0.0.1:{http}
                processors:
                  ha_tracker:
                    update_timeout: 2s
                    failover_timeout: 60s
                    redis:
                      endpoint: {TestEnvironment.Redis}
                      key_prefix: "{name}:"
                  batch:
                    timeout: 50ms
                exporters:
                  prometheusremotewrite:
                    endpoint: {new Uri(TestEnvironment.PrometheusUrl, "api/v1/write")}
                    retry_on_failure:
                      initial_interval: 200ms
                      max_interval: 2s
                gateway:
                  id: {name}
                  shutdown_timeout: 10s
                  queue:
                    directory: {queue.Path}
                service:
                  pipelines:
                    metrics:
                      receivers: [otlp]
                      processors: [ha_tracker, batch]
                      exporters: [prometheusremotewrite]
                  telemetry:
                    logs:
                      level: info
                    metrics:
                      address: 127.0.0.1:{metrics}
                """;
            var host = GatewayHost.Create(ConfigLoader.Load(yaml, GatewayComponents.CreateRegistry()), logging =>
            {
                logging.SetMinimumLevel(LogLevel.Information);
                logging.AddProvider(logs);
            });
            try
            {
                await host.StartAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
            }
            catch
            {
                await host.DisposeAsync();
                queue.Dispose();
                throw;
            }

            return new HaGateway(host, queue, grpc, metrics);
        }

        public async Task<string> SelfMetricsAsync()
        {
            using var http = new HttpClient { Timeout = TestTimeouts.Short };
            return await http.GetStringAsync(new Uri($"http://127.0.0.1:{MetricsPort}/metrics"));
        }

        public async ValueTask DisposeAsync()
        {
            await _host.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Pipeline);
            await _host.DisposeAsync();
            _queue.Dispose();
        }
    }
}

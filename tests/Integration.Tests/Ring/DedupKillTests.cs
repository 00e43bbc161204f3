using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Ring;

/// <summary>
/// <c>dedupe</c> loses nothing when a gateway dies between claiming points in Redis and queueing them: two gateway
/// processes (a static ring, both running the Redis-backed <c>dedupe</c>) take numbered points from HA pairs of
/// senders as fast as they acknowledge them, while one gateway after the other is killed with SIGKILL, mid-request,
/// and started again on its queue. Senders retry until acknowledged (honouring RetryInfo) and fail over to the
/// other gateway when theirs is gone. Afterwards every point either twin got acknowledged is in Prometheus exactly
/// once. Every point is a series of its own (label <c>seq</c>), so the check does not depend on the order in which
/// two gateways' queues reach Prometheus (which refuses out-of-order samples).
/// </summary>
[Collection(ServiceFaultCollection.Name)]
[Trait("Category", ServiceFaultCollection.Category)]
public sealed class DedupKillTests(ITestOutputHelper output)
{
    private const int Pairs = 3;
    private const int SeriesPerScrape = 2;

    [Fact]
    public async Task KillNine_GatewaysMidRequestWhileHaPairsSend_EveryAcknowledgedPointOnceInPrometheus()
    {
        var sending = TimeSpan.FromSeconds(TestEnvironment.Soak ? 600 : 45);
        var name = UniqueName.For();
        using var dir = new TempDirectory();
        var gateways = GatewayProcess.Create("dk" + name[^6..], 2, dir.Path);
        var members = $"probe_interval: 500ms\nstatic: {GatewayProcess.StaticMembers(gateways)}";
        // Short pending claims so that a killed gateway's claims expire within seconds of the kill.
        var processors = $"""
            dedupe:
              cache_ttl: 5m
              pending_ttl: 2s
              pending_wait: 500ms
              redis:
                endpoint: {TestEnvironment.Redis}
                key_prefix: "{name}:"
            """;
        Task StartAsync(GatewayProcess g) => g.StartAsync(members, processors: processors, processorList: "dedupe, ");
        await Task.WhenAll(gateways.Select(StartAsync));
        var baseMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000;
        var kills = new ConcurrentBag<(long Before, long After)>();
        var senders = new List<Sender>();
        try
        {
            using var stop = new CancellationTokenSource();
            var loops = new List<(Sender A, Sender B, Task<int> Loop)>();
            for (var p = 0; p < Pairs; p++)
            {
                var a = new Sender("agent-a", gateways, p % 2);
                var b = new Sender("agent-b", gateways, (p + 1) % 2);
                senders.AddRange([a, b]);
                var pair = p;
                loops.Add((a, b, Task.Run(() => PairLoopAsync($"{name}_p{pair}", a, b, baseMs, stop.Token))));
            }

            // Kill one gateway after the other at random moments while the senders keep both busy, and start it
            // again on its queue (what it acknowledged before the kill is replayed from there).
            var until = DateTime.UtcNow + sending;
            var victim = 0;
            while (DateTime.UtcNow < until)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(3000, 6000)));
                using (var process = Process.GetProcessById(gateways[victim].Pid))
                {
                    // SIGKILL, timed closely: an attempt that started before and failed after was cut by this kill.
                    var before = Stopwatch.GetTimestamp();
                    process.Kill();
                    kills.Add((before, Stopwatch.GetTimestamp()));
                }

                await gateways[victim].KillAsync();
                output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} kill -9 {gateways[victim].Id} (#{kills.Count})");
                await StartAsync(gateways[victim]);
                output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {gateways[victim].Id} is ready again");
                victim = 1 - victim;
            }

            // Let the senders see both gateways up, then stop them.
            await Task.Delay(TimeSpan.FromSeconds(2));
            await stop.CancelAsync();
            var lastK = new int[Pairs];
            for (var p = 0; p < Pairs; p++)
            {
                lastK[p] = await loops[p].Loop.WaitAsync(TestTimeouts.Short);
            }

            // The kills hit requests in flight: attempts that started before a kill and failed after it.
            var cut = senders.Sum(s => s.FailedAcross(kills));
            output.WriteLine($"{kills.Count} kills; {cut} requests in flight at a kill failed; senders: {string.Join("; ", senders.Select(s => s.ToString()))}");

            Assert.True(kills.Count >= 3, $"only {kills.Count} kills");
            Assert.True(cut > 0, "no kill hit a request in flight");

            // And some kills left claims pending in Redis (made, not yet confirmed): the retries met them and were
            // refused until they expired, instead of being acknowledged as duplicates of data nobody had queued.
            Assert.True(senders.Sum(s => s.DedupRefusals) > 0, "no kill landed between a claim and its confirm");

            // Every point acknowledged to either twin is in Prometheus once, with one twin's value; nothing else is
            // there but a scrape in flight when the senders stopped.
            using var prometheus = new PrometheusClient();
            string? wrong = "not checked";
            try
            {
                await TestTimeouts.WaitUntilAsync(async () =>
                {
                    try
                    {
                        // Every point's timestamp is within seconds of baseMs: look back to before it, from now.
                        var window = TimeSpan.FromMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - baseMs) + TimeSpan.FromMinutes(1);
                        wrong = Check(await prometheus.RawSamplesAsync($"{{__name__=~\"{name}_p[0-9]+_s[0-9]+\"}}", window), loops, lastK, baseMs, name);
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                    {
                        wrong = $"Prometheus query failed: {ex.Message}";
                    }

                    return wrong is null;
                }, TestTimeouts.Pipeline, "every acknowledged point exactly once in Prometheus", TimeSpan.FromSeconds(1));
            }
            catch (TimeoutException)
            {
                Assert.Fail($"Prometheus does not hold every acknowledged point exactly once: {wrong}");
            }

            // A point queued but not yet confirmed when its gateway was killed is retried and may pass twice; when the
            // twin's copy wins the retry Prometheus refuses it (another value, same timestamp) and the exporter counts
            // it dropped. That can happen for at most one request per sender and kill; in steady state never.
            long dropped = 0;
            foreach (var g in gateways)
            {
                var (sent, d, _) = await g.ExporterAsync();
                dropped += d;
                output.WriteLine($"{g.Id}: sent {sent}, dropped {d}, dedup {await GatewayDedup.DedupAsync(g)}, pending refusals {await g.MetricAsync("pgotel_gateway_dedup_pending_refused_total")}, late claims {await g.MetricAsync("pgotel_gateway_dedup_claims_total", "result=\"late\"")}");
            }

            Assert.True(dropped <= kills.Count * senders.Count * SeriesPerScrape, $"{dropped} points refused by Prometheus over {kills.Count} kills");
            output.WriteLine($"scrapes per pair: {string.Join(", ", lastK)}; dedupe refusals seen by senders: {senders.Sum(s => s.DedupRefusals)}");
        }
        catch
        {
            foreach (var g in gateways)
            {
                var log = g.Output;
                output.WriteLine($"--- {g.Id} ---\n{(log.Length > 20_000 ? log[^20_000..] : log)}");
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

    /// <summary>
    /// One HA pair: both agents send scrape k (<see cref="SeriesPerScrape"/> points at base + k ms, label seq=k; agent a
    /// value 1, agent b value 2) at once, each until acknowledged, then scrape k + 1. Returns the scrape in progress
    /// when stopped.
    /// </summary>
    private static async Task<int> PairLoopAsync(string prefix, Sender a, Sender b, long baseMs, CancellationToken stop)
    {
        for (var k = 0; ; k++)
        {
            var sa = a.SendAsync(k, Scrape(prefix, "agent-a", k, baseMs, 1), stop);
            var sb = b.SendAsync(k, Scrape(prefix, "agent-b", k, baseMs, 2), stop);
            var acked = await Task.WhenAll(sa, sb);
            if (!acked[0] || !acked[1])
            {
                return k;
            }
        }
    }

    private static byte[] Scrape(string prefix, string agent, int k, long baseMs, double value)
    {
        static KeyValue Kv(string key, string v) => new() { Key = key, Value = new AnyValue { StringValue = v } };
        var resource = new Resource();
        resource.Attributes.Add([Kv("service.name", "postgresql"), Kv("service.instance.id", prefix), Kv("db.instance", prefix + "-pg:5432"), Kv("agent.id", agent)]);
        var scope = new ScopeMetrics();
        for (var s = 0; s < SeriesPerScrape; s++)
        {
            var point = new NumberDataPoint { TimeUnixNano = (ulong)(baseMs + k) * 1_000_000UL, AsDouble = value };
            point.Attributes.Add(Kv("seq", k.ToString(CultureInfo.InvariantCulture)));
            var gauge = new Gauge();
            gauge.DataPoints.Add(point);
            scope.Metrics.Add(new Metric { Name = $"{prefix}_s{s}", Gauge = gauge });
        }

        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(new ResourceMetrics { Resource = resource, ScopeMetrics = { scope } });
        return request.ToByteArray();
    }

    /// <summary>What differs from "every acknowledged point once, nothing unexpected", or null.</summary>
    private static string? Check(IReadOnlyList<PromSeries> series, List<(Sender A, Sender B, Task<int> Loop)> loops, int[] lastK, long baseMs, string name)
    {
        var seen = new Dictionary<(int Pair, int Series), HashSet<int>>();
        foreach (var s in series)
        {
            var parts = s.Name[(name.Length + 2)..].Split("_s");
            var key = (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
            var k = int.Parse(s.Labels["seq"], CultureInfo.InvariantCulture);
            if (s.Samples.Count != 1)
            {
                return $"{s.Name}{{seq={k}}} has {s.Samples.Count} samples";
            }

            var (time, value) = s.Samples[0];
            if ((long)Math.Round(time * 1000) != baseMs + k || value is not (1 or 2))
            {
                return $"{s.Name}{{seq={k}}} holds {value} at {time}";
            }

            if (k > lastK[key.Item1])
            {
                return $"{s.Name}{{seq={k}}} was never sent";
            }

            if (!seen.TryGetValue(key, out var ks))
            {
                seen[key] = ks = [];
            }

            ks.Add(k);
        }

        for (var p = 0; p < loops.Count; p++)
        {
            var expected = loops[p].A.Acked.Union(loops[p].B.Acked).Order().ToList();
            for (var s = 0; s < SeriesPerScrape; s++)
            {
                var have = seen.GetValueOrDefault((p, s)) ?? [];
                var missing = expected.Where(k => !have.Contains(k)).ToList();
                if (missing.Count > 0)
                {
                    return $"{name}_p{p}_s{s}: {missing.Count} of {expected.Count} acknowledged points missing (of {series.Count} series returned), e.g. seq {string.Join(", ", missing.Take(10))}";
                }
            }
        }

        return null;
    }

    /// <summary>
    /// One agent: sends a scrape until a gateway acknowledges it, waits as long as RetryInfo says on UNAVAILABLE,
    /// and moves to the other gateway when its own cannot be reached. Remembers every failed attempt's time span.
    /// </summary>
    private sealed class Sender(string agent, IReadOnlyList<GatewayProcess> gateways, int first)
    {
        private readonly ConcurrentBag<(long Start, long End)> _failed = [];
        private int _current = first;

        public ConcurrentDictionary<int, byte> AckedSet { get; } = new();

        public IEnumerable<int> Acked => AckedSet.Keys;

        public int Unavailable { get; private set; }

        public int DedupRefusals { get; private set; }

        public int TransportErrors { get; private set; }

        public int Failovers { get; private set; }

        public async Task<bool> SendAsync(int k, byte[] body, CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                var delay = TimeSpan.FromMilliseconds(100);
                var start = Stopwatch.GetTimestamp();
                try
                {
                    var answer = await RawOtlpClient.GrpcAsync(gateways[_current].GrpcPort, body).WaitAsync(TimeSpan.FromSeconds(20), stop);
                    if (answer.Code == 0)
                    {
                        Assert.True(answer.Rejected == 0, $"{agent}: part of scrape {k} was rejected: {answer}");
                        AckedSet[k] = 0;
                        return true;
                    }

                    _failed.Add((start, Stopwatch.GetTimestamp()));
                    Unavailable++;
                    if (answer.Message.Contains("claimed by a request", StringComparison.Ordinal))
                    {
                        DedupRefusals++;
                    }

                    delay = answer.RetryAfter is { } retry && retry < TimeSpan.FromSeconds(10) ? retry : delay;
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException or TimeoutException)
                {
                    // The gateway is gone, or went away mid-request: the other one takes over.
                    _failed.Add((start, Stopwatch.GetTimestamp()));
                    TransportErrors++;
                    Failovers++;
                    _current = (_current + 1) % gateways.Count;
                }
                catch (OperationCanceledException)
                {
                    return false;
                }

                try
                {
                    await Task.Delay(delay, stop);
                }
                catch (OperationCanceledException)
                {
                    return false;
                }
            }

            return false;
        }

        /// <summary>Failed attempts that were under way at one of the <paramref name="kills"/>.</summary>
        public int FailedAcross(IEnumerable<(long Before, long After)> kills)
        {
            var list = kills.ToList();
            return _failed.Count(f => list.Any(k => f.Start < k.Before && k.After <= f.End));
        }

        public override string ToString() =>
            $"{agent}: {AckedSet.Count} acked, {Unavailable} unavailable ({DedupRefusals} by dedupe), {TransportErrors} transport errors";
    }
}

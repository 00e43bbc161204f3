using System.Diagnostics;
using System.Globalization;
using OpenTelemetry.Proto.Common.V1;

namespace PgOtelGateway.LoadGen;

/// <summary>
/// Simulates the output of N PostgreSQL agents (databases × tables × indexes, the catalog's metric shapes) and
/// sends it as fast as accepted or at a target rate, then reports points/s sent, accepted and refused, and
/// latency percentiles. Two protocols carry the same series:
/// <list type="bullet">
/// <item><c>otlp</c>: OTLP/gRPC <c>Export</c> requests to a gateway (or any OTLP receiver).</item>
/// <item><c>remote-write</c>: each of those requests translated by the gateway's own OTLP→Prometheus rules and
/// sent as a Prometheus remote-write 1.0 request (snappy block, the 1.0 headers), e.g. to vmagent's
/// <c>/api/v1/write</c>. Same series, same samples per request, same request pacing.</item>
/// </list>
/// <code>
/// pgotel-loadgen [--protocol otlp|remote-write] [--endpoint URL] [--seconds 30] [--instances 50]
///   [--points-per-request 1000] [--concurrency 4] [--rate POINTS_PER_S] [--compression zstd|gzip|none]
///   [--replicas N] [--describe]
/// </code>
/// With <c>--replicas 2</c> every request is sent twice, as by the two agents of an HA pair: identical but for
/// <c>agent.id</c> (<c>agent-0</c>, <c>agent-1</c>), one after the other; sent and accepted count every copy.
/// The last line printed is machine-readable <c>key=value</c> pairs (scripts/bench-*.sh parse it).
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        LoadOptions o;
        try
        {
            o = LoadOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return 2;
        }

        var shapes = AgentShapes.Build(o.Instances, o.PointsPerRequest);
        var samplesPerRequest = shapes.SamplesPerRequest();
        var inv = CultureInfo.InvariantCulture;
        if (o.Describe)
        {
            // Both protocols carry the same series: one translation of every instance's request.
            Console.WriteLine(string.Create(inv, $"instances={o.Instances} points_per_request={shapes.PointsPerRequest} samples_per_request={samplesPerRequest} distinct_series={shapes.DistinctSeries()} requests_per_cycle={o.Instances}"));
            return 0;
        }

        using ILoadSender sender = o.Protocol == "remote-write" ? new RemoteWriteSender(o) : new OtlpSender(o);
        long sent = 0, accepted = 0, refused = 0, failedRequests = 0, requestNumber = -1, requests = 0;
        var latencies = new List<double>[o.Concurrency];
        var stop = DateTime.UtcNow + TimeSpan.FromSeconds(o.Seconds);
        var clock = Stopwatch.StartNew();
        var workers = new Task[o.Concurrency];
        for (var worker = 0; worker < o.Concurrency; worker++)
        {
            var w = worker;
            latencies[w] = [];
            workers[w] = Task.Run(async () =>
            {
                while (DateTime.UtcNow < stop)
                {
                    // One sequence across workers: every request is a distinct (instance, time) pair.
                    var original = shapes.Next((int)Interlocked.Increment(ref requestNumber), DateTimeOffset.UtcNow);
                    var points = shapes.PointsPerRequest;
                    for (var replica = 0; replica < o.Replicas; replica++)
                    {
                        var request = original;
                        if (o.Replicas > 1)
                        {
                            request = replica == o.Replicas - 1 ? original : original.Clone();
                            request.ResourceMetrics[0].Resource.Attributes.Add(new KeyValue { Key = "agent.id", Value = new AnyValue { StringValue = $"agent-{replica}" } });
                        }

                        var started = Stopwatch.GetTimestamp();
                        var outcome = await sender.SendAsync(request).ConfigureAwait(false);
                        if (outcome.Refused)
                        {
                            Interlocked.Add(ref refused, points);
                            Interlocked.Increment(ref failedRequests);
                        }
                        else
                        {
                            Interlocked.Add(ref accepted, points - outcome.RejectedPoints);
                        }

                        latencies[w].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                        Interlocked.Add(ref sent, points);
                        Interlocked.Increment(ref requests);
                    }

                    if (o.Rate > 0)
                    {
                        // Pace so all workers together send about --rate points per second.
                        var due = TimeSpan.FromSeconds((double)Interlocked.Read(ref sent) / o.Rate);
                        var ahead = due - clock.Elapsed;
                        if (ahead > TimeSpan.Zero)
                        {
                            await Task.Delay(ahead).ConfigureAwait(false);
                        }
                    }
                }
            });
        }

        await Task.WhenAll(workers);
        var seconds = clock.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        double P(double q) => all.Length == 0 ? 0 : all[Math.Min(all.Length - 1, (int)(q * all.Length))];
        if (sender.LastError is { } error)
        {
            await Console.Error.WriteLineAsync($"last error: {error}");
        }

        Console.WriteLine(string.Create(inv, $"protocol={o.Protocol} seconds={seconds:F1} requests={requests} sent_points={sent} accepted_points={accepted} refused_points={refused} failed_requests={failedRequests}"));
        Console.WriteLine(string.Create(inv, $"protocol={o.Protocol} seconds={seconds:F1} sent_points={sent} accepted_points={accepted} refused_points={refused} failed_requests={failedRequests} samples_per_request={samplesPerRequest} sent_samples={requests * samplesPerRequest} sent_per_s={sent / seconds:F0} accepted_per_s={accepted / seconds:F0} refused_per_s={refused / seconds:F0} latency_ms_p50={P(0.5):F2} p90={P(0.9):F2} p99={P(0.99):F2} max={P(1):F2}"));
        return 0;
    }
}

/// <summary>Command-line options.</summary>
internal sealed record LoadOptions(string Protocol, string Endpoint, int Seconds, int Instances, int PointsPerRequest, int Concurrency, double Rate, string Compression, int Replicas, bool Describe)
{
    public static LoadOptions Parse(string[] args)
    {
        string Get(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        var inv = CultureInfo.InvariantCulture;
        var protocol = Get("--protocol", "otlp");
        if (protocol is not ("otlp" or "remote-write"))
        {
            throw new ArgumentException($"--protocol must be otlp or remote-write, not '{protocol}'");
        }

        var compression = Get("--compression", "zstd");
        if (compression is not ("zstd" or "gzip" or "none"))
        {
            throw new ArgumentException($"--compression must be zstd, gzip or none, not '{compression}'");
        }

        return new LoadOptions(
            protocol,
            Get("--endpoint", protocol == "otlp" ? "http://127.0.0.1:4317" : "http://127.0.0.1:8429/api/v1/write"),
            int.Parse(Get("--seconds", "30"), inv),
            int.Parse(Get("--instances", "50"), inv),
            int.Parse(Get("--points-per-request", "1000"), inv),
            int.Parse(Get("--concurrency", "4"), inv),
            double.Parse(Get("--rate", "0"), inv),
            compression,
            Math.Max(1, int.Parse(Get("--replicas", "1"), inv)),
            Array.IndexOf(args, "--describe") >= 0);
    }
}

using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Shared.Compression;

namespace PgOtelGateway.LoadGen;

/// <summary>
/// Simulates the output of N PostgreSQL agents (databases × tables × indexes, the catalog's metric shapes) and
/// sends it as OTLP/gRPC, as fast as accepted or at a target rate, then reports points/s sent, accepted and
/// refused, and latency percentiles.
/// <code>pgotel-loadgen --endpoint http://127.0.0.1:4317 --seconds 30 --instances 50 --points-per-request 1000 --concurrency 4 [--rate POINTS_PER_S] [--compression zstd|gzip|none] [--replicas N]</code>
/// With <c>--replicas 2</c> every request is sent twice, as by the two agents of an HA pair: identical but for
/// <c>agent.id</c> (<c>agent-0</c>, <c>agent-1</c>), one after the other.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var o = Options.Parse(args);
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
        using var channel = GrpcChannel.ForAddress(o.Endpoint, new GrpcChannelOptions
        {
            HttpHandler = handler,
            CompressionProviders = [new ZstdGrpcCompressionProvider(), new Grpc.Net.Compression.GzipCompressionProvider(System.IO.Compression.CompressionLevel.Fastest)],
        });
        var client = new MetricsService.MetricsServiceClient(channel);
        var headers = new Metadata();
        if (o.Compression != "none")
        {
            headers.Add("grpc-internal-encoding-request", o.Compression);
        }

        var shapes = AgentShapes.Build(o.Instances, o.PointsPerRequest);
        long sent = 0, accepted = 0, refused = 0, failedRequests = 0, requestNumber = -1, requests = 0;
        var latencies = new List<double>[o.Concurrency];
        var stop = DateTime.UtcNow + TimeSpan.FromSeconds(o.Seconds);
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, o.Concurrency).Select(w => Task.Run(async () =>
        {
            latencies[w] = [];
            while (DateTime.UtcNow < stop)
            {
                // One sequence across workers: every request is a distinct (instance, time) pair.
                var original = shapes.Next((int)Interlocked.Increment(ref requestNumber), DateTimeOffset.UtcNow);
                var points = o.PointsPerRequest;
                for (var replica = 0; replica < o.Replicas; replica++)
                {
                    var request = original;
                    if (o.Replicas > 1)
                    {
                        request = replica == o.Replicas - 1 ? original : original.Clone();
                        request.ResourceMetrics[0].Resource.Attributes.Add(new KeyValue { Key = "agent.id", Value = new AnyValue { StringValue = $"agent-{replica}" } });
                    }

                    var started = Stopwatch.GetTimestamp();
                    try
                    {
                        var response = await client.ExportAsync(request, headers, DateTime.UtcNow.AddSeconds(30));
                        Interlocked.Add(ref accepted, points - (response.PartialSuccess?.RejectedDataPoints ?? 0));
                    }
                    catch (RpcException)
                    {
                        Interlocked.Add(ref refused, points);
                        Interlocked.Increment(ref failedRequests);
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
                        await Task.Delay(ahead);
                    }
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var seconds = clock.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        double P(double q) => all.Length == 0 ? 0 : all[Math.Min(all.Length - 1, (int)(q * all.Length))];
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"seconds={seconds:F1} requests={requests} sent_points={sent} accepted_points={accepted} refused_points={refused} failed_requests={failedRequests}"));
        Console.WriteLine(string.Create(inv, $"sent_per_s={sent / seconds:F0} accepted_per_s={accepted / seconds:F0} latency_ms_p50={P(0.5):F2} p99={P(0.99):F2} max={P(1):F2}"));
        return 0;
    }

    private sealed record Options(string Endpoint, int Seconds, int Instances, int PointsPerRequest, int Concurrency, double Rate, string Compression, int Replicas)
    {
        public static Options Parse(string[] args)
        {
            string Get(string name, string fallback)
            {
                var i = Array.IndexOf(args, name);
                return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
            }

            var inv = CultureInfo.InvariantCulture;
            return new Options(
                Get("--endpoint", "http://127.0.0.1:4317"),
                int.Parse(Get("--seconds", "30"), inv),
                int.Parse(Get("--instances", "50"), inv),
                int.Parse(Get("--points-per-request", "1000"), inv),
                int.Parse(Get("--concurrency", "4"), inv),
                double.Parse(Get("--rate", "0"), inv),
                Get("--compression", "zstd"),
                Math.Max(1, int.Parse(Get("--replicas", "1"), inv)));
        }
    }
}

/// <summary>
/// Requests shaped like the agent's: one resource per PostgreSQL instance, the catalog's table and index metrics
/// over databases × tables, counters with a fixed start time, aligned 10 s timestamps.
/// </summary>
internal sealed class AgentShapes
{
    private static readonly string[] TableMetrics = ["postgresql.table.rows", "postgresql.table.dead_rows", "postgresql.table.size", "postgresql.table.modifications", "postgresql.table.scans"];
    private readonly int _instances;
    private readonly int _points;

    private AgentShapes(int instances, int points)
    {
        _instances = instances;
        _points = points;
    }

    public static AgentShapes Build(int instances, int pointsPerRequest) => new(instances, pointsPerRequest);

    /// <summary>Request number <paramref name="n"/>: instance n mod N, tables rotating so series repeat over time.</summary>
    public ExportMetricsServiceRequest Next(int n, DateTimeOffset now)
    {
        var instance = n % _instances;
        // Each instance's requests come in order, so wall-clock milliseconds keep every series in time order.
        var time = (ulong)now.ToUnixTimeMilliseconds() * 1_000_000;
        var resource = new Resource();
        resource.Attributes.Add(Kv("service.name", "postgresql"));
        resource.Attributes.Add(Kv("service.instance.id", $"pg-{instance:D4}:5432"));
        resource.Attributes.Add(Kv("db.instance", $"pg-{instance:D4}:5432"));
        resource.Attributes.Add(Kv("db.cluster", $"cluster-{instance / 2:D4}"));
        resource.Attributes.Add(Kv("db.role", instance % 2 == 0 ? "primary" : "replica"));
        resource.Attributes.Add(Kv("db.system", "postgresql"));
        var scope = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent/postgresql" } };
        var perMetric = _points / TableMetrics.Length;
        foreach (var name in TableMetrics)
        {
            var counter = name is "postgresql.table.modifications" or "postgresql.table.scans";
            var metric = new Metric { Name = name, Unit = name == "postgresql.table.size" ? "By" : "{row}" };
            var points = new List<NumberDataPoint>(perMetric);
            for (var i = 0; i < perMetric; i++)
            {
                var p = new NumberDataPoint { TimeUnixNano = time, AsInt = (n * 7L + i) % 1_000_000 };
                p.Attributes.Add(Kv("database_name", $"db{i % 20:D2}"));
                p.Attributes.Add(Kv("schema_name", "public"));
                p.Attributes.Add(Kv("table_name", $"t{i / 20:D4}"));
                if (counter)
                {
                    p.StartTimeUnixNano = 1_700_000_000_000_000_000UL;
                    p.Attributes.Add(Kv("operation", "insert"));
                }

                points.Add(p);
            }

            if (counter)
            {
                metric.Sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Cumulative };
                metric.Sum.DataPoints.Add(points);
            }
            else
            {
                metric.Gauge = new Gauge();
                metric.Gauge.DataPoints.Add(points);
            }

            scope.Metrics.Add(metric);
        }

        var rm = new ResourceMetrics { Resource = resource };
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    private static KeyValue Kv(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };
}

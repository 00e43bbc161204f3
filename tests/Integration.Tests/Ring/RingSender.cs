using Grpc.Core;
using Grpc.Net.Client;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Tests.Common;

namespace PgOtelGateway.Integration.Tests.Ring;

/// <summary>
/// Sends a fixed set of series, one request per collection tick, to one gateway, and retries a request until it
/// is acknowledged (as an agent does with UNAVAILABLE).
/// </summary>
internal sealed class RingSender : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly MetricsService.MetricsServiceClient _client;

    public RingSender(string name, string address, int resources, int metrics, int attributeSets, DateTimeOffset firstTimestamp, TimeSpan interval)
    {
        Name = name;
        Resources = resources;
        Metrics = metrics;
        AttributeSets = attributeSets;
        FirstTimestamp = firstTimestamp;
        Interval = interval;
        _channel = GrpcChannel.ForAddress("http://" + address);
        _client = new MetricsService.MetricsServiceClient(_channel);
    }

    /// <summary>Metric names are <c>{Name}_m{N}</c> and instances <c>{Name}-db{N}</c>.</summary>
    public string Name { get; }

    public int Resources { get; }

    public int Metrics { get; }

    public int AttributeSets { get; }

    public DateTimeOffset FirstTimestamp { get; }

    public TimeSpan Interval { get; }

    public int Series => Resources * Metrics * AttributeSets;

    /// <summary>Ticks acknowledged so far.</summary>
    public int Ticks { get; private set; }

    /// <summary>Requests that were answered with an error and sent again.</summary>
    public int Retries { get; private set; }

    /// <summary>The selector of every series this sender writes.</summary>
    public string Selector => $"{{__name__=~\"{Name}_m[0-9]+\"}}";

    public static DateTimeOffset TimestampOf(DateTimeOffset first, TimeSpan interval, int tick) => first + (interval * tick);

    /// <summary>The request of tick <paramref name="tick"/>: every series once, value = tick.</summary>
    public ExportMetricsServiceRequest Request(int tick)
    {
        var nanos = (ulong)TimestampOf(FirstTimestamp, Interval, tick).ToUnixTimeMilliseconds() * 1_000_000UL;
        var request = new ExportMetricsServiceRequest();
        for (var r = 0; r < Resources; r++)
        {
            var rm = new ResourceMetrics { Resource = new Resource() };
            rm.Resource.Attributes.Add(Kv("service.name", "ring-test"));
            rm.Resource.Attributes.Add(Kv("service.instance.id", $"{Name}-db{r}"));
            var sm = new ScopeMetrics { Scope = new InstrumentationScope { Name = "ring-test" } };
            for (var m = 0; m < Metrics; m++)
            {
                var metric = new Metric { Name = $"{Name}_m{m}", Gauge = new Gauge() };
                for (var a = 0; a < AttributeSets; a++)
                {
                    var point = new NumberDataPoint { TimeUnixNano = nanos, AsDouble = tick };
                    point.Attributes.Add(Kv("database_name", $"d{a}"));
                    metric.Gauge.DataPoints.Add(point);
                }

                sm.Metrics.Add(metric);
            }

            rm.ScopeMetrics.Add(sm);
            request.ResourceMetrics.Add(rm);
        }

        return request;
    }

    /// <summary>Sends tick <paramref name="tick"/> until it is acknowledged.</summary>
    public async Task SendAsync(int tick)
    {
        var deadline = DateTime.UtcNow + TestTimeouts.Pipeline;
        while (true)
        {
            try
            {
                await _client.ExportAsync(Request(tick), deadline: DateTime.UtcNow.AddSeconds(20)).ResponseAsync.WaitAsync(TestTimeouts.Short);
                Ticks = Math.Max(Ticks, tick + 1);
                return;
            }
            catch (RpcException) when (DateTime.UtcNow < deadline)
            {
                Retries++;
                await Task.Delay(200);
            }
        }
    }

    /// <summary>
    /// Checks Prometheus holds every series at every tick in [0, <paramref name="ticks"/>) exactly once, with the
    /// tick as its value; returns a description of what is missing, or null when complete.
    /// </summary>
    public async Task<string?> MissingAsync(PrometheusClient prometheus, int ticks)
    {
        var window = DateTimeOffset.UtcNow - FirstTimestamp + TimeSpan.FromMinutes(1);
        var series = await prometheus.RawSamplesAsync(Selector, window);
        if (series.Count != Series)
        {
            return $"{series.Count} of {Series} series";
        }

        foreach (var s in series)
        {
            if (s.Samples.Count != ticks)
            {
                return $"{PrometheusClient.Describe([s])}: {s.Samples.Count} of {ticks} samples";
            }

            for (var t = 0; t < ticks; t++)
            {
                var expected = TimestampOf(FirstTimestamp, Interval, t).ToUnixTimeMilliseconds() / 1000.0;
                if (Math.Abs(s.Samples[t].Time - expected) > 0.0005 || s.Samples[t].Value != t)
                {
                    return $"{PrometheusClient.Describe([s])}: sample {t} is ({s.Samples[t].Time}, {s.Samples[t].Value}), expected ({expected}, {t})";
                }
            }
        }

        return null;
    }

    private static KeyValue Kv(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };

    public void Dispose() => _channel.Dispose();
}

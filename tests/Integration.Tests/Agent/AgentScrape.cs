using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>Builds postgresql receivers against the harness's servers and reads their output.</summary>
internal static class AgentScrape
{
    /// <summary>Receiver options for the primary (or the standby) as the monitoring role, from YAML like an operator's.</summary>
    public static PostgresqlReceiverOptions Options(string database, bool standby = false, string extra = "", int? port = null)
    {
        var pg = TestEnvironment.Postgres;
        var yaml = $"""
            receivers:
              postgresql:
                endpoint: postgres://{pg.Host}:{port ?? (standby ? pg.StandbyPort : pg.Port)}/{database}
                username: {pg.MonitorUser}
                password: {pg.MonitorPassword}
                collection_interval: 10s
                timeout: 5s
            {(extra.Contains("tls:", StringComparison.Ordinal) ? "" : "    tls:\n      mode: disable")}
                resource:
                  cluster: it-cluster
            {extra}
            """;
        var registry = new ComponentRegistry().AddReceiver<PostgresqlReceiverOptions>("postgresql");
        return ConfigLoader.Load(yaml, registry).Receivers["postgresql"].OptionsAs<PostgresqlReceiverOptions>();
    }

    public static async Task<ExportMetricsServiceRequest> OnceAsync(PostgresqlReceiverOptions options)
    {
        await using var receiver = Receiver(options);
        return await receiver.ScrapeOnceAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
    }

    /// <summary>A receiver whose output is read through <c>ScrapeOnceAsync</c>, for tests that scrape it more than once.</summary>
    public static PostgresqlReceiver Receiver(PostgresqlReceiverOptions options, Microsoft.Extensions.Logging.ILoggerFactory? loggers = null) =>
        new(options, new Discard(), loggers ?? NullLoggerFactory.Instance, TimeProvider.System);

    /// <summary>Every point of <paramref name="metric"/> whose attributes include all of <paramref name="match"/>.</summary>
    public static List<NumberDataPoint> Points(ExportMetricsServiceRequest request, string metric, params (string Key, string Value)[] match)
    {
        var found = new List<NumberDataPoint>();
        foreach (var m in request.ResourceMetrics.SelectMany(rm => rm.ScopeMetrics).SelectMany(s => s.Metrics).Where(m => m.Name == metric))
        {
            var points = m.DataCase == Metric.DataOneofCase.Sum ? m.Sum.DataPoints : m.Gauge.DataPoints;
            found.AddRange(points.Where(p => match.All(kv => p.Attributes.Any(a => a.Key == kv.Key && a.Value.StringValue == kv.Value))));
        }

        return found;
    }

    public static double Value(NumberDataPoint p) => p.ValueCase == NumberDataPoint.ValueOneofCase.AsInt ? p.AsInt : p.AsDouble;

    /// <summary>The single value of a metric with these attributes, or null when there is none.</summary>
    public static double? Single(ExportMetricsServiceRequest request, string metric, params (string Key, string Value)[] match)
    {
        var points = Points(request, metric, match);
        return points.Count == 1 ? Value(points[0]) : null;
    }

    public static string Resource(ExportMetricsServiceRequest request, string key) =>
        request.ResourceMetrics[0].Resource.Attributes.Single(a => a.Key == key).Value.StringValue;

    /// <summary>Scrapes until <paramref name="accept"/> holds (statistics reach the views asynchronously).</summary>
    public static async Task<ExportMetricsServiceRequest> UntilAsync(PostgresqlReceiverOptions options, Func<ExportMetricsServiceRequest, bool> accept, string what)
    {
        ExportMetricsServiceRequest last = new();
        await TestTimeouts.WaitUntilAsync(async () => accept(last = await OnceAsync(options)), TestTimeouts.Pipeline, what, TimeSpan.FromMilliseconds(500));
        return last;
    }

    private sealed class Discard : PgOtelGateway.Shared.Pipeline.IMetricsConsumer
    {
        public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

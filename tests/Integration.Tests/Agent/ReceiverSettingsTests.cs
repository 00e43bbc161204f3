using System.Net.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Agent.Configuration;
using PgOtelGateway.Agent.Hosting;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;
using Xunit;
using static PgOtelGateway.Integration.Tests.Agent.AgentScrape;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>The postgresql receiver's settings beyond the catalog: routing to replicas, switches, timeouts, transport, self-metrics.</summary>
public sealed class ReceiverSettingsTests
{
    private static PostgresEndpoints Pg => TestEnvironment.Postgres;

    private static List<ResourceMetrics> ByRole(ExportMetricsServiceRequest r, string role) =>
        r.ResourceMetrics.Where(rm => rm.Resource.Attributes.Any(a => a.Key == "db.role" && a.Value.StringValue == role)).ToList();

    private static bool Has(ResourceMetrics rm, string metric) => rm.ScopeMetrics.SelectMany(s => s.Metrics).Any(m => m.Name == metric);

    private static IEnumerable<NumberDataPoint> PointsOf(ResourceMetrics rm, string metric) =>
        rm.ScopeMetrics.SelectMany(s => s.Metrics).Where(m => m.Name == metric).SelectMany(m => m.DataCase == Metric.DataOneofCase.Sum ? m.Sum.DataPoints : m.Gauge.DataPoints);

    private static string Attr(NumberDataPoint p, string key) => p.Attributes.SingleOrDefault(a => a.Key == key)?.Value.StringValue ?? "";

    [Fact]
    public async Task QueryConfig_ReplicaAndPrimaryTargets_RouteTableStatsToTheStandbyAndReplicationStatsToThePrimary()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.ExecuteAsync("CREATE TABLE routed (id int PRIMARY KEY); INSERT INTO routed SELECT generate_series(1, 10)");
        var options = Options(db.Name, extra: $"""
                databases: [{db.Name}]
                replicas:
                  - endpoint: postgres://{Pg.Host}:{Pg.StandbyPort}/{db.Name}
                    role: replica
                query_config:
                  replication_stats:
                    target: primary
                    interval: 30s
                  read_only_stats:
                    target: replica
                    interval: 10s
            """);

        // On a 30 s boundary the replication group runs; 10 s later it does not. Both are fixed times on the grid.
        var boundary = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 30 * 30);
        var onBoundary = await ScrapeAtAsync(options, boundary, r => ByRole(r, "replica").Any(rm => PointsOf(rm, "postgresql.table.rows").Any(p => Attr(p, "table_name") == "routed")));
        var primary = Assert.Single(ByRole(onBoundary, "primary"));
        var replica = Assert.Single(ByRole(onBoundary, "replica"));

        // Table and index statistics come from the standby only; the primary keeps its instance-wide metrics.
        Assert.False(Has(primary, "postgresql.table.rows"));
        Assert.False(Has(primary, "postgresql.index.scans"));
        Assert.True(Has(primary, "postgresql.database.size"));
        Assert.True(Has(replica, "postgresql.index.scans"));

        // Replication statistics come from the primary only; the standby still reports its own lag.
        Assert.True(Has(primary, "postgresql.replication.replicas"));
        Assert.True(Has(primary, "postgresql.replication_slot.lag_bytes") || Has(primary, "postgresql.wal.bytes"));
        Assert.False(Has(replica, "postgresql.replication_slot.lag_bytes"));
        Assert.True(Has(replica, "postgresql.replication.lag_seconds"));

        var between = await ScrapeAtAsync(options, boundary.AddSeconds(10), _ => true);
        Assert.False(Has(Assert.Single(ByRole(between, "primary")), "postgresql.replication.replicas"));
        Assert.False(Has(Assert.Single(ByRole(between, "primary")), "postgresql.wal.bytes"));
        Assert.True(Has(Assert.Single(ByRole(between, "replica")), "postgresql.table.rows"));
    }

    [Fact]
    public async Task DatabaseConnections_ByConnectionState_CountTheSessionsAndAddUpToNumbackends()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var idle = new Npgsql.NpgsqlConnection(db.ConnectionString);
        await idle.OpenAsync();
        await using var inTransaction = new Npgsql.NpgsqlConnection(db.ConnectionString);
        await inTransaction.OpenAsync();
        await using (var cmd = new Npgsql.NpgsqlCommand("BEGIN; SELECT 1", inTransaction))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        var scrape = await UntilAsync(Options(db.Name, extra: $"    databases: [{db.Name}]"),
            r => Single(r, "postgresql.database.connections", ("database_name", db.Name), ("connection_state", "idle_in_transaction")) == 1, "the idle-in-transaction session");
        var states = Points(scrape, "postgresql.database.connections", ("database_name", db.Name));
        Assert.Equal(["active", "idle", "idle_in_transaction", "other"], states.Select(p => p.Attributes.Single(a => a.Key == "connection_state").Value.StringValue).Order(StringComparer.Ordinal));

        // The agent's own session (active, in this database) and the test's idle one.
        Assert.True(Single(scrape, "postgresql.database.connections", ("database_name", db.Name), ("connection_state", "idle")) >= 1);
        Assert.True(Single(scrape, "postgresql.database.connections", ("database_name", db.Name), ("connection_state", "active")) >= 1);
        Assert.True(states.Sum(Value) >= 3);
    }

    [Fact]
    public void QueryConfig_UnknownTarget_IsAConfigError()
    {
        var ex = Assert.Throws<ConfigException>(() => Options("postgres", extra: """
                query_config:
                  replication_stats:
                    target: standby
            """));
        Assert.Contains("query_config.replication_stats.target must be primary, replica or any", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_SwitchedOff_AreNotEmitted_AndAnUnknownNameIsAConfigError()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.ExecuteAsync("CREATE TABLE sw (id int PRIMARY KEY); INSERT INTO sw VALUES (1)");
        var scrape = await OnceAsync(Options(db.Name, extra: $"""
                databases: [{db.Name}]
                metrics:
                  postgresql.table.size:
                    enabled: false
                  postgresql.database.deadlocks:
                    enabled: false
                  postgresql.table.rows:
                    enabled: true
            """));
        Assert.Empty(Points(scrape, "postgresql.table.size"));
        Assert.Empty(Points(scrape, "postgresql.database.deadlocks"));
        Assert.NotEmpty(Points(scrape, "postgresql.table.rows", ("table_name", "sw")));
        Assert.NotEmpty(Points(scrape, "postgresql.index.size", ("table_name", "sw")));

        var ex = Assert.Throws<ConfigException>(() => Options("postgres", extra: """
                metrics:
                  postgresql.table.sizes:
                    enabled: false
            """));
        Assert.Contains("metrics.postgresql.table.sizes: not a metric of this receiver", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Databases_Empty_DiscoversEveryDatabaseButTheExcluded_AndSessionsCarryTheAgentsSettings()
    {
        await using var kept = await TestDatabase.CreateAsync();
        await using var excluded = await TestDatabase.CreateAsync();
        await kept.ExecuteAsync("CREATE TABLE found (id int); INSERT INTO found VALUES (1)");
        await excluded.ExecuteAsync("CREATE TABLE hidden (id int); INSERT INTO hidden VALUES (1)");

        // databases: [] (the default) finds databases on each scrape; the custom query reads back the session's own settings.
        var options = Options("postgres", extra: $"""
                exclude_databases: [template0, template1, {excluded.Name}]
                custom_queries:
                  - query: "SELECT current_setting('application_name') AS app, setting::int AS timeout_ms FROM pg_settings WHERE name = 'statement_timeout'"
                    metrics:
                      - name: custom.session.statement_timeout
                        value_column: timeout_ms
                        attributes:
                          - column: app
            """);
        var scrape = await UntilAsync(options, r => Single(r, "postgresql.table.rows", ("database_name", kept.Name), ("table_name", "found")) is not null,
            "the discovered database's table statistics");

        Assert.NotNull(Single(scrape, "postgresql.database.size", ("database_name", kept.Name)));
        Assert.Empty(Points(scrape, "postgresql.database.size", ("database_name", excluded.Name)));
        Assert.Empty(Points(scrape, "postgresql.table.rows", ("table_name", "hidden")));
        Assert.Empty(Points(scrape, "postgresql.database.size", ("database_name", "template1")));
        Assert.Equal(5000, Single(scrape, "custom.session.statement_timeout", ("app", "pgotel-agent")));
    }

    [Fact]
    public async Task SlowQuery_PastTheTimeout_IsCountedInScrapeErrors_AndTheRestArrives()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.ExecuteAsync("CREATE TABLE slow (id int PRIMARY KEY); INSERT INTO slow VALUES (1)");
        var options = Options(db.Name, extra: $"""
                databases: [{db.Name}]
                custom_queries:
                  - query: "SELECT 1 AS v FROM pg_sleep(3)"
                    metrics:
                      - name: custom.slow
                        value_column: v
            """);
        options.Timeout = TimeSpan.FromSeconds(1);
        var scrape = await UntilAsync(options, r => Single(r, "postgresql.table.rows", ("table_name", "slow")) is not null, "the table's statistics");

        Assert.Equal(1, Single(scrape, "postgresql.up"));
        Assert.Equal(1, Single(scrape, "postgresql.scrape.errors", ("database_name", db.Name), ("query", "custom_queries[0]")));
        Assert.Empty(Points(scrape, "custom.slow"));
        Assert.NotNull(Single(scrape, "postgresql.scrape.duration", ("database_name", db.Name)));
    }

    [Fact]
    public async Task Transport_Unix_ScrapesThroughTheSocketDirectory()
    {
        var yaml = $"""
            receivers:
              postgresql:
                endpoint: {Pg.SocketDirectory}:{Pg.Port}
                transport: unix
                username: {Pg.MonitorUser}
                password_file: {await PasswordFileAsync()}
                databases: [postgres]
                collection_interval: 10s
                timeout: 5s
            exporters:
              debug:
            service:
              pipelines:
                metrics:
                  receivers: [postgresql]
                  exporters: [debug]
            """;
        var options = ConfigLoader.Load(yaml, AgentComponents.CreateRegistry()).Receivers["postgresql"].OptionsAs<PostgresqlReceiverOptions>();
        var scrape = await OnceAsync(options);
        Assert.Equal(1, Single(scrape, "postgresql.up"));
        Assert.Equal("primary", Resource(scrape, "db.role"));
        Assert.NotEmpty(Points(scrape, "postgresql.database.size", ("database_name", "postgres")));
    }

    private static async Task<string> PasswordFileAsync()
    {
        var path = Path.Combine(TestEnvironment.RunDirectory, UniqueName.For() + ".password");
        await File.WriteAllTextAsync(path, Pg.MonitorPassword + "\n");
        return path;
    }

    [Fact]
    public async Task Run_AgentSelfMetricsAndHealth_ShowScrapeDurationPerDatabase()
    {
        await using var db = await TestDatabase.CreateAsync();
        var metricsPort = FreePort.Get();
        var healthPort = FreePort.Get();
        var yaml = $"""
            receivers:
              postgresql:
                endpoint: postgres://{Pg.Host}:{Pg.Port}/{db.Name}
                username: {Pg.MonitorUser}
                password: {Pg.MonitorPassword}
                databases: [{db.Name}]
                collection_interval: 1s
                initial_delay: 0s
                timeout: 500ms
                tls:
                  mode: disable
            exporters:
              debug:
            extensions:
              health_check:
                endpoint: 127.0.0.1:{healthPort}
            service:
              extensions: [health_check]
              pipelines:
                metrics:
                  receivers: [postgresql]
                  exporters: [debug]
              telemetry:
                metrics:
                  address: 127.0.0.1:{metricsPort}
            """;
        await using var agent = AgentHost.Create(ConfigLoader.Load(yaml, AgentComponents.CreateRegistry()), l => l.SetMinimumLevel(LogLevel.Warning));
        await agent.StartAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
        try
        {
            using var http = new HttpClient { Timeout = TestTimeouts.Short };
            var instance = $"{Pg.Host}:{Pg.Port}";
            var text = "";
            await TestTimeouts.WaitUntilAsync(async () =>
            {
                text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{metricsPort}/metrics"));
                return text.Contains($"pgotel_agent_scrape_duration_seconds_count{{instance=\"{instance}\",database_name=\"{db.Name}\"}}", StringComparison.Ordinal);
            }, TestTimeouts.Pipeline, "the per-database scrape duration in /metrics");
            Assert.Contains($"pgotel_agent_scrapes_total{{instance=\"{instance}\"}}", text, StringComparison.Ordinal);
            Assert.Equal("{\"status\":\"ok\"}", await http.GetStringAsync(new Uri($"http://127.0.0.1:{healthPort}/health")));
            using var ready = await http.GetAsync(new Uri($"http://127.0.0.1:{healthPort}/ready"));
            Assert.Equal(System.Net.HttpStatusCode.OK, ready.StatusCode);
        }
        finally
        {
            await agent.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
        }
    }

    private static async Task<ExportMetricsServiceRequest> ScrapeAtAsync(PostgresqlReceiverOptions options, DateTimeOffset at, Func<ExportMetricsServiceRequest, bool> accept)
    {
        await using var receiver = new PostgresqlReceiver(options, new Discard(), NullLoggerFactory.Instance, new FixedTime(at));
        ExportMetricsServiceRequest last = new();
        await TestTimeouts.WaitUntilAsync(async () => accept(last = await receiver.ScrapeOnceAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short)),
            TestTimeouts.Pipeline, "a scrape showing the routed statistics", TimeSpan.FromMilliseconds(500));
        return last;
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private sealed class Discard : PgOtelGateway.Shared.Pipeline.IMetricsConsumer
    {
        public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

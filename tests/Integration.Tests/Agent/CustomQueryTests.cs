using Microsoft.Extensions.Logging.Abstractions;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Agent.Configuration;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;
using Xunit;
using static PgOtelGateway.Integration.Tests.Agent.AgentScrape;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>The reference's six custom queries, from the shipped example config, produce their metrics with the expected values.</summary>
public sealed class CustomQueryTests
{
    [Fact]
    public async Task SeedCustomQueries_FromTheExampleConfig_ProduceAllSixMetrics()
    {
        var pg = TestEnvironment.Postgres;
        await using var db = await TestDatabase.CreateAsync();
        // The slot first, so the churn's WAL is behind it.
        var slot = UniqueName.For();
        await db.ExecuteAsync($"SELECT pg_create_logical_replication_slot('{slot}', 'test_decoding')");
        await db.ExecuteAsync("CREATE TABLE churn (id int) WITH (autovacuum_enabled = false); INSERT INTO churn SELECT generate_series(1, 5000); DELETE FROM churn WHERE id <= 2000");
        using var secrets = new TempDirectory();
        await File.WriteAllTextAsync(secrets.File("pw"), pg.MonitorPassword + "\n");
        var env = new Dictionary<string, string>
        {
            ["POSTGRES_ENDPOINT"] = $"postgres://{pg.Host}:{pg.Port}/{db.Name}",
            ["POSTGRES_PASSWORD_FILE"] = secrets.File("pw"),
            ["POSTGRES_TLS_MODE"] = "disable",
            ["CLUSTER_NAME"] = "it-custom",
        };
        var path = Path.Combine(RepoRoot(), "deploy", "examples", "agent.yaml");
        var config = ConfigLoader.LoadFile(path, AgentComponents.CreateRegistry(), name => env.GetValueOrDefault(name));
        var options = config.Receivers["postgresql"].OptionsAs<PostgresqlReceiverOptions>();

        // One query looks for statements running over a minute; make sure there is one.
        // Npgsql's default 30 s command timeout would cancel the sleep before it is a minute old.
        var sleeper = PostgresAdmin.ExecuteAsync(db.ConnectionString + ";Command Timeout=120", "SELECT pg_sleep(75)");
        try
        {
            // Wait on this database's own sleeper (other sessions on the shared server may run long too), seen by the
            // catalog's long-running query metric at the reference's one-minute threshold.
            var running = new[] { ("database_name", db.Name), ("state", "active") };
            var scrape = await UntilAsync(options, r => Single(r, "postgresql.queries.long_running", running) >= 1 && Points(r, "postgresql.vacuum.dead_tuples").Count > 0,
                "the 75 s sleep to pass the one-minute threshold");

            Assert.True(Single(scrape, "postgresql.wal.bytes_generated", ("server_role", "primary")) > 0);
            Assert.True(Single(scrape, "postgresql.replication_slot.logical_lag_bytes", ("slot_name", slot), ("active", "false")) > 100_000);
            Assert.True(Points(scrape, "postgresql.locks.waiting_sessions", ("wait_event_type", "Timeout"), ("wait_event", "PgSleep")).Sum(Value) >= 1);
            Assert.Equal(2000, Single(scrape, "postgresql.vacuum.dead_tuples", ("schemaname", "public"), ("tablename", "churn")));
            Assert.Equal(40, Single(scrape, "custom.table.bloat", ("schema", "public"), ("table", "churn")));
            Assert.Contains(Points(scrape, "custom.query.long_running", ("query_state", "active")), p => Value(p) >= 60);
            Assert.True(Single(scrape, "postgresql.queries.max_duration", running) >= 60);

            var metrics = scrape.ResourceMetrics[0].ScopeMetrics[0].Metrics;
            Assert.Equal("By", metrics.Single(m => m.Name == "postgresql.wal.bytes_generated").Unit);
            Assert.True(metrics.Single(m => m.Name == "postgresql.wal.bytes_generated").Sum.IsMonotonic);
            Assert.Equal("%", metrics.Single(m => m.Name == "custom.table.bloat").Unit);
            Assert.Equal("{sessions}", metrics.Single(m => m.Name == "postgresql.locks.waiting_sessions").Unit);
        }
        finally
        {
            await PostgresAdmin.ExecuteAsync(TestEnvironment.Postgres.PrimarySuperuser(), $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db.Name}' AND query LIKE '%pg_sleep(75)%'");
            try
            {
                await sleeper;
            }
            catch (Npgsql.PostgresException)
            {
                // Terminated on purpose.
            }

            await db.ExecuteAsync($"SELECT pg_drop_replication_slot('{slot}')");
        }
    }

    internal static string RepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "PgOtelGateway.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir ?? throw new InvalidOperationException("cannot find the repository root above " + AppContext.BaseDirectory);
    }
}

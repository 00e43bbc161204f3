using System.Diagnostics;
using System.Text.Json;
using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>The agent binary as operators run it: collect-once, and run against a gateway into Prometheus.</summary>
public sealed class AgentEndToEndTests
{
    private static PostgresEndpoints Pg => TestEnvironment.Postgres;

    // On a PostgreSQL 15 primary these need what this test does not have: a replica, version 16, a failing query.
    private static readonly HashSet<string> NotOnA15Primary = ["postgresql.replication.lag_seconds", "postgresql.io.operations", "postgresql.scrape.errors"];

    [Fact]
    public async Task CollectOnce_OnADatabaseWithUserTables_PrintsEveryCatalogMetric()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'x' FROM generate_series(1, 500) g; DELETE FROM t WHERE id < 10");
        await db.ExecuteAsync("VACUUM t");
        await db.ExecuteAsync("CREATE TABLE free (id int PRIMARY KEY); INSERT INTO free VALUES (1)");
        await using var idle = new Npgsql.NpgsqlConnection(db.ConnectionString);
        await idle.OpenAsync();
        await using (var cmd = new Npgsql.NpgsqlCommand("BEGIN; SELECT 1", idle))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        await using var holder = new Npgsql.NpgsqlConnection(db.ConnectionString);
        await holder.OpenAsync();
        await using (var cmd = new Npgsql.NpgsqlCommand("BEGIN; LOCK TABLE t IN SHARE MODE", holder))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        // The holder takes SHARE, not ACCESS EXCLUSIVE: that lock is WAL-logged and so takes a transaction id, and a
        // concurrent test creating a logical slot would wait for the transaction to end. The INSERT waits all the same.
        var waiter = PostgresAdmin.ExecuteAsync(db.ConnectionString, "INSERT INTO t SELECT 1 WHERE false");
        var slot = UniqueName.For();
        await db.ExecuteAsync($"SELECT pg_create_physical_replication_slot('{slot}')");
        await Task.Delay(2500);
        using var dir = new TempDirectory();
        var config = dir.File("agent.yaml");
        await File.WriteAllTextAsync(config, $"""
            receivers:
              postgresql:
                endpoint: postgres://{Pg.Host}:{Pg.Port}/{db.Name}
                username: {Pg.MonitorUser}
                password: {Pg.MonitorPassword}
                long_running_threshold: 1s
                # Only this test's database: the shared server holds other tests' databases, created and dropped
                # while this scrape runs.
                databases: [{db.Name}]
                tls:
                  mode: disable
            exporters:
              debug:
            service:
              pipelines:
                metrics:
                  receivers: [postgresql]
                  exporters: [debug]
              telemetry:
                metrics:
                  address: ""
            """);

        var (exit, stdout, stderr) = await RunAsync("PgOtelGateway.Agent.dll", "collect-once", "--config", config);
        await using (var cmd = new Npgsql.NpgsqlCommand("ROLLBACK", holder))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        await waiter.WaitAsync(TestTimeouts.Short);
        await db.ExecuteAsync($"SELECT pg_drop_replication_slot('{slot}')");
        Assert.True(exit == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var names = json.RootElement.GetProperty("resourceMetrics")[0].GetProperty("scopeMetrics")[0].GetProperty("metrics")
            .EnumerateArray().Select(m => m.GetProperty("name").GetString()!).ToHashSet();
        // The locked table still has its statistics; only its size (which needs the relation) is skipped.
        Assert.Contains("\"free\"", stdout, StringComparison.Ordinal);
        var missing = PgOtelGateway.Agent.Catalog.MetricCatalog.All.Select(m => m.Name).Where(n => !names.Contains(n) && !NotOnA15Primary.Contains(n)).ToList();
        Assert.True(missing.Count == 0, "missing: " + string.Join(", ", missing));

        // Each series at most once per scrape: Prometheus refuses a whole batch over one duplicate sample.
        var series = json.RootElement.GetProperty("resourceMetrics")[0].GetProperty("scopeMetrics")[0].GetProperty("metrics").EnumerateArray()
            .SelectMany(m => (m.TryGetProperty("sum", out var sum) ? sum : m.GetProperty("gauge")).GetProperty("dataPoints").EnumerateArray()
                .Select(p => m.GetProperty("name").GetString() + " " + (p.TryGetProperty("attributes", out var a) ? a.GetRawText() : "")))
            .ToList();
        Assert.Empty(series.GroupBy(k => k).Where(g => g.Count() > 1).Select(g => g.Key));

        // OTLP/JSON rules: int64 as strings, enums as integers.
        var counter = json.RootElement.GetProperty("resourceMetrics")[0].GetProperty("scopeMetrics")[0].GetProperty("metrics")
            .EnumerateArray().First(m => m.GetProperty("name").GetString() == "postgresql.database.commits");
        Assert.Equal(2, counter.GetProperty("sum").GetProperty("aggregationTemporality").GetInt32());
        Assert.Equal(JsonValueKind.String, counter.GetProperty("sum").GetProperty("dataPoints")[0].GetProperty("asInt").ValueKind);
    }

    [Fact]
    public async Task Run_AgainstAGateway_PutsTheCatalogInPrometheus()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var db = await TestDatabase.CreateAsync();
        await db.ExecuteAsync("CREATE TABLE e2e (id int PRIMARY KEY); INSERT INTO e2e SELECT generate_series(1, 42)");
        var cluster = UniqueName.For();
        using var dir = new TempDirectory();
        var config = dir.File("agent.yaml");
        await File.WriteAllTextAsync(config, $"""
            receivers:
              postgresql:
                endpoint: postgres://{Pg.Host}:{Pg.Port}/{db.Name}
                username: {Pg.MonitorUser}
                password: {Pg.MonitorPassword}
                databases: [{db.Name}]
                collection_interval: 2s
                initial_delay: 0s
                timeout: 1s
                tls:
                  mode: disable
                resource:
                  cluster: {cluster}
            exporters:
              otlp:
                endpoint: 127.0.0.1:{gateway.GrpcPort}
                compression: zstd
            service:
              pipelines:
                metrics:
                  receivers: [postgresql]
                  exporters: [otlp]
              telemetry:
                logs:
                  level: warn
                metrics:
                  address: 127.0.0.1:{FreePort.Get()}
            """);

        using var agent = Start("PgOtelGateway.Agent.dll", "--config", config);
        try
        {
            using var prometheus = new PrometheusClient();
            var rows = await prometheus.WaitForAsync($"postgresql_table_rows{{database_name=\"{db.Name}\",table_name=\"e2e\"}}", r => r.Count == 1 && r[0].Value == 42);
            Assert.Equal("postgresql", rows[0].Labels["job"]);
            Assert.Equal($"{Pg.Host}:{Pg.Port}", rows[0].Labels["instance"]);
            await prometheus.WaitForAsync($"postgresql_up{{instance=\"{Pg.Host}:{Pg.Port}\"}}", r => r.Count >= 1 && r.All(s => s.Value == 1));
            await prometheus.WaitForAsync($"postgresql_database_transactions_total{{database_name=\"{db.Name}\",transaction_type=\"commit\"}}", r => r.Count == 1 && r[0].Value > 0);
            await prometheus.WaitForAsync($"target_info{{job=\"postgresql\",db_cluster=\"{cluster}\"}}", r => r.Count == 1);

            // Timestamps sit on the 2 s grid, so HA agents would produce identical samples.
            var raw = await prometheus.RawSamplesAsync($"postgresql_table_rows{{database_name=\"{db.Name}\"}}", TimeSpan.FromMinutes(2));
            Assert.All(raw[0].Samples, s => Assert.Equal(0, (long)(s.Time * 1000) % 2000));

            // Several scrapes went through and Prometheus refused none of their samples.
            await TestTimeouts.WaitUntilAsync(async () => (await prometheus.RawSamplesAsync($"postgresql_up{{instance=\"{Pg.Host}:{Pg.Port}\"}}", TimeSpan.FromMinutes(2))).Sum(x => x.Samples.Count) >= 4,
                TestTimeouts.Pipeline, "four scrapes");
            var counts = await gateway.ExporterCountsAsync();
            Assert.Equal(0, counts.Dropped);
            Assert.True(counts.Sent > 0);
        }
        finally
        {
            agent.Kill(entireProcessTree: true);
            await agent.WaitForExitAsync().WaitAsync(TestTimeouts.Short);
        }
    }

    private static Process Start(string binary, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, binary));
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task<(int, string, string)> RunAsync(string binary, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, binary));
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TestTimeouts.Pipeline);
        return (process.ExitCode, await stdout, await stderr);
    }
}

using System.Diagnostics;
using Npgsql;
using PgOtelGateway.Agent.Configuration;
using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>
/// No rule or panel refers to a series we never produce: agents on the harness's primary and standby stream
/// through a gateway into the real Prometheus, and every metric name used in deploy/prometheus/*.yml and
/// deploy/grafana/*.json must be there, be a recording rule's output, or be on the gateway's own /metrics.
/// </summary>
public sealed class DeployedNamesEndToEndTests(ITestOutputHelper output)
{
    private static PostgresEndpoints Pg => TestEnvironment.Postgres;

    [Fact]
    public async Task RulesAndDashboards_AgainstThePipelineIntoPrometheus_UseOnlySeriesWeProduce()
    {
        var used = UsedNames();
        var records = DeployFiles.Rules().Select(r => r.Record).OfType<string>().ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(used);

        await using var gateway = await TestGateway.StartAsync(exporterExtra: "copy_resource_attributes: [db.cluster]");
        await using var db = await TestDatabase.CreateAsync();
        var cluster = UniqueName.For();
        var slot = UniqueName.For();

        // What some metrics need to exist at all: user tables with dead rows, a replication slot, sessions that
        // are idle, idle in a transaction, holding a lock, and waiting for it.
        await db.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 2000); DELETE FROM t WHERE id > 1000; CREATE TABLE w (v int)");
        await db.ExecuteAsync($"SELECT pg_create_physical_replication_slot('{slot}', true)");
        await using var idle = await OpenAsync(db.ConnectionString, null);
        await using var idleInTransaction = await OpenAsync(db.ConnectionString, "BEGIN; SELECT 1");
        await using var holder = await OpenAsync(db.ConnectionString, "BEGIN; LOCK TABLE t IN SHARE MODE");
        // The holder takes SHARE, not ACCESS EXCLUSIVE: that lock is WAL-logged and so takes a transaction id, and a
        // concurrent test creating a logical slot would wait for the transaction to end. The INSERT waits all the same.
        var waiter = PostgresAdmin.ExecuteAsync(db.ConnectionString, "INSERT INTO t SELECT 1 WHERE false");

        using var dir = new TempDirectory();
        using var primaryAgent = await StartAgentAsync(dir, "primary", Pg.Port, db.Name, cluster, gateway.GrpcPort);
        using var standbyAgent = await StartAgentAsync(dir, "standby", Pg.StandbyPort, db.Name, cluster, gateway.GrpcPort);
        HashSet<string> inPrometheus = [];
        try
        {
            using var prometheus = new PrometheusClient();
            var selfMetrics = ExposedNames(await gateway.SelfMetricsAsync());
            var expected = used.Where(n => !records.Contains(n) && !selfMetrics.Contains(n) && PendingReason(n) is null).ToList();
            try
            {
                await TestTimeouts.WaitUntilAsync(async () =>
                {
                    // Some WAL traffic, so the standby's replay lag is measured (PostgreSQL shows NULL when idle).
                    await db.ExecuteAsync("INSERT INTO w VALUES (1)");
                    inPrometheus = (await prometheus.QueryAsync($"group by (__name__) ({{db_cluster=\"{cluster}\"}})")).Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
                    return expected.All(inPrometheus.Contains);
                }, TestTimeouts.Pipeline, "every used name from this pipeline in Prometheus", TimeSpan.FromSeconds(1));
            }
            catch (TimeoutException)
            {
                // Fall through to the assertion below, which names what is missing.
            }

            // Every expression is valid PromQL for Prometheus itself (Grafana variables filled in).
            foreach (var expr in AllExpressions())
            {
                await prometheus.QueryAsync(FillGrafanaVariables(expr));
            }
        }
        finally
        {
            primaryAgent.Kill(entireProcessTree: true);
            standbyAgent.Kill(entireProcessTree: true);
            await using (var rollback = new NpgsqlCommand("ROLLBACK", holder))
            {
                await rollback.ExecuteNonQueryAsync();
            }

            try
            {
                await waiter.WaitAsync(TestTimeouts.Short);
            }
            catch (NpgsqlException)
            {
                // The blocked query may have hit its command timeout on a slow run; it only had to wait.
            }

            await db.ExecuteAsync($"SELECT pg_drop_replication_slot('{slot}')");
        }

        var exposed = ExposedNames(await gateway.SelfMetricsAsync());
        var missing = new List<string>();
        foreach (var name in used.Order(StringComparer.Ordinal))
        {
            var source = records.Contains(name) ? "recording rule"
                : inPrometheus.Contains(name) ? "Prometheus"
                : exposed.Contains(name) ? "gateway /metrics"
                : null;
            if (source is null && PendingReason(name) is { } pending)
            {
                source = "PENDING: " + pending;
            }

            output.WriteLine($"{name}: {source ?? "MISSING"}");
            if (source is null)
            {
                missing.Add(name);
            }
        }

        Assert.True(missing.Count == 0, "used in deploy/ but produced by nothing: " + string.Join(", ", missing));
    }

    /// <summary>Why a name may be absent on this branch: the component that emits it is not in this build.</summary>
    private static string? PendingReason(string name)
    {
        if (name.StartsWith("system_filesystem_", StringComparison.Ordinal) && !AgentComponents.CreateRegistry().ComponentTypes(ComponentKind.Receiver).Contains("hostmetrics"))
        {
            return "the agent's hostmetrics receiver is not in this build";
        }

        if (name.StartsWith("pgotel_gateway_dedup_", StringComparison.Ordinal) && !GatewayComponents.CreateRegistry().ComponentTypes(ComponentKind.Processor).Contains("dedupe"))
        {
            return "the gateway's dedupe processor is not in this build";
        }

        if (name.StartsWith("pgotel_gateway_ring_", StringComparison.Ordinal) && typeof(GatewayOptions).GetProperty("Ring") is null)
        {
            return "gateway.ring is not in this build";
        }

        if (name.StartsWith("pgotel_gateway_queue_", StringComparison.Ordinal) && typeof(GatewayOptions).GetProperty("Queue") is null)
        {
            return "gateway.queue is not in this build";
        }

        return null;
    }

    private static List<string> AllExpressions() =>
        [.. DeployFiles.Rules().Select(r => r.Expr), .. DeployFiles.Dashboards().SelectMany(DeployFiles.DashboardQueries).Where(q => !q.StartsWith("label_values", StringComparison.Ordinal))];

    private static HashSet<string> UsedNames()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var rule in DeployFiles.Rules())
        {
            names.UnionWith(PromQlNames.Extract(rule.Expr));
        }

        foreach (var dashboard in DeployFiles.Dashboards())
        {
            foreach (var query in DeployFiles.DashboardQueries(dashboard))
            {
                names.UnionWith(PromQlNames.Extract(query));
            }
        }

        return names;
    }

    private static string FillGrafanaVariables(string expr) =>
        expr.Replace("$__rate_interval", "1m", StringComparison.Ordinal)
            .Replace("$instance", ".*", StringComparison.Ordinal)
            .Replace("$database", ".*", StringComparison.Ordinal)
            .Replace("$cluster", ".*", StringComparison.Ordinal)
            .Replace("$job", ".*", StringComparison.Ordinal);

    /// <summary>Metric names in a text exposition: sample names, and families with their histogram/summary series.</summary>
    internal static HashSet<string> ExposedNames(string exposition)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                names.Add(parts[2]);
                if (parts[3] is "histogram" or "summary")
                {
                    names.Add(parts[2] + "_sum");
                    names.Add(parts[2] + "_count");
                    if (parts[3] == "histogram")
                    {
                        names.Add(parts[2] + "_bucket");
                    }
                }
            }
            else if (line.Length > 0 && line[0] != '#')
            {
                var end = line.IndexOfAny(['{', ' ']);
                names.Add(end < 0 ? line : line[..end]);
            }
        }

        return names;
    }

    private static async Task<NpgsqlConnection> OpenAsync(string connectionString, string? sql)
    {
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        if (sql is not null)
        {
            await using var cmd = new NpgsqlCommand(sql, connection);
            await cmd.ExecuteNonQueryAsync();
        }

        return connection;
    }

    private static async Task<Process> StartAgentAsync(TempDirectory dir, string name, int port, string database, string cluster, int gatewayPort)
    {
        var config = dir.File($"agent-{name}.yaml");
        await File.WriteAllTextAsync(config, $"""
            receivers:
              postgresql:
                endpoint: postgres://{Pg.Host}:{port}/{database}
                username: {Pg.MonitorUser}
                password: {Pg.MonitorPassword}
                databases: [{database}]
                collection_interval: 2s
                initial_delay: 0s
                timeout: 1s
                tls:
                  mode: disable
                resource:
                  cluster: {cluster}
            exporters:
              otlp:
                endpoint: 127.0.0.1:{gatewayPort}
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
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "PgOtelGateway.Agent.dll"));
        info.ArgumentList.Add("--config");
        info.ArgumentList.Add(config);
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}

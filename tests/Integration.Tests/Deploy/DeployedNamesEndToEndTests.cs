using System.Diagnostics;
using Npgsql;
using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>
/// No rule or panel refers to a series we never produce: agents (postgresql and hostmetrics receivers) on the
/// harness's primary and standby stream through a ring of two gateways (dedupe against Redis, durable queue,
/// remote write and an awss3 cold tier, as deployed) into the real Prometheus, and every metric name used in
/// deploy/prometheus/*.yml and deploy/grafana/*.json must be there, be a recording rule's output, or be on the
/// gateways' own /metrics.
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

        var cluster = UniqueName.For();
        using var cold = new TempDirectory();
        int portA = FreePort.Get(), portB = FreePort.Get();
        await using var gateway = await StartGatewayAsync("deploy-a", portA, portB, cluster, cold);
        await using var peer = await StartGatewayAsync("deploy-b", portB, portA, cluster, cold);
        await using var db = await TestDatabase.CreateAsync();
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
            var expected = used.Where(n => !records.Contains(n) && !selfMetrics.Contains(n) && !n.StartsWith("pgotel_", StringComparison.Ordinal)).ToList();
            try
            {
                await TestTimeouts.WaitUntilAsync(async () =>
                {
                    // Some WAL traffic, so the standby's replay lag is measured (PostgreSQL shows NULL when idle).
                    await db.ExecuteAsync("INSERT INTO w VALUES (1)");
                    inPrometheus = (await prometheus.QueryAsync($"group by (__name__) ({{db_cluster=\"{cluster}\"}})")).Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
                    // Self-metrics: prometheus-net writes the # TYPE line of every family the gateways registered, labelled
                    // or not, so a name shows once the component that declares it runs (it need not have a sample yet).
                    selfMetrics = ExposedNames(await gateway.SelfMetricsAsync());
                    return expected.All(inPrometheus.Contains) && used.Where(n => n.StartsWith("pgotel_", StringComparison.Ordinal)).All(selfMetrics.Contains);
                }, TestTimeouts.Pipeline, "every used name from this pipeline in Prometheus and on the gateways' /metrics", TimeSpan.FromSeconds(1));
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
        exposed.UnionWith(ExposedNames(await peer.SelfMetricsAsync()));
        var missing = new List<string>();
        foreach (var name in used.Order(StringComparer.Ordinal))
        {
            var source = records.Contains(name) ? "recording rule"
                : inPrometheus.Contains(name) ? "Prometheus"
                : exposed.Contains(name) ? "gateway /metrics"
                : null;
            output.WriteLine($"{name}: {source ?? "MISSING"}");
            if (source is null)
            {
                missing.Add(name);
            }
        }

        Assert.True(missing.Count == 0, "used in deploy/ but produced by nothing: " + string.Join(", ", missing));
    }

    /// <summary>
    /// One gateway of a static two-member ring configured like deploy/examples/gateway.yaml: dedupe against the
    /// harness's Redis, the durable queue, remote write and an awss3 cold tier (to a local folder).
    /// </summary>
    private static Task<TestGateway> StartGatewayAsync(string id, int port, int peerPort, string cluster, TempDirectory cold)
    {
        var peer = id == "deploy-a" ? "deploy-b" : "deploy-a";
        return TestGateway.StartAsync(
            processors: $"""
                dedupe:
                  redis:
                    endpoint: {TestEnvironment.Redis}
                    key_prefix: "{cluster}:"
                """,
            processorList: "dedupe, ",
            exporterExtra: "copy_resource_attributes: [db.cluster]",
            exporters: $"""
                awss3:
                  s3uploader:
                    endpoint: file://{cold.Path}/{id}
                    s3_prefix: metrics
                  file_max_age: 1s
                  staging:
                    directory: {cold.Path}/staging-{id}
                """,
            exporterList: ", awss3",
            id: id,
            grpcPort: port,
            gatewayExtra: $"""
                ring:
                  forward_timeout: 2s
                  members:
                    probe_interval: 500ms
                    static: [{id}=127.0.0.1:{port}, {peer}=127.0.0.1:{peerPort}]
                """);
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
              hostmetrics:
                collection_interval: 2s
                initial_delay: 0s
                scrapers:
                  filesystem:
                resource:
                  cluster: {cluster}
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
                  receivers: [postgresql, hostmetrics]
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

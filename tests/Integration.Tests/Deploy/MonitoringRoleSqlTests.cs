using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>deploy/sql against the harness's PostgreSQL 15, run with psql as an operator would.</summary>
public sealed class MonitoringRoleSqlTests
{
    private static PostgresEndpoints Pg => TestEnvironment.Postgres;

    [Fact]
    public async Task MonitoringRoleScripts_RunAgain_SucceedAndGrantWhatTheAgentNeeds()
    {
        // The harness already ran 01 once; running both again must change nothing and fail nowhere
        // (02 finds no pg_stat_kcache here and must be a no-op, not an error).
        foreach (var script in new[] { "01-monitoring-role.sql", "02-optional-extensions.sql" })
        {
            var (exit, stdout, stderr) = await ToolRunner.RunAsync(Path.Combine(Pg.BinDirectory, "psql"),
            [
                "-X", "-q", "-h", Pg.Host, "-p", Pg.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", Pg.Superuser, "-d", "postgres",
                "-v", "monitor_password=" + Pg.MonitorPassword, "-f", Path.Combine(DeployFiles.Root, "deploy", "sql", script),
            ]);
            Assert.True(exit == 0, script + ": " + stdout + stderr);
            Assert.DoesNotContain("ERROR", stderr, StringComparison.Ordinal);
        }

        var admin = Pg.PrimarySuperuser();
        Assert.Equal(10, await PostgresAdmin.ScalarAsync<int>(admin, "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'pgotel_monitor'"));
        Assert.True(await PostgresAdmin.ScalarAsync<bool>(admin, "SELECT pg_has_role('pgotel_monitor', 'pg_monitor', 'MEMBER')"));
        Assert.True(await PostgresAdmin.ScalarAsync<bool>(admin, "SELECT has_table_privilege('pgotel_monitor', 'pg_stat_statements', 'SELECT')"));
        Assert.False(await PostgresAdmin.ScalarAsync<bool>(admin, "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = 'pgotel_monitor'"));
        Assert.Equal("5s", await PostgresAdmin.ScalarAsync<string>(admin,
            "SELECT split_part(c, '=', 2) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c WHERE r.rolname = 'pgotel_monitor' AND c LIKE 'statement_timeout=%'"));

        // As the monitoring role: other users' statements, with their text (pg_read_all_stats through pg_monitor).
        var monitor = Pg.PrimaryMonitor();
        Assert.True(await PostgresAdmin.ScalarAsync<long>(monitor,
            "SELECT count(*) FROM pg_stat_statements WHERE userid <> (SELECT oid FROM pg_roles WHERE rolname = current_user) AND query <> '<insufficient privilege>'") > 0);
    }

    [Fact]
    public void PgHbaExample_EveryRuleIsForTheMonitoringRoleWithAStrongMethod()
    {
        var rules = File.ReadAllLines(Path.Combine(DeployFiles.Root, "deploy", "sql", "pg_hba.conf.example"))
            .Select(l => l.Trim()).Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries)).ToList();

        Assert.NotEmpty(rules);
        foreach (var r in rules)
        {
            Assert.Contains(r[0], new[] { "local", "hostssl", "hostnossl" });
            Assert.Equal("pgotel_monitor", r[2]);
            Assert.Contains(r[^1], new[] { "scram-sha-256", "cert", "reject" });
            Assert.Equal(r[0] == "local" ? 4 : 5, r.Length);
            Assert.True(r[0] != "hostnossl" || r[^1] == "reject", "password logins over unencrypted TCP: " + string.Join(' ', r));
        }
    }
}

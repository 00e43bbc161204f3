using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Tests.Common;
using Xunit;
using static PgOtelGateway.Integration.Tests.Agent.AgentScrape;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>
/// The agent's cost on the database: no new sessions per scrape in steady state, never more than the cap. It runs
/// in the isolated pass, because on a machine busy with other database tests a slow query can time out and cost a
/// session, which is what the agent should do but not what this test measures.
/// </summary>
[Collection(ServiceFaultCollection.Name)]
[Trait("Category", ServiceFaultCollection.Category)]
public sealed class ConnectionCostTests
{
    private static PostgresEndpoints Pg => TestEnvironment.Postgres;

    [Fact]
    public async Task TwentyScrapes_OpenNoNewSessions_AndStayUnderTheCap()
    {
        await using var first = await TestDatabase.CreateAsync();
        await using var second = await TestDatabase.CreateAsync();
        await first.ExecuteAsync("CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
        await second.ExecuteAsync("CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
        var app = UniqueName.For();

        // Its own monitoring role: other agent tests share pgotel_monitor and its CONNECTION LIMIT, and a
        // connection refused for the role would show here as a reconnect.
        var role = UniqueName.For("monitor");
        await PostgresAdmin.ExecuteAsync(Pg.PrimarySuperuser(), $"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}' CONNECTION LIMIT 10 IN ROLE pg_monitor");
        var options = Options(first.Name, extra: $"""
                application_name: {app}
                databases: [{first.Name}, {second.Name}]
                connection_pool:
                  max_open_conns: 3
            """);
        options.Username = role;
        options.Password = "pw-" + role;
        await using var receiver = Receiver(options);
        await receiver.ScrapeOnceAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
        var sessionsAfterFirst = await Sessions(first.Name, second.Name);
        var openedAfterFirst = receiver.Scrapers[0].SessionsOpened;
        var mostBackends = 0L;

        for (var i = 0; i < 19; i++)
        {
            var scrape = receiver.ScrapeOnceAsync(CancellationToken.None);
            mostBackends = Math.Max(mostBackends, await PostgresAdmin.ScalarAsync<long>(Pg.PrimarySuperuser(), $"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'"));
            await scrape.WaitAsync(TestTimeouts.Short);
            mostBackends = Math.Max(mostBackends, await PostgresAdmin.ScalarAsync<long>(Pg.PrimarySuperuser(), $"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'"));
        }

        Assert.True(openedAfterFirst == receiver.Scrapers[0].SessionsOpened,
            $"sessions opened: {openedAfterFirst} after the first scrape, {receiver.Scrapers[0].SessionsOpened} after 20; closed: " +
            string.Join(", ", receiver.Scrapers[0].SessionsClosed.Select(kv => kv.Key + "=" + kv.Value)));
        Assert.Equal(sessionsAfterFirst, await Sessions(first.Name, second.Name));
        Assert.InRange(mostBackends, 1, 3);
        await receiver.DisposeAsync();
        await PostgresAdmin.ExecuteAsync(Pg.PrimarySuperuser(), $"DROP ROLE {role}");
    }

    [Fact]
    public async Task ScrapesOfSevenDatabases_WithAPoolThatFitsThem_StartNoNewBackends()
    {
        // More databases than the default pool of 5: the receiver keeps one session per database when
        // max_open_conns fits them (max_idle_conns follows it by default), so no scrape after the first starts a
        // backend. Eight sessions: the seven databases and postgres (statements_database). Backends are identified by (pid, backend_start) and counted by pg_stat_database.sessions: no
        // timing involved.
        var databases = new List<TestDatabase>();
        try
        {
            for (var i = 0; i < 7; i++)
            {
                var db = await TestDatabase.CreateAsync();
                databases.Add(db);
                await db.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY, v int); CREATE INDEX t_v ON t (v); INSERT INTO t VALUES (1, 1)");
            }

            var names = databases.Select(d => d.Name).ToArray();
            var app = UniqueName.For();
            var role = UniqueName.For("monitor");
            await PostgresAdmin.ExecuteAsync(Pg.PrimarySuperuser(), $"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}' CONNECTION LIMIT 12 IN ROLE pg_monitor");
            var options = Options(names[0], extra: $"""
                    application_name: {app}
                    databases: [{string.Join(", ", names)}]
                    connection_pool:
                      max_open_conns: 8
                """);
            options.Username = role;
            options.Password = "pw-" + role;
            await using (var receiver = Receiver(options))
            {
                var first = await receiver.ScrapeOnceAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
                Assert.Equal(7, Points(first, "postgresql.table.rows", ("table_name", "t")).Count);
                var backends = await Backends(app);
                var sessions = await Sessions(names);
                Assert.Equal(8, backends.Count);

                for (var i = 0; i < 5; i++)
                {
                    var scrape = await receiver.ScrapeOnceAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
                    Assert.Equal(7, Points(scrape, "postgresql.index.scans", ("index_name", "t_v")).Count);
                }

                Assert.Equal(backends, await Backends(app));
                Assert.Equal(sessions, await Sessions(names));
                Assert.Equal(8, receiver.Scrapers[0].SessionsOpened);
            }

            await PostgresAdmin.ExecuteAsync(Pg.PrimarySuperuser(), $"DROP ROLE {role}");
        }
        finally
        {
            foreach (var db in databases)
            {
                await db.DisposeAsync();
            }
        }
    }

    /// <summary>The agent's backends as "pid@backend_start", sorted.</summary>
    private static async Task<List<string>> Backends(string app)
    {
        await using var connection = new Npgsql.NpgsqlConnection(Pg.PrimarySuperuser());
        await connection.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand($"SELECT pid || '@' || backend_start::text FROM pg_stat_activity WHERE application_name = '{app}' ORDER BY 1", connection);
        await using var reader = await cmd.ExecuteReaderAsync();
        var found = new List<string>();
        while (await reader.ReadAsync())
        {
            found.Add(reader.GetString(0));
        }

        return found;
    }

    private static async Task<long> Sessions(params string[] databases) =>
        await PostgresAdmin.ScalarAsync<long>(Pg.PrimarySuperuser(),
            $"SELECT sum(sessions) FROM pg_stat_database WHERE datname IN ({string.Join(",", databases.Select(d => $"'{d}'"))})");
}

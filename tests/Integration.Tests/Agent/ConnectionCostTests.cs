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
        await using var receiver = new PostgresqlReceiver(options, new NullSink(), Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, TimeProvider.System);
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

    private static async Task<long> Sessions(params string[] databases) =>
        await PostgresAdmin.ScalarAsync<long>(Pg.PrimarySuperuser(),
            $"SELECT sum(sessions) FROM pg_stat_database WHERE datname IN ({string.Join(",", databases.Select(d => $"'{d}'"))})");

    private sealed class NullSink : PgOtelGateway.Shared.Pipeline.IMetricsConsumer
    {
        public Task ConsumeAsync(OpenTelemetry.Proto.Collector.Metrics.V1.ExportMetricsServiceRequest request, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

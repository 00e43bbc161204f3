using Microsoft.Extensions.Logging;
using PgOtelGateway.Tests.Common;
using Xunit;
using static PgOtelGateway.Integration.Tests.Agent.AgentScrape;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>pg_stat_statements top-N: bounded cardinality, and a missing extension costs a log line, not the scrape.</summary>
public sealed class StatementsTests
{
    [Fact]
    public async Task StatementsTopN_ReportsAtMostThatManyStatements_EachWithCallsTimeAndRows()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.ExecuteAsync("CREATE TABLE s (id int, v int); INSERT INTO s SELECT g, g FROM generate_series(1, 2000) g");
        // More distinct statements than the limit, whatever else the shared server has run.
        for (var i = 0; i < 6; i++)
        {
            await db.ExecuteAsync($"SELECT count(*) FROM s WHERE v % {i + 2} = 0 AND id > {i}" + new string(' ', i));
            await db.ExecuteAsync($"SELECT sum(v) AS c{i} FROM s");
        }

        var scrape = await OnceAsync(Options(db.Name, extra: "    statements_top_n: 3"));

        // One series per (queryid, database_name, user_name): the same normalised statement run in two databases is two.
        var keys = Points(scrape, "postgresql.statements.calls")
            .Select(p => new[] { "queryid", "database_name", "user_name" }.Select(k => (k, p.Attributes.Single(a => a.Key == k).Value.StringValue)).ToArray())
            .ToList();
        Assert.Equal(3, keys.Count);
        Assert.Equal(3, keys.Select(k => string.Join('/', k.Select(kv => kv.StringValue))).Distinct(StringComparer.Ordinal).Count());
        foreach (var key in keys)
        {
            Assert.True(Single(scrape, "postgresql.statements.calls", key) >= 1);
            Assert.True(Single(scrape, "postgresql.statements.time", key) > 0);
            Assert.NotNull(Single(scrape, "postgresql.statements.rows", key));
        }
    }

    [Fact]
    public async Task StatementsDatabase_WithoutTheExtension_CostsOneLogLineAndThoseMetrics_NotTheScrape()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.ExecuteAsync("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2)");
        var logs = new CapturingLoggerProvider();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Information));
        // pg_stat_statements is created in the harness's postgres database only; this database has no such view.
        var options = Options(db.Name, extra: $"    databases: [{db.Name}]\n    statements_database: {db.Name}");
        await using var receiver = Receiver(options, loggers);

        var first = await receiver.ScrapeOnceAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
        var second = await receiver.ScrapeOnceAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);

        foreach (var scrape in new[] { first, second })
        {
            Assert.Equal(1, Single(scrape, "postgresql.up"));
            Assert.Empty(Points(scrape, "postgresql.statements.calls"));
            Assert.NotNull(Single(scrape, "postgresql.database.size", ("database_name", db.Name)));
            Assert.Empty(Points(scrape, "postgresql.scrape.errors", ("query", "pg_stat_statements")));
        }

        Assert.Equal(1, logs.CountContaining("pg_stat_statements is not available"));
    }
}

using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Tests.Common;
using Xunit;
using static PgOtelGateway.Integration.Tests.Agent.AgentScrape;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>
/// <c>query_config.size_stats.interval</c>: database, table and index sizes are measured once per interval (on the grid of
/// the scrape times) and the last measurement is sent with the scrapes in between, only for relations that still exist.
/// Scrape times are given explicitly, so where the interval boundaries fall does not depend on the clock.
/// </summary>
public sealed class SizeStatsTests
{
    // A boundary of a 1-hour grid (2026-01-01T00:00:00Z).
    private static readonly DateTimeOffset Boundary = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Sizes_BetweenMeasurements_AreTheLastMeasuredOnes_AndRemeasuredAtTheNextBoundary()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.ExecuteAsync("CREATE TABLE grows (id int PRIMARY KEY, note text); INSERT INTO grows VALUES (1, 'x'); CREATE TABLE dropped (id int)");
        var table = new[] { ("database_name", db.Name), ("table_name", "grows") };
        var index = new[] { ("database_name", db.Name), ("index_name", "grows_pkey") };
        await using var receiver = Receiver(SizeOptions(db.Name, "1h"));
        var scraper = receiver.Scrapers[0];

        var first = await Scrape(scraper, Boundary.AddSeconds(10));
        var size = Single(first, "postgresql.table.size", table);
        var indexSize = Single(first, "postgresql.index.size", index);
        Assert.NotNull(size);
        Assert.NotNull(indexSize);
        Assert.NotNull(Single(first, "postgresql.table.size", ("database_name", db.Name), ("table_name", "dropped")));

        await db.ExecuteAsync("INSERT INTO grows SELECT g, repeat('x', 200) FROM generate_series(2, 5000) g; DROP TABLE dropped");

        // Same hour: the first measurement again, for the tables that still exist.
        var second = await Scrape(scraper, Boundary.AddMinutes(30));
        Assert.Equal(size, Single(second, "postgresql.table.size", table));
        Assert.Equal(indexSize, Single(second, "postgresql.index.size", index));
        Assert.Empty(Points(second, "postgresql.table.size", ("database_name", db.Name), ("table_name", "dropped")));

        // The next hour: measured again.
        var third = await Scrape(scraper, Boundary.AddHours(1));
        Assert.True(Single(third, "postgresql.table.size", table) > size, "the table grew by 5,000 rows");
        Assert.True(Single(third, "postgresql.index.size", index) > indexSize, "the index grew by 5,000 entries");
    }

    [Fact]
    public async Task Sizes_WithTheIntervalOff_AreMeasuredEveryScrape()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.ExecuteAsync("CREATE TABLE grows (id int PRIMARY KEY); INSERT INTO grows VALUES (1)");
        var table = new[] { ("database_name", db.Name), ("table_name", "grows") };
        await using var receiver = Receiver(SizeOptions(db.Name, "0s"));

        var size = Single(await Scrape(receiver.Scrapers[0], Boundary.AddSeconds(10)), "postgresql.table.size", table);
        await db.ExecuteAsync("INSERT INTO grows SELECT g FROM generate_series(2, 5000) g");

        Assert.True(Single(await Scrape(receiver.Scrapers[0], Boundary.AddSeconds(20)), "postgresql.table.size", table) > size);
    }

    [Fact]
    public async Task DatabaseSize_BetweenMeasurements_IsTheLastMeasuredOne_AndRemeasuredAtTheNextBoundary()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var receiver = Receiver(SizeOptions(db.Name, "1h", allDatabases: true));
        var scraper = receiver.Scrapers[0];

        var size = Single(await Scrape(scraper, Boundary.AddSeconds(10)), "postgresql.database.size", ("database_name", db.Name));
        Assert.NotNull(size);
        Assert.Equal<double?>(await db.ScalarAsync<long>("SELECT pg_database_size(current_database())"), size);

        await db.ExecuteAsync("CREATE TABLE grows AS SELECT g AS id, repeat('x', 200) AS note FROM generate_series(1, 5000) g");

        // Same hour: the first measurement again; a database created since is measured at once.
        await using var added = await TestDatabase.CreateAsync("DatabaseSize_Added");
        var second = await Scrape(scraper, Boundary.AddMinutes(30));
        Assert.Equal(size, Single(second, "postgresql.database.size", ("database_name", db.Name)));
        Assert.True(Single(second, "postgresql.database.size", ("database_name", added.Name)) > 0, "a database created since the measurement has a size at once");

        // The next hour: measured again.
        var third = await Scrape(scraper, Boundary.AddHours(1));
        Assert.True(Single(third, "postgresql.database.size", ("database_name", db.Name)) > size, "the database grew by a 5,000-row table");
    }

    [Fact]
    public async Task DatabaseSize_WithTheIntervalOff_IsMeasuredEveryScrape()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var receiver = Receiver(SizeOptions(db.Name, "0s", allDatabases: true));

        var size = Single(await Scrape(receiver.Scrapers[0], Boundary.AddSeconds(10)), "postgresql.database.size", ("database_name", db.Name));
        await db.ExecuteAsync("CREATE TABLE grows AS SELECT g AS id, repeat('x', 200) AS note FROM generate_series(1, 5000) g");

        Assert.True(Single(await Scrape(receiver.Scrapers[0], Boundary.AddSeconds(20)), "postgresql.database.size", ("database_name", db.Name)) > size);
    }

    /// <summary>
    /// Options with <c>size_stats.interval</c> set; only <paramref name="database"/> is scraped for relation sizes
    /// unless <paramref name="allDatabases"/> (database sizes, where a database created mid-test must be found).
    /// </summary>
    private static PostgresqlReceiverOptions SizeOptions(string database, string interval, bool allDatabases = false) =>
        Options(database, extra: $"""
            {(allDatabases ? "" : $"    databases: [{database}]")}
                query_config:
                  size_stats:
                    interval: {interval}
            """);

    private static async Task<OpenTelemetry.Proto.Collector.Metrics.V1.ExportMetricsServiceRequest> Scrape(PostgresqlScraper scraper, DateTimeOffset at)
    {
        var request = new OpenTelemetry.Proto.Collector.Metrics.V1.ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(await scraper.ScrapeAsync(at, CancellationToken.None).WaitAsync(TestTimeouts.Short));
        return request;
    }
}

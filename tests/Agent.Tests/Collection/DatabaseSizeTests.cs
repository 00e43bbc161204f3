using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Agent.Tests.Collection;

/// <summary>
/// <c>postgresql.database.size</c> follows <c>query_config.size_stats.interval</c> like table and index sizes:
/// measured once per interval (a database not measured yet at once), the last measurement sent in between.
/// Needs the harness's PostgreSQL (<c>scripts/test.sh --services-only</c>).
/// </summary>
public sealed class DatabaseSizeTests
{
    // A boundary of a 1-hour grid (2026-01-01T00:00:00Z).
    private static readonly DateTimeOffset Boundary = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task DatabaseSize_BetweenMeasurements_IsTheLastMeasuredOne_AndRemeasuredAtTheNextBoundary()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var receiver = Receiver(db.Name, "1h");
        var scraper = receiver.Scrapers[0];

        var size = Size(await ScrapeAsync(scraper, Boundary.AddSeconds(10)), db.Name);
        Assert.NotNull(size);
        Assert.Equal(size, await db.ScalarAsync<long>("SELECT pg_database_size(current_database())"));

        await db.ExecuteAsync("CREATE TABLE grows AS SELECT g AS id, repeat('x', 200) AS note FROM generate_series(1, 5000) g");

        // Same hour: the first measurement again; a database created since is measured at once.
        await using var added = await TestDatabase.CreateAsync("DatabaseSize_Added");
        var second = await ScrapeAsync(scraper, Boundary.AddMinutes(30));
        Assert.Equal(size, Size(second, db.Name));
        Assert.True(Size(second, added.Name) > 0, "a database created since the measurement has a size at once");

        // The next hour: measured again.
        Assert.True(Size(await ScrapeAsync(scraper, Boundary.AddHours(1)), db.Name) > size, "the database grew by a 5,000-row table");
    }

    [Fact]
    public async Task DatabaseSize_WithTheIntervalOff_IsMeasuredEveryScrape()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var receiver = Receiver(db.Name, "0s");

        var size = Size(await ScrapeAsync(receiver.Scrapers[0], Boundary.AddSeconds(10)), db.Name);
        await db.ExecuteAsync("CREATE TABLE grows AS SELECT g AS id, repeat('x', 200) AS note FROM generate_series(1, 5000) g");

        Assert.True(Size(await ScrapeAsync(receiver.Scrapers[0], Boundary.AddSeconds(20)), db.Name) > size);
    }

    private static PostgresqlReceiver Receiver(string database, string sizeInterval)
    {
        var pg = TestEnvironment.Postgres;
        var yaml = $"""
            receivers:
              postgresql:
                endpoint: postgres://{pg.Host}:{pg.Port}/{database}
                username: {pg.MonitorUser}
                password: {pg.MonitorPassword}
                collection_interval: 10s
                timeout: 5s
                tls:
                  mode: disable
                query_config:
                  size_stats:
                    interval: {sizeInterval}
            """;
        var registry = new ComponentRegistry().AddReceiver<PostgresqlReceiverOptions>("postgresql");
        var options = ConfigLoader.Load(yaml, registry).Receivers["postgresql"].OptionsAs<PostgresqlReceiverOptions>();
        return new PostgresqlReceiver(options, new NullConsumer(), NullLoggerFactory.Instance, TimeProvider.System);
    }

    private static async Task<ExportMetricsServiceRequest> ScrapeAsync(PostgresqlScraper scraper, DateTimeOffset at)
    {
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(await scraper.ScrapeAsync(at, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)));
        return request;
    }

    /// <summary>The database's <c>postgresql.database.size</c>, or null when the scrape has none (or several).</summary>
    private static long? Size(ExportMetricsServiceRequest request, string database)
    {
        var found = new List<NumberDataPoint>();
        foreach (var metric in request.ResourceMetrics.SelectMany(rm => rm.ScopeMetrics).SelectMany(s => s.Metrics).Where(m => m.Name == "postgresql.database.size"))
        {
            found.AddRange(metric.Gauge.DataPoints.Where(p => p.Attributes.Any(a => a.Key == "database_name" && a.Value.StringValue == database)));
        }

        return found.Count == 1 ? found[0].AsInt : null;
    }

    private sealed class NullConsumer : Shared.Pipeline.IMetricsConsumer
    {
        public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

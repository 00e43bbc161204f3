using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Agent.Collection;

/// <summary>
/// <c>receivers.postgresql</c>: every <c>collection_interval</c>, on the interval boundary, scrapes the instance
/// and its configured replicas and hands one request per instance to the pipeline. Points carry the boundary
/// time, so two HA agents scraping one instance emit identical (series, timestamp) pairs.
/// </summary>
internal sealed partial class PostgresqlReceiver : IPipelineComponent, IAsyncDisposable
{
    private readonly PostgresqlReceiverOptions _options;
    private readonly IMetricsConsumer _next;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly List<PostgresqlScraper> _scrapers = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<PostgresqlScraper, Task> _inFlight = [];
    private Task? _loop;

    public PostgresqlReceiver(PostgresqlReceiverOptions options, IMetricsConsumer next, ILoggerFactory loggers, TimeProvider time)
    {
        _options = options;
        _next = next;
        _logger = loggers.CreateLogger<PostgresqlReceiver>();
        _time = time;
        _scrapers.Add(new PostgresqlScraper(options.Endpoint, "", options, loggers.CreateLogger<PostgresqlScraper>(), time));
        foreach (var replica in options.Replicas)
        {
            _scrapers.Add(new PostgresqlScraper(replica.Endpoint, replica.Role, options, loggers.CreateLogger<PostgresqlScraper>(), time));
        }
    }

    /// <summary>The scrapers, one per instance (for tests).</summary>
    public IReadOnlyList<PostgresqlScraper> Scrapers => _scrapers;

    /// <summary>The interval boundary at or before <paramref name="now"/>.</summary>
    public static DateTimeOffset AlignedTime(DateTimeOffset now, TimeSpan interval) =>
        DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds() / (long)interval.TotalMilliseconds * (long)interval.TotalMilliseconds);

    /// <summary>One scrape of every instance, stamped with the current interval boundary.</summary>
    public async Task<ExportMetricsServiceRequest> ScrapeOnceAsync(CancellationToken cancellationToken)
    {
        var at = AlignedTime(_time.GetUtcNow(), _options.CollectionInterval);
        var results = await Task.WhenAll(_scrapers.Select(s => s.ScrapeAsync(at, cancellationToken))).ConfigureAwait(false);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(results);
        return request;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _loop = Task.Run(() => LoopAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task LoopAsync(CancellationToken stopping)
    {
        try
        {
            await Task.Delay(_options.InitialDelay, _time, stopping).ConfigureAwait(false);
            var last = DateTimeOffset.MinValue;
            while (!stopping.IsCancellationRequested)
            {
                var at = AlignedTime(_time.GetUtcNow(), _options.CollectionInterval);
                if (at <= last)
                {
                    // Timers may wake a hair early; a second scrape on the same boundary would give one
                    // series two values for one timestamp, which Prometheus refuses.
                    await Task.Delay(last + _options.CollectionInterval - _time.GetUtcNow() + TimeSpan.FromMilliseconds(1), _time, stopping).ConfigureAwait(false);
                    continue;
                }

                last = at;
                foreach (var scraper in _scrapers)
                {
                    // A scrape still running from the last boundary keeps its turn: starting another would let
                    // the newer samples overtake the older ones on the way to Prometheus.
                    if (_inFlight.TryGetValue(scraper, out var running) && !running.IsCompleted)
                    {
                        AgentMetrics.SkippedScrapes.WithLabels(scraper.Instance).Inc();
                        LogSkipped(_logger, scraper.Instance);
                        continue;
                    }

                    _inFlight[scraper] = ScrapeAndSendAsync(scraper, at, stopping);
                }

                // Sleep to the next boundary: scrapes stay on the grid however long each took.
                var next = at + _options.CollectionInterval;
                await Task.Delay(next - _time.GetUtcNow() is { } wait && wait > TimeSpan.Zero ? wait : TimeSpan.Zero, _time, stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private async Task ScrapeAndSendAsync(PostgresqlScraper scraper, DateTimeOffset at, CancellationToken stopping)
    {
        try
        {
            var opened = scraper.SessionsOpened;
            var rm = await scraper.ScrapeAsync(at, stopping).ConfigureAwait(false);
            AgentMetrics.Scrapes.WithLabels(scraper.Instance).Inc();
            AgentMetrics.SessionsOpened.WithLabels(scraper.Instance).Inc(scraper.SessionsOpened - opened);
            var request = new ExportMetricsServiceRequest();
            request.ResourceMetrics.Add(rm);
            await _next.ConsumeAsync(request, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is PipelineRefusedException or InvalidOperationException or IOException)
        {
            LogHandOffFailed(_logger, scraper.Instance, ex.Message);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var scraper in _scrapers)
        {
            await scraper.DisposeAsync().ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    [LoggerMessage(EventId = 3102, Level = LogLevel.Warning, Message = "The scrape of {Instance} is still running at the next interval; this interval is skipped.")]
    private static partial void LogSkipped(ILogger logger, string instance);

    [LoggerMessage(EventId = 3101, Level = LogLevel.Warning, Message = "The scrape of {Instance} could not be handed to the pipeline: {Reason}")]
    private static partial void LogHandOffFailed(ILogger logger, string instance, string reason);
}

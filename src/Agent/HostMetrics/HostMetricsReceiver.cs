using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Agent.HostMetrics;

/// <summary>
/// <c>receivers.hostmetrics</c>: every <c>collection_interval</c>, on the interval boundary, reads the host's
/// statistics and hands one request to the pipeline.
/// </summary>
internal sealed partial class HostMetricsReceiver : IPipelineComponent, IAsyncDisposable
{
    private readonly HostMetricsReceiverOptions _options;
    private readonly IMetricsConsumer _next;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly HostMetricsScraper _scraper;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    public HostMetricsReceiver(HostMetricsReceiverOptions options, IMetricsConsumer next, ILoggerFactory loggers, TimeProvider time)
    {
        _options = options;
        _next = next;
        _logger = loggers.CreateLogger<HostMetricsReceiver>();
        _time = time;
        _scraper = new HostMetricsScraper(options, loggers.CreateLogger<HostMetricsScraper>());
    }

    /// <summary>One scrape, stamped with the current interval boundary.</summary>
    public ExportMetricsServiceRequest ScrapeOnce()
    {
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(_scraper.Scrape(PostgresqlReceiver.AlignedTime(_time.GetUtcNow(), _options.CollectionInterval)));
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
                var at = PostgresqlReceiver.AlignedTime(_time.GetUtcNow(), _options.CollectionInterval);
                if (at > last)
                {
                    last = at;
                    var request = new ExportMetricsServiceRequest();
                    request.ResourceMetrics.Add(_scraper.Scrape(at));
                    try
                    {
                        await _next.ConsumeAsync(request, stopping).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is PipelineRefusedException or InvalidOperationException or IOException)
                    {
                        LogHandOffFailed(_logger, ex.Message);
                    }
                }

                var wait = last + _options.CollectionInterval - _time.GetUtcNow();
                await Task.Delay(wait > TimeSpan.Zero ? wait + TimeSpan.FromMilliseconds(1) : TimeSpan.FromMilliseconds(1), _time, stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
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

    public ValueTask DisposeAsync()
    {
        _stopping.Dispose();
        return ValueTask.CompletedTask;
    }

    [LoggerMessage(EventId = 3303, Level = LogLevel.Warning, Message = "hostmetrics: the scrape could not be handed to the pipeline: {Reason}")]
    private static partial void LogHandOffFailed(ILogger logger, string reason);
}

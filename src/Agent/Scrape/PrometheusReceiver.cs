using System.Net;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Agent.Scrape;

/// <summary>
/// <c>receivers.prometheus</c>: every target of every job is scraped on its job's interval boundary (so two HA
/// agents stamp identical timestamps) and handed to the pipeline as one request per target. A target that is
/// down yields <c>up = 0</c>; a scrape still running at the next boundary keeps its turn.
/// </summary>
internal sealed partial class PrometheusReceiver : IPipelineComponent, IAsyncDisposable
{
    private readonly PrometheusReceiverOptions _options;
    private readonly IMetricsConsumer _next;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly HttpClient _http;
    private readonly List<PrometheusTarget> _targets = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _loops = [];

    public PrometheusReceiver(PrometheusReceiverOptions options, IMetricsConsumer next, ILoggerFactory loggers, TimeProvider time)
    {
        _options = options;
        _next = next;
        _logger = loggers.CreateLogger<PrometheusReceiver>();
        _time = time;
        _http = new HttpClient(new SocketsHttpHandler
        {
            AutomaticDecompression = DecompressionMethods.GZip | DecompressionMethods.Deflate,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("pgotel-agent");
        foreach (var job in options.Config.ScrapeConfigs)
        {
            foreach (var group in job.StaticConfigs)
            {
                foreach (var target in group.Targets)
                {
                    _targets.Add(new PrometheusTarget(job, target, group.Labels, options.Resource, _http));
                }
            }
        }
    }

    /// <summary>The targets (for tests and collect-once).</summary>
    public IReadOnlyList<PrometheusTarget> Targets => _targets;

    /// <summary>One scrape of every target, each stamped with its job's current interval boundary.</summary>
    public async Task<ExportMetricsServiceRequest> ScrapeOnceAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var results = await Task.WhenAll(_targets.Select(t =>
        {
            var job = Job(t);
            return t.ScrapeAsync(PostgresqlReceiver.AlignedTime(now, job.Interval(_options.Config.Global)), job.Timeout(_options.Config.Global), cancellationToken);
        })).ConfigureAwait(false);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(results);
        return request;
    }

    private ScrapeConfig Job(PrometheusTarget target)
    {
        foreach (var job in _options.Config.ScrapeConfigs)
        {
            if (job.JobName == target.Job)
            {
                return job;
            }
        }

        throw new InvalidOperationException("unknown job " + target.Job);
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var target in _targets)
        {
            var job = Job(target);
            _loops.Add(Task.Run(() => LoopAsync(target, job.Interval(_options.Config.Global), job.Timeout(_options.Config.Global), _stopping.Token), CancellationToken.None));
        }

        return Task.CompletedTask;
    }

    private async Task LoopAsync(PrometheusTarget target, TimeSpan interval, TimeSpan timeout, CancellationToken stopping)
    {
        Task? running = null;
        try
        {
            var last = DateTimeOffset.MinValue;
            while (!stopping.IsCancellationRequested)
            {
                var at = PostgresqlReceiver.AlignedTime(_time.GetUtcNow(), interval);
                if (at <= last)
                {
                    await Task.Delay(last + interval - _time.GetUtcNow() + TimeSpan.FromMilliseconds(1), _time, stopping).ConfigureAwait(false);
                    continue;
                }

                last = at;
                if (running is { IsCompleted: false })
                {
                    AgentMetrics.SkippedScrapes.WithLabels(target.Target).Inc();
                }
                else
                {
                    running = ScrapeAndSendAsync(target, at, timeout, stopping);
                }

                var wait = at + interval - _time.GetUtcNow();
                await Task.Delay(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, _time, stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }

        // The scrape in flight ends with the stop (it is cancelled too); wait for it before the client goes away.
        if (running is not null)
        {
            await running.ConfigureAwait(false);
        }
    }

    private async Task ScrapeAndSendAsync(PrometheusTarget target, DateTimeOffset at, TimeSpan timeout, CancellationToken stopping)
    {
        try
        {
            var wasFailing = target.LastError is not null;
            var rm = await target.ScrapeAsync(at, timeout, stopping).ConfigureAwait(false);
            AgentMetrics.Scrapes.WithLabels(target.Target).Inc();
            if (target.LastError is { } error)
            {
                AgentMetrics.TargetScrapeErrors.WithLabels(target.Job, target.Target).Inc();
                if (!wasFailing)
                {
                    LogScrapeFailed(_logger, target.Job, target.Target, error);
                }
            }
            else if (wasFailing)
            {
                LogScrapeRecovered(_logger, target.Job, target.Target);
            }

            var request = new ExportMetricsServiceRequest();
            request.ResourceMetrics.Add(rm);
            await _next.ConsumeAsync(request, stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is PipelineRefusedException or InvalidOperationException or IOException)
        {
            LogHandOffFailed(_logger, target.Job, target.Target, ex.Message);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_loops).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        _stopping.Dispose();
        _http.Dispose();
        return ValueTask.CompletedTask;
    }

    [LoggerMessage(EventId = 3201, Level = LogLevel.Warning, Message = "Prometheus job {Job}, target {Target}: the scrape failed: {Reason}")]
    private static partial void LogScrapeFailed(ILogger logger, string job, string target, string reason);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Information, Message = "Prometheus job {Job}, target {Target}: scrapes succeed again.")]
    private static partial void LogScrapeRecovered(ILogger logger, string job, string target);

    [LoggerMessage(EventId = 3203, Level = LogLevel.Warning, Message = "Prometheus job {Job}, target {Target}: the scrape could not be handed to the pipeline: {Reason}")]
    private static partial void LogHandOffFailed(ILogger logger, string job, string target, string reason);
}

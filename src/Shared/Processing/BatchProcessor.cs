using System.Threading.Channels;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Shared.Processing;

/// <summary><c>processors.batch</c>.</summary>
public sealed class BatchOptions : IValidatableOptions
{
    /// <summary>Points that trigger a send at once.</summary>
    public int SendBatchSize { get; set; } = 8192;

    /// <summary>Largest batch in points; bigger ones are split. 0: no limit.</summary>
    public int SendBatchMaxSize { get; set; }

    /// <summary>Longest a point waits for its batch to fill.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMilliseconds(200);

    public IEnumerable<string> Validate()
    {
        if (SendBatchSize < 1)
        {
            yield return "send_batch_size must be at least 1";
        }

        if (SendBatchMaxSize != 0 && SendBatchMaxSize < SendBatchSize)
        {
            yield return "send_batch_max_size must be 0 or at least send_batch_size";
        }
    }
}

/// <summary>
/// Merges requests into batches of about <c>send_batch_size</c> points, or whatever arrived within
/// <c>timeout</c>. Unlike the collector's, it acknowledges nothing early: each caller's task completes when the
/// batch holding its data was accepted downstream (or fails with the reason it was not), so a client is only
/// told "accepted" for data that really was. Batches go downstream one at a time, in arrival order, which keeps
/// every series in time order.
/// </summary>
public sealed class BatchProcessor : IMetricsConsumer, IPipelineComponent, IDisposable
{
    private readonly BatchOptions _options;
    private readonly IMetricsConsumer _next;
    private readonly TimeProvider _time;
    private readonly object _lock = new();

    // Batches leave through one loop, in the order they were closed: per-series time order depends on it.
    private readonly Channel<List<(ExportMetricsServiceRequest Request, TaskCompletionSource Done)>> _closed =
        Channel.CreateUnbounded<List<(ExportMetricsServiceRequest Request, TaskCompletionSource Done)>>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _sender;
    private readonly ITimer _timer;
    private List<(ExportMetricsServiceRequest Request, TaskCompletionSource Done)> _pending = [];
    private int _pendingPoints;
    private long _oldest;

    public BatchProcessor(BatchOptions options, IMetricsConsumer next, TimeProvider time)
    {
        _options = options;
        _next = next;
        _time = time;
        var tick = TimeSpan.FromMilliseconds(Math.Max(10, options.Timeout.TotalMilliseconds / 4));
        _sender = Task.Run(SendLoopAsync);
        _timer = time.CreateTimer(_ => OnTimer(), null, tick, tick);
    }

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_pending.Count == 0)
            {
                _oldest = _time.GetTimestamp();
            }

            _pending.Add((request, done));
            _pendingPoints += MetricsCounting.DataPoints(request);
            if (_pendingPoints >= _options.SendBatchSize)
            {
                Close();
            }
        }

        return done.Task;
    }

    private void OnTimer()
    {
        lock (_lock)
        {
            if (_pending.Count > 0 && _time.GetElapsedTime(_oldest) >= _options.Timeout)
            {
                Close();
            }
        }
    }

    /// <summary>Closes the pending batch and queues it for sending; called under the lock, so order is kept.</summary>
    private void Close()
    {
        if (_pending.Count == 0)
        {
            return;
        }

        if (!_closed.Writer.TryWrite(_pending))
        {
            foreach (var (_, done) in _pending)
            {
                done.TrySetException(new PipelineRefusedException(RefusalReason.ShuttingDown, "the batch processor has stopped", TimeSpan.FromSeconds(1)));
            }
        }

        _pending = [];
        _pendingPoints = 0;
    }

    private async Task SendLoopAsync()
    {
        await foreach (var batch in _closed.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            await SendAsync(batch).ConfigureAwait(false);
        }
    }

    private async Task SendAsync(List<(ExportMetricsServiceRequest Request, TaskCompletionSource Done)> batch)
    {
        try
        {
            var merged = new ExportMetricsServiceRequest();
            foreach (var (request, _) in batch)
            {
                merged.ResourceMetrics.Add(request.ResourceMetrics);
            }

            foreach (var part in RequestSplitter.Split(merged, _options.SendBatchMaxSize))
            {
                await _next.ConsumeAsync(part, CancellationToken.None).ConfigureAwait(false);
            }

            foreach (var (_, done) in batch)
            {
                done.TrySetResult();
            }
        }
        catch (Exception ex)
        {
            foreach (var (_, done) in batch)
            {
                done.TrySetException(ex);
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            Close();
            _closed.Writer.TryComplete();
        }

        await _sender.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _timer.Dispose();
        _closed.Writer.TryComplete();
    }
}

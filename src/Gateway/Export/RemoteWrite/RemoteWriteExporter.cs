using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Threading.Channels;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.RemoteWrite.Proto;
using PgOtelGateway.Shared.Translation;

namespace PgOtelGateway.Gateway.Export.RemoteWrite;

/// <summary>
/// The hot tier: translates OTLP into Prometheus series and sends them with remote write 1.0 (protobuf, snappy
/// block). Series are sharded by their labels over <c>num_consumers</c> senders, so each series always travels
/// through one FIFO sender and a retry never lets a later sample overtake an earlier one. 5xx, 429 and network
/// errors are retried (honouring Retry-After); other 4xx are dropped and counted. The queue is bounded: when it
/// is full the pipeline refuses the data and the client retries, so nothing accepted is dropped for lack of room.
/// The task of <see cref="ConsumeAsync"/> completes only when every series of the request was delivered or dropped
/// as not retryable, so the durable queue in front moves its cursor only over data that left the gateway.
/// A batch the receiver rejects with a 4xx is split and resent in halves, so one bad or out-of-order sample
/// (e.g. a replay after a crash of data already delivered) costs only itself, never its neighbours.
/// </summary>
internal sealed partial class RemoteWriteExporter : IMetricsConsumer, IPipelineComponent, Admin.IExporterStatus, IDisposable
{
    private static readonly string UserAgent = "pgotel-gateway/" + (typeof(RemoteWriteExporter).Assembly.GetName().Version?.ToString(3) ?? "0");

    private readonly string _id;
    private readonly RemoteWriteOptions _options;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly TranslationOptions _translation;
    private readonly DeltaToCumulative _deltas;
    private readonly Channel<QueuedSeries>[] _shards;
    private readonly Task[] _senders;
    private readonly CancellationTokenSource _stopping = new();
    private long _pending;
    private long _sent;
    private long _failed;
    private long _dropped;
    private string? _lastError;
    private DateTimeOffset? _lastErrorTime;

    public RemoteWriteExporter(string id, RemoteWriteOptions options, ILogger<RemoteWriteExporter> logger, HttpMessageHandler? handler = null)
    {
        _id = id;
        _options = options;
        _logger = logger;
        _http = new HttpClient(handler ?? CreateHandler(options.Tls), disposeHandler: true) { Timeout = options.Timeout };
        _translation = new TranslationOptions
        {
            ResourceToTelemetry = options.ResourceToTelemetryConversion.Enabled,
            TargetInfo = options.TargetInfo.Enabled,
            ExternalLabels = options.ExternalLabels,
            CopyResourceAttributes = options.CopyResourceAttributes,
        };
        _deltas = new DeltaToCumulative(options.MaxDeltaStreams);
        _shards = new Channel<QueuedSeries>[options.RemoteWriteQueue.NumConsumers];
        _senders = new Task[_shards.Length];
        for (var i = 0; i < _shards.Length; i++)
        {
            _shards[i] = Channel.CreateUnbounded<QueuedSeries>(new UnboundedChannelOptions { SingleReader = true });
        }

        GatewayMetrics.ExporterQueueCapacity.WithLabels(_id).Set(options.RemoteWriteQueue.QueueSize);
    }

    /// <summary>Samples waiting to be sent.</summary>
    public long Pending => Interlocked.Read(ref _pending);

    /// <summary>The last send error, for the admin API.</summary>
    public string? LastError => _lastError;

    /// <inheritdoc />
    public Admin.ExporterSnapshot Snapshot() => new(
        _id, Pending, 0, null, Interlocked.Read(ref _sent), Interlocked.Read(ref _failed), Interlocked.Read(ref _dropped), _lastError, _lastErrorTime);

    private void Failed(string detail)
    {
        _lastError = detail;
        _lastErrorTime = DateTimeOffset.UtcNow;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        for (var i = 0; i < _shards.Length; i++)
        {
            var shard = _shards[i];
            _senders[i] = Task.Run(() => SendLoopAsync(shard.Reader, _stopping.Token), CancellationToken.None);
        }

        return Task.CompletedTask;
    }

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        // Refuse before anything changes state (delta totals): a refused request is handed over again as it was.
        // Concurrent requests may overshoot the limit by one request each.
        if (Interlocked.Read(ref _pending) >= _options.RemoteWriteQueue.QueueSize)
        {
            throw new PipelineRefusedException(RefusalReason.QueueFull,
                $"the remote write queue of exporter '{_id}' is full ({_options.RemoteWriteQueue.QueueSize} samples)", TimeSpan.FromSeconds(2));
        }

        _deltas.Convert(request);
        var result = OtlpToPrometheus.Translate(request, _translation);
        if (result.DroppedPoints > 0)
        {
            GatewayMetrics.ExporterDroppedPoints.WithLabels(_id, "untranslatable").Inc(result.DroppedPoints);
            LogUntranslatable(_logger, _id, result.DroppedPoints, result.DropReason ?? "");
        }

        var count = result.Series.Count;
        Interlocked.Add(ref _pending, count);

        if (count == 0)
        {
            return Task.CompletedTask;
        }

        var done = new Completion(count);
        foreach (var series in result.Series)
        {
            if (!_shards[ShardOf(series)].Writer.TryWrite(new QueuedSeries(series, done)))
            {
                // Stopped: what was not queued is not delivered; the durable queue replays the request.
                Interlocked.Add(ref _pending, -1);
                done.Fail();
            }
        }

        GatewayMetrics.ExporterQueueSize.WithLabels(_id).Set(Pending);
        return done.Task;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var shard in _shards)
        {
            shard.Writer.TryComplete();
        }

        // Flush what is queued while the deadline allows, then stop retrying.
        var all = Task.WhenAll(_senders.Where(t => t is not null));
        try
        {
            await all.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            LogUnflushed(_logger, _id, Pending);
        }
        finally
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await all.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    private int ShardOf(TimeSeries series)
    {
        // FNV-1a over the label pairs: the same series always lands on the same sender.
        var hash = 14695981039346656037UL;
        foreach (var label in series.Labels)
        {
            foreach (var c in label.Name)
            {
                hash = (hash ^ c) * 1099511628211UL;
            }

            hash = (hash ^ 0xFF) * 1099511628211UL;
            foreach (var c in label.Value)
            {
                hash = (hash ^ c) * 1099511628211UL;
            }

            hash = (hash ^ 0xFE) * 1099511628211UL;
        }

        return (int)(hash % (ulong)_shards.Length);
    }

    private async Task SendLoopAsync(ChannelReader<QueuedSeries> reader, CancellationToken stopping)
    {
        var batch = new WriteRequest();
        var waiting = new List<Completion>();
        var maxSamples = _options.RemoteWriteQueue.MaxSamplesPerSend;
        var maxBytes = _options.MaxBatchSizeBytes.Bytes;
        try
        {
            while (await reader.WaitToReadAsync(stopping).ConfigureAwait(false))
            {
                long bytes = 0;
                while (batch.Timeseries.Count < maxSamples && reader.TryPeek(out var next))
                {
                    var size = next.Series.CalculateSize() + 4;
                    if (batch.Timeseries.Count > 0 && bytes + size > maxBytes)
                    {
                        break;
                    }

                    reader.TryRead(out _);
                    batch.Timeseries.Add(next.Series);
                    waiting.Add(next.Done);
                    bytes += size;
                }

                var samples = batch.Timeseries.Count;
                await SendWithRetryAsync(batch, stopping).ConfigureAwait(false);
                Interlocked.Add(ref _pending, -samples);
                GatewayMetrics.ExporterQueueSize.WithLabels(_id).Set(Pending);
                foreach (var done in waiting)
                {
                    done.Signal();
                }

                waiting.Clear();
                batch = new WriteRequest();
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Shutting down past the flush deadline: what is left is counted in LogUnflushed.
        }
    }

    /// <param name="mayBeStored">
    /// An earlier attempt of these samples failed in a way that leaves unknown whether the receiver stored them
    /// (the connection broke after the request went out, a timeout, a 5xx).
    /// </param>
    private async Task SendWithRetryAsync(WriteRequest batch, CancellationToken stopping, bool mayBeStored = false)
    {
        var samples = batch.Timeseries.Count;
        var body = Snappier.Snappy.CompressToArray(batch.ToByteArray());
        var retry = _options.RetryOnFailure;
        var delay = retry.InitialInterval;
        var started = Stopwatch.StartNew();
        for (var attempt = 1; ; attempt++)
        {
            var (outcome, retryAfter, detail) = await SendOnceAsync(body, stopping).ConfigureAwait(false);
            mayBeStored |= outcome == SendOutcome.Retry;
            switch (outcome)
            {
                case SendOutcome.Sent:
                    Interlocked.Add(ref _sent, samples);
                    GatewayMetrics.ExporterSentPoints.WithLabels(_id).Inc(samples);
                    if (attempt > 1)
                    {
                        LogRecovered(_logger, _id, attempt);
                    }

                    return;
                case SendOutcome.Rejected when samples > 1:
                    // Prometheus rolls a whole request back for one out-of-order or bad sample: find it by halves,
                    // in order, so the others (and the per-series order) are kept.
                    LogSplitting(_logger, _id, samples, detail);
                    var half = samples / 2;
                    var first = new WriteRequest();
                    var second = new WriteRequest();
                    for (var i = 0; i < samples; i++)
                    {
                        (i < half ? first : second).Timeseries.Add(batch.Timeseries[i]);
                    }

                    await SendWithRetryAsync(first, stopping, mayBeStored).ConfigureAwait(false);
                    await SendWithRetryAsync(second, stopping, mayBeStored).ConfigureAwait(false);
                    return;
                case SendOutcome.Rejected when mayBeStored && detail.Contains("out of order", StringComparison.OrdinalIgnoreCase):
                    // Its series has a newer sample already, and only this sender writes the series, in order: the
                    // attempt whose answer was lost stored this sample (and later ones). It arrived once; not a loss.
                    Interlocked.Add(ref _sent, samples);
                    GatewayMetrics.ExporterSentPoints.WithLabels(_id).Inc(samples);
                    GatewayMetrics.ExporterResentPoints.WithLabels(_id).Inc(samples);
                    return;
                case SendOutcome.Rejected:
                    Interlocked.Add(ref _dropped, samples);
                    GatewayMetrics.ExporterDroppedPoints.WithLabels(_id, "rejected").Inc(samples);
                    Failed(detail);
                    LogRejected(_logger, _id, samples, detail);
                    return;
            }

            GatewayMetrics.ExporterFailedSends.WithLabels(_id).Inc();
            Interlocked.Add(ref _failed, samples);
            Failed(detail);
            var giveUp = !retry.Enabled || (retry.MaxElapsedTime > TimeSpan.Zero && started.Elapsed >= retry.MaxElapsedTime);
            if (giveUp)
            {
                Interlocked.Add(ref _dropped, samples);
                GatewayMetrics.ExporterDroppedPoints.WithLabels(_id, "retries_exhausted").Inc(samples);
                LogGaveUp(_logger, _id, samples, attempt, detail);
                return;
            }

            if (attempt == 1 || attempt % 20 == 0)
            {
                LogRetrying(_logger, _id, samples, attempt, detail);
            }

            var wait = retryAfter ?? delay;
            wait = TimeSpan.FromMilliseconds(wait.TotalMilliseconds * (0.8 + Random.Shared.NextDouble() * 0.4));
            await Task.Delay(wait, stopping).ConfigureAwait(false);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * retry.Multiplier, retry.MaxInterval.TotalMilliseconds));
        }
    }

    private async Task<(SendOutcome Outcome, TimeSpan? RetryAfter, string Detail)> SendOnceAsync(byte[] body, CancellationToken stopping)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        content.Headers.ContentEncoding.Add("snappy");
        using var request = new HttpRequestMessage(HttpMethod.Post, _options.Endpoint) { Content = content };
        request.Headers.TryAddWithoutValidation("X-Prometheus-Remote-Write-Version", "0.1.0");
        request.Headers.TryAddWithoutValidation("User-Agent", UserAgent);
        foreach (var (name, value) in _options.Headers)
        {
            request.Headers.Remove(name);
            request.Headers.TryAddWithoutValidation(name, value);
        }

        var timer = Stopwatch.StartNew();
        try
        {
            using var response = await _http.SendAsync(request, stopping).ConfigureAwait(false);
            var code = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
            {
                GatewayMetrics.ExporterSendDuration.WithLabels(_id, "sent").Observe(timer.Elapsed.TotalSeconds);
                return (SendOutcome.Sent, null, "");
            }

            var text = await ReadBodyAsync(response, stopping).ConfigureAwait(false);
            var detail = $"HTTP {code} from {_options.Endpoint}: {text}";
            GatewayMetrics.ExporterSendDuration.WithLabels(_id, "failed").Observe(timer.Elapsed.TotalSeconds);
            if (code >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                return (SendOutcome.Retry, RetryAfter(response), detail);
            }

            return (SendOutcome.Rejected, null, detail);
        }
        catch (HttpRequestException ex) when (ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError)
        {
            // No connection: the request never left, so nothing of it can have been stored.
            GatewayMetrics.ExporterSendDuration.WithLabels(_id, "failed").Observe(timer.Elapsed.TotalSeconds);
            return (SendOutcome.NotSent, null, $"cannot reach {_options.Endpoint}: {ex.Message}");
        }
        catch (HttpRequestException ex)
        {
            GatewayMetrics.ExporterSendDuration.WithLabels(_id, "failed").Observe(timer.Elapsed.TotalSeconds);
            return (SendOutcome.Retry, null, $"lost the connection to {_options.Endpoint}: {ex.Message}");
        }
        catch (TaskCanceledException) when (!stopping.IsCancellationRequested)
        {
            GatewayMetrics.ExporterSendDuration.WithLabels(_id, "failed").Observe(timer.Elapsed.TotalSeconds);
            return (SendOutcome.Retry, null, $"{_options.Endpoint} did not answer within {_options.Timeout.TotalSeconds:0}s");
        }
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta)
        {
            return delta;
        }

        if (header?.Date is { } date)
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }

    private static async Task<string> ReadBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        text = text.Trim();
        return text.Length > 300 ? text[..300] + "…" : text;
    }

    private static SocketsHttpHandler CreateHandler(ClientTlsOptions tls)
    {
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectTimeout = TimeSpan.FromSeconds(10),
            AutomaticDecompression = DecompressionMethods.None,
        };
        Shared.Security.TlsClientSetup.Apply(handler.SslOptions, tls.CaFile, tls.CertFile, tls.KeyFile, tls.ServerName, tls.InsecureSkipVerify);
        return handler;
    }

    public void Dispose()
    {
        _http.Dispose();
        _stopping.Dispose();
    }

    /// <summary>One series waiting in a shard, with the request it came from.</summary>
    private readonly record struct QueuedSeries(TimeSeries Series, Completion Done);

    /// <summary>Completes a request's task when the last of its series has been delivered or dropped.</summary>
    private sealed class Completion(int count)
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _remaining = count;

        public Task Task => _done.Task;

        public void Signal()
        {
            if (Interlocked.Decrement(ref _remaining) == 0)
            {
                _done.TrySetResult();
            }
        }

        public void Fail() => _done.TrySetException(new PipelineRefusedException(RefusalReason.ShuttingDown, "the exporter has stopped", TimeSpan.FromSeconds(1)));
    }

    private enum SendOutcome
    {
        Sent,

        /// <summary>Retry; the receiver may have stored the samples (an answer lost, a timeout, a 5xx).</summary>
        Retry,

        /// <summary>Retry; the request never reached the receiver.</summary>
        NotSent,
        Rejected,
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "Exporter {Exporter} could not send {Samples} samples (attempt {Attempt}) and will retry: {Detail}")]
    private static partial void LogRetrying(ILogger logger, string exporter, int samples, int attempt, string detail);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "Exporter {Exporter} is sending again after {Attempt} attempts.")]
    private static partial void LogRecovered(ILogger logger, string exporter, int attempt);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Error, Message = "Exporter {Exporter} dropped {Samples} samples the receiver rejected: {Detail}")]
    private static partial void LogRejected(ILogger logger, string exporter, int samples, string detail);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Error, Message = "Exporter {Exporter} gave up on {Samples} samples after {Attempt} attempts: {Detail}")]
    private static partial void LogGaveUp(ILogger logger, string exporter, int samples, int attempt, string detail);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Warning, Message = "Exporter {Exporter} dropped {Points} data points it cannot express in Prometheus: {Reason}")]
    private static partial void LogUntranslatable(ILogger logger, string exporter, int points, string reason);

    [LoggerMessage(EventId = 1107, Level = LogLevel.Debug, Message = "Exporter {Exporter}: the receiver rejected a batch of {Samples} samples ({Detail}); resending it in halves to isolate the bad ones.")]
    private static partial void LogSplitting(ILogger logger, string exporter, int samples, string detail);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Warning, Message = "Exporter {Exporter} stopped with {Samples} samples still unsent; they stay in the durable queue and are sent after the next start.")]
    private static partial void LogUnflushed(ILogger logger, string exporter, long samples);
}

using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Pipeline;
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
/// The hot path allocates nothing per sample: translation writes protobuf bytes straight into one pooled buffer per
/// request (<see cref="RemoteWriteSeriesEncoder"/>), each shard queues one entry per request, and a batch is framed
/// and snappy-compressed in pooled buffers.
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
    private readonly (string Name, string Value)[] _externalLabels;
    private readonly Channel<ShardChunk>[] _shards;
    private readonly Task[] _senders;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Prometheus.Gauge.Child _queueSize;
    private readonly Prometheus.Counter.Child _sentPoints;
    private readonly Prometheus.Histogram.Child _sendDurationSent;
    private int _lastRequestSeries = 1024;
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
        _externalLabels = [.. options.ExternalLabels.Select(kv => (kv.Key, kv.Value))];
        _shards = new Channel<ShardChunk>[options.RemoteWriteQueue.NumConsumers];
        _senders = new Task[_shards.Length];
        for (var i = 0; i < _shards.Length; i++)
        {
            _shards[i] = Channel.CreateUnbounded<ShardChunk>(new UnboundedChannelOptions { SingleReader = true });
        }

        GatewayMetrics.ExporterQueueCapacity.WithLabels(_id).Set(options.RemoteWriteQueue.QueueSize);
        _queueSize = GatewayMetrics.ExporterQueueSize.WithLabels(_id);
        _sentPoints = GatewayMetrics.ExporterSentPoints.WithLabels(_id);
        _sendDurationSent = GatewayMetrics.ExporterSendDuration.WithLabels(_id, "sent");
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
        var encoder = new RemoteWriteSeriesEncoder(_externalLabels, _lastRequestSeries);
        var (droppedPoints, dropReason) = OtlpToPrometheus.Translate(request, _translation, encoder);
        if (droppedPoints > 0)
        {
            GatewayMetrics.ExporterDroppedPoints.WithLabels(_id, "untranslatable").Inc(droppedPoints);
            LogUntranslatable(_logger, _id, droppedPoints, dropReason ?? "");
        }

        var count = encoder.Count;
        if (count == 0)
        {
            encoder.Abandon();
            return Task.CompletedTask;
        }

        _lastRequestSeries = count;
        Interlocked.Add(ref _pending, count);
        var encoded = encoder.Finish(_shards.Length);
        for (var i = 0; i < _shards.Length; i++)
        {
            var (start, end) = encoded.Shard(i);
            if (end > start && !_shards[i].Writer.TryWrite(new ShardChunk(encoded, start, end)))
            {
                // Stopped: what was not queued is not delivered; the durable queue replays the request.
                Interlocked.Add(ref _pending, start - end);
                encoded.Fail();
            }
        }

        _queueSize.Set(Pending);
        return encoded.Task;
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

    private async Task SendLoopAsync(ChannelReader<ShardChunk> reader, CancellationToken stopping)
    {
        var batch = new List<BatchItem>();
        var maxSamples = _options.RemoteWriteQueue.MaxSamplesPerSend;
        var maxBytes = _options.MaxBatchSizeBytes.Bytes;
        ShardChunk current = default;
        var position = 0;
        var holding = false;
        try
        {
            while (holding || await reader.WaitToReadAsync(stopping).ConfigureAwait(false))
            {
                long bytes = 0;
                while (batch.Count < maxSamples)
                {
                    if (!holding)
                    {
                        if (!reader.TryRead(out current))
                        {
                            break;
                        }

                        position = current.Start;
                        holding = true;
                    }

                    var size = current.Request.Length(position) + 6;
                    if (batch.Count > 0 && bytes + size > maxBytes)
                    {
                        break;
                    }

                    batch.Add(new BatchItem(current.Request, position));
                    bytes += size;
                    if (++position == current.End)
                    {
                        holding = false;
                        current = default;
                    }
                }

                var samples = batch.Count;
                if (samples == 0)
                {
                    continue;
                }

                await SendWithRetryAsync(batch, 0, samples, stopping).ConfigureAwait(false);
                Interlocked.Add(ref _pending, -samples);
                _queueSize.Set(Pending);

                // Signal each request once per run of its series in the batch.
                var run = 1;
                for (var i = 1; i <= samples; i++)
                {
                    if (i < samples && ReferenceEquals(batch[i].Request, batch[i - 1].Request))
                    {
                        run++;
                        continue;
                    }

                    batch[i - 1].Request.Signal(run);
                    run = 1;
                }

                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Shutting down past the flush deadline: what is left is counted in LogUnflushed.
        }
    }

    /// <summary>
    /// Frames series [start, start+count) of the batch as a WriteRequest and snappy-compresses it into a buffer
    /// rented from <see cref="BufferPools.Bytes"/> (the caller returns it).
    /// </summary>
    internal static (byte[] Body, int Length) Encode(List<BatchItem> batch, int start, int count)
    {
        var size = 0;
        for (var i = start; i < start + count; i++)
        {
            var length = batch[i].Request.Length(batch[i].Index);
            size += 1 + RemoteWriteSeriesEncoder.VarintSize((uint)length) + length;
        }

        var raw = BufferPools.Bytes.Rent(Math.Max(1, size));
        try
        {
            var span = raw.AsSpan(0, size);
            var pos = 0;
            for (var i = start; i < start + count; i++)
            {
                var series = batch[i].Request.Series(batch[i].Index);
                span[pos++] = 0x0A; // WriteRequest.timeseries (1), length-delimited
                pos += RemoteWriteSeriesEncoder.WriteVarint(span[pos..], (uint)series.Length);
                series.CopyTo(span[pos..]);
                pos += series.Length;
            }

            var body = BufferPools.Bytes.Rent(Snappier.Snappy.GetMaxCompressedLength(size));
            try
            {
                return (body, Snappier.Snappy.Compress(span, body));
            }
            catch
            {
                BufferPools.Bytes.Return(body);
                throw;
            }
        }
        finally
        {
            BufferPools.Bytes.Return(raw);
        }
    }

    /// <param name="mayBeStored">
    /// An earlier attempt of these samples failed in a way that leaves unknown whether the receiver stored them
    /// (the connection broke after the request went out, a timeout, a 5xx).
    /// </param>
    private async Task SendWithRetryAsync(List<BatchItem> batch, int start, int samples, CancellationToken stopping, bool mayBeStored = false)
    {
        var (body, length) = Encode(batch, start, samples);
        try
        {
            var retry = _options.RetryOnFailure;
            var delay = retry.InitialInterval;
            var started = Stopwatch.StartNew();
            for (var attempt = 1; ; attempt++)
            {
                var (outcome, retryAfter, detail) = await SendOnceAsync(body, length, stopping).ConfigureAwait(false);
                mayBeStored |= outcome == SendOutcome.Retry;
                switch (outcome)
                {
                    case SendOutcome.Sent:
                        Interlocked.Add(ref _sent, samples);
                        _sentPoints.Inc(samples);
                        if (attempt > 1)
                        {
                            LogRecovered(_logger, _id, attempt);
                        }

                        return;
                    case SendOutcome.Rejected when samples > 1:
                        // Prometheus rolls a whole request back for one out-of-order or bad sample: find it by halves,
                        // in order, so the others (and the per-series order) are kept.
                        LogSplitting(_logger, _id, samples, detail);
                        BufferPools.Bytes.Return(body);
                        body = [];
                        var half = samples / 2;
                        await SendWithRetryAsync(batch, start, half, stopping, mayBeStored).ConfigureAwait(false);
                        await SendWithRetryAsync(batch, start + half, samples - half, stopping, mayBeStored).ConfigureAwait(false);
                        return;
                    case SendOutcome.Rejected when mayBeStored && detail.Contains("out of order", StringComparison.OrdinalIgnoreCase):
                        // Its series has a newer sample already, and only this sender writes the series, in order: the
                        // attempt whose answer was lost stored this sample (and later ones). It arrived once; not a loss.
                        Interlocked.Add(ref _sent, samples);
                        _sentPoints.Inc(samples);
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
        finally
        {
            if (body.Length > 0)
            {
                BufferPools.Bytes.Return(body);
            }
        }
    }

    private async Task<(SendOutcome Outcome, TimeSpan? RetryAfter, string Detail)> SendOnceAsync(byte[] body, int length, CancellationToken stopping)
    {
        using var content = new ByteArrayContent(body, 0, length);
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
                _sendDurationSent.Observe(timer.Elapsed.TotalSeconds);
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

    /// <summary>A request's series for one shard: [Start, End) of its shard-grouped series.</summary>
    private readonly record struct ShardChunk(EncodedRequest Request, int Start, int End);

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

using System.Buffers;
using System.Threading.Channels;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Compression;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Shared.Compression;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Agent.Export;

/// <summary>
/// Sends metrics to the gateway over OTLP/gRPC, compressed with zstd or gzip. Batches wait in a bounded queue
/// and go out in order; failures are retried by the OTLP rules with exponential backoff (the server's RetryInfo
/// wins), partial success is logged and not retried, and when the queue is full the oldest batch is dropped and
/// counted, so a long gateway outage costs the oldest data, never the agent's memory.
/// </summary>
internal sealed partial class OtlpExporter : IMetricsConsumer, IPipelineComponent, IDisposable
{
    /// <summary>
    /// MetricsService/Export with the request written by <see cref="OtlpRequestEncoder"/> instead of Google.Protobuf:
    /// the same bytes, each nested message's size computed once instead of once per level above it.
    /// </summary>
    internal static readonly Method<ExportMetricsServiceRequest, ExportMetricsServiceResponse> ExportMethod = CreateExportMethod(SerializeRequest);

    /// <summary>
    /// <see cref="ExportMethod"/> whose marshaller also compresses with zstd (<see cref="PrecompressedZstd"/>), for a
    /// channel that has <see cref="PrecompressedZstdProvider"/> as its zstd provider.
    /// </summary>
    internal static readonly Method<ExportMetricsServiceRequest, ExportMetricsServiceResponse> ZstdExportMethod = CreateExportMethod(SerializeRequestZstd);

    private readonly string _id;
    private readonly OtlpExporterOptions _options;
    private readonly ILogger _logger;
    private readonly GrpcChannel _channel;
    private readonly CallInvoker _invoker;
    private readonly Method<ExportMetricsServiceRequest, ExportMetricsServiceResponse> _exportMethod;
    private readonly Channel<ExportMetricsServiceRequest> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Metadata _headers = [];
    private readonly string _spoolName;
    private DiskSpool? _spool;
    private Task? _sender;
    private bool _retired;

    /// <summary>The batch being sent without a spool: handed back by <see cref="RetireAsync"/> if never delivered.</summary>
    private ExportMetricsServiceRequest? _holding;

    /// <param name="spoolName">The spool's folder under <c>storage_dir</c>; default the exporter id.</param>
    public OtlpExporter(string id, OtlpExporterOptions options, ILogger<OtlpExporter> logger, string? spoolName = null)
    {
        _id = id;
        _spoolName = spoolName ?? id;
        _options = options;
        _logger = logger;
        var address = options.Endpoint.Contains("://", StringComparison.Ordinal)
            ? options.Endpoint
            : (options.Tls.Insecure ? "http://" : "https://") + options.Endpoint;
        // zstd is applied by the request marshaller itself; the channel's zstd provider then passes requests through.
        var zstd = options.Compression == OtlpCompression.Zstd;
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, KeepAlivePingDelay = TimeSpan.FromSeconds(30) };
        Shared.Security.TlsClientSetup.Apply(handler.SslOptions, options.Tls.CaFile, options.Tls.CertFile, options.Tls.KeyFile, options.Tls.ServerName, options.Tls.InsecureSkipVerify);
        _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            CompressionProviders = [new GzipCompressionProvider(System.IO.Compression.CompressionLevel.Fastest), zstd ? new PrecompressedZstdProvider() : new ZstdGrpcCompressionProvider()],
            MaxSendMessageSize = 64 << 20,
        });
        _exportMethod = zstd ? ZstdExportMethod : ExportMethod;
        _invoker = _channel.CreateCallInvoker();
        foreach (var (key, value) in options.Headers)
        {
            _headers.Add(key.ToLowerInvariant(), value);
        }

        if (options.Compression != OtlpCompression.None)
        {
            _headers.Add("grpc-internal-encoding-request", options.Compression == OtlpCompression.Zstd ? "zstd" : "gzip");
        }

        _queue = Channel.CreateBounded<ExportMetricsServiceRequest>(new BoundedChannelOptions(options.SendingQueue.QueueSize)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        }, dropped =>
        {
            AgentMetrics.DroppedPoints.WithLabels(_id, "queue_full").Inc(MetricsCounting.DataPoints(dropped));
            LogDroppedOldest(_logger, _id, MetricsCounting.DataPoints(dropped));
        });
    }

    /// <summary>The disk spool, when <c>sending_queue.storage_dir</c> is set (for tests and status).</summary>
    internal DiskSpool? Spool => _spool;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_options.SendingQueue is { Enabled: true, StorageDir.Length: > 0 } queue)
        {
            // One directory per exporter, so several exporters (or endpoints) never share files.
            _spool = new DiskSpool(SpoolDirectory(queue.StorageDir, _spoolName), queue.MaxSize.Bytes, _id, _logger);
        }

        _sender = Task.Run(() => SendLoopAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>The spool folder of <paramref name="name"/> under <paramref name="storageDir"/> (unsafe characters replaced).</summary>
    internal static string SpoolDirectory(string storageDir, string name) => Path.Combine(storageDir, SpoolDirectoryName(name));

    private static string SpoolDirectoryName(string id)
    {
        var chars = id.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!char.IsAsciiLetterOrDigit(chars[i]) && chars[i] is not ('-' or '_' or '.'))
            {
                chars[i] = '_';
            }
        }

        return new string(chars);
    }

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        TryEnqueue(request);
        return Task.CompletedTask;
    }

    /// <summary>Queues a batch; false once the exporter is stopping or retired (the batch is not taken).</summary>
    internal bool TryEnqueue(ExportMetricsServiceRequest request) => _queue.Writer.TryWrite(request);

    /// <summary>
    /// Stops sending and hands back every batch not known to be delivered, oldest first: spooled, in hand, queued.
    /// The load-balancing exporter gives them to the live gateways when this one has left the ring. A batch whose
    /// answer was lost may be handed back although it arrived; dedupe (or Prometheus, for an identical sample)
    /// absorbs that copy.
    /// </summary>
    internal async Task<List<ExportMetricsServiceRequest>> RetireAsync()
    {
        _queue.Writer.TryComplete();
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_sender is not null)
        {
            try
            {
                await _sender.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or TimeoutException or RpcException)
            {
                // The loop persists or keeps what it holds when cancelled; what it holds is collected below.
            }
        }

        _retired = true;
        var batches = _spool?.TakeAll() ?? [];

        if (Interlocked.Exchange(ref _holding, null) is { } held)
        {
            batches.Add(held);
        }

        while (_queue.Reader.TryRead(out var queued))
        {
            batches.Add(queued);
        }

        return batches;
    }

    /// <summary>Sends one request with the retry policy; returns when it was delivered or given up.</summary>
    public async Task<bool> ExportAsync(ExportMetricsServiceRequest request, CancellationToken stopping) =>
        await ExportWithRetryAsync(request, spill: false, stopping).ConfigureAwait(false) == Outcome.Delivered;

    private enum Outcome
    {
        Delivered,
        Dropped,
        Retry,
        Spill,
    }

    /// <summary>
    /// Sends with retries in memory. With a spool (<paramref name="spill"/>), UNAVAILABLE (the gateway is away) and
    /// exhausted retries hand the batch to the spool instead of dropping it.
    /// </summary>
    private async Task<Outcome> ExportWithRetryAsync(ExportMetricsServiceRequest request, bool spill, CancellationToken stopping)
    {
        var delay = _options.RetryOnFailure.InitialInterval;
        var started = DateTime.UtcNow;
        for (var attempt = 1; ; attempt++)
        {
            var (outcome, wait, error) = await SendOnceAsync(request, stopping).ConfigureAwait(false);
            if (outcome != Outcome.Retry)
            {
                return outcome;
            }

            if (spill && (error!.StatusCode == StatusCode.Unavailable || !_options.RetryOnFailure.Enabled))
            {
                return Outcome.Spill;
            }

            var points = MetricsCounting.DataPoints(request);
            var elapsed = DateTime.UtcNow - started;
            if (!_options.RetryOnFailure.Enabled || (_options.RetryOnFailure.MaxElapsedTime > TimeSpan.Zero && elapsed > _options.RetryOnFailure.MaxElapsedTime))
            {
                if (spill)
                {
                    return Outcome.Spill;
                }

                AgentMetrics.DroppedPoints.WithLabels(_id, "retries_exhausted").Inc(points);
                LogDropped(_logger, _id, points, error!.StatusCode.ToString(), error.Status.Detail);
                return Outcome.Dropped;
            }

            wait ??= Jitter(delay);
            if (attempt == 1 || attempt % 10 == 0)
            {
                LogRetrying(_logger, _id, points, attempt, error!.StatusCode.ToString(), error.Status.Detail, wait.Value.TotalSeconds);
            }

            await Task.Delay(wait.Value, stopping).ConfigureAwait(false);
            delay = NextDelay(delay);
        }
    }

    private TimeSpan NextDelay(TimeSpan delay) =>
        TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * _options.RetryOnFailure.Multiplier, _options.RetryOnFailure.MaxInterval.TotalMilliseconds));

    /// <summary>One export call: delivered, dropped (not retryable), or retry (with the server's RetryInfo delay when it sent one).</summary>
    private async Task<(Outcome Outcome, TimeSpan? Wait, RpcException? Error)> SendOnceAsync(ExportMetricsServiceRequest request, CancellationToken stopping)
    {
        var points = MetricsCounting.DataPoints(request);
        try
        {
            var options = new CallOptions(_headers, DateTime.UtcNow + _options.Timeout, stopping);
            var response = await _invoker.AsyncUnaryCall(_exportMethod, null, options, request).ResponseAsync.ConfigureAwait(false);
            if (response.PartialSuccess is { RejectedDataPoints: > 0 } partial)
            {
                // Rejected points are not retried: the server said they are bad, not that it was busy.
                AgentMetrics.DroppedPoints.WithLabels(_id, "rejected").Inc(partial.RejectedDataPoints);
                LogPartialSuccess(_logger, _id, partial.RejectedDataPoints, partial.ErrorMessage);
            }

            AgentMetrics.ExportedPoints.WithLabels(_id).Inc(points - (response.PartialSuccess?.RejectedDataPoints ?? 0));
            return (Outcome.Delivered, null, null);
        }
        catch (RpcException ex) when (!stopping.IsCancellationRequested)
        {
            var retryable = OtlpRetryPolicy.IsRetryable(ex);
            AgentMetrics.ExportFailures.WithLabels(_id, retryable ? "true" : "false").Inc();
            if (!retryable)
            {
                AgentMetrics.DroppedPoints.WithLabels(_id, "not_retryable").Inc(points);
                LogDropped(_logger, _id, points, ex.StatusCode.ToString(), ex.Status.Detail);
                return (Outcome.Dropped, null, ex);
            }

            return (Outcome.Retry, OtlpRetryPolicy.RetryDelay(ex), ex);
        }
    }

    /// <summary>
    /// Writes the request once into pooled bytes and hands them to gRPC (which compresses and frames them); the buffer
    /// goes back to the pool before this returns, so a cancelled call never holds it.
    /// </summary>
    internal static void SerializeRequest(ExportMetricsServiceRequest request, SerializationContext context)
    {
        using var encoded = OtlpRequestEncoder.Encode(request);
        context.SetPayloadLength(encoded.Length);
        context.GetBufferWriter().Write(encoded.Span);
        context.Complete();
    }

    /// <summary>
    /// Writes the request once into pooled bytes and compresses them with zstd into pooled bytes; gRPC gets only the
    /// compressed message, which the channel's <see cref="PrecompressedZstdProvider"/> sends as it is.
    /// </summary>
    internal static void SerializeRequestZstd(ExportMetricsServiceRequest request, SerializationContext context)
    {
        using var encoded = OtlpRequestEncoder.Encode(request);
        using var compressed = PrecompressedZstd.Compress(encoded.Span);
        context.SetPayloadLength(compressed.Length);
        context.GetBufferWriter().Write(compressed.Span);
        context.Complete();
    }

    private static Method<ExportMetricsServiceRequest, ExportMetricsServiceResponse> CreateExportMethod(Action<ExportMetricsServiceRequest, SerializationContext> serializer) => new(
        MethodType.Unary,
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
        "Export",
        Marshallers.Create(serializer, static context => ExportMetricsServiceRequest.Parser.ParseFrom(context.PayloadAsReadOnlySequence())),
        Marshallers.Create(static (ExportMetricsServiceResponse response, SerializationContext context) => context.Complete(response.ToByteArray()), static context => ExportMetricsServiceResponse.Parser.ParseFrom(context.PayloadAsReadOnlySequence())));

    private static TimeSpan Jitter(TimeSpan delay) => TimeSpan.FromMilliseconds(delay.TotalMilliseconds * (0.8 + Random.Shared.NextDouble() * 0.4));

    private async Task SendLoopAsync(CancellationToken stopping)
    {
        if (_spool is not null)
        {
            await SpoolingSendLoopAsync(_spool, stopping).ConfigureAwait(false);
            return;
        }

        try
        {
            await foreach (var request in _queue.Reader.ReadAllAsync(stopping).ConfigureAwait(false))
            {
                Volatile.Write(ref _holding, request);
                await ExportAsync(request, stopping).ConfigureAwait(false);
                Volatile.Write(ref _holding, null);
            }
        }
        catch (Exception ex) when (stopping.IsCancellationRequested && ex is OperationCanceledException or RpcException)
        {
        }
    }

    /// <summary>
    /// With a spool, order is kept across an outage: while anything waits on disk, new batches are appended behind
    /// it and the oldest spooled batch is sent first; only with an empty spool do batches go straight out.
    /// </summary>
    private async Task SpoolingSendLoopAsync(DiskSpool spool, CancellationToken stopping)
    {
        ExportMetricsServiceRequest? inFlight = null;
        var delay = _options.RetryOnFailure.InitialInterval;
        var wasDraining = false;
        try
        {
            while (true)
            {
                if (spool.Count > 0)
                {
                    MoveQueuedToSpool(spool);
                    if (!spool.TryPeekOldest(out var sequence, out var oldest, out _))
                    {
                        continue;
                    }

                    if (!wasDraining)
                    {
                        wasDraining = true;
                        LogSpooling(_logger, _id, spool.Count);
                    }

                    var (outcome, wait, _) = await SendOnceAsync(oldest, stopping).ConfigureAwait(false);
                    if (outcome != Outcome.Retry)
                    {
                        spool.Remove(sequence);
                        if (outcome == Outcome.Delivered)
                        {
                            AgentMetrics.SpoolDrainedBatches.WithLabels(_id).Inc();
                        }

                        delay = _options.RetryOnFailure.InitialInterval;
                        if (spool.Count == 0)
                        {
                            wasDraining = false;
                            LogSpoolDrained(_logger, _id);
                        }

                        continue;
                    }

                    if (_queue.Reader.Completion.IsCompleted)
                    {
                        // Shutting down with the gateway away: everything is on disk for the next start.
                        return;
                    }

                    // While waiting, new batches go to disk behind the others, so an agent crash loses nothing.
                    await WaitSpoolingAsync(spool, wait ?? Jitter(delay), stopping).ConfigureAwait(false);
                    delay = NextDelay(delay);
                    continue;
                }

                if (!await _queue.Reader.WaitToReadAsync(stopping).ConfigureAwait(false))
                {
                    return;
                }

                if (!_queue.Reader.TryRead(out inFlight))
                {
                    continue;
                }

                if (await ExportWithRetryAsync(inFlight, spill: true, stopping).ConfigureAwait(false) == Outcome.Spill)
                {
                    SpoolBatch(spool, inFlight);
                }

                inFlight = null;
            }
        }
        catch (Exception ex) when (stopping.IsCancellationRequested && ex is OperationCanceledException or RpcException)
        {
            // Stopped before the gateway took them: keep the batch in hand and the queued ones for the next start.
            if (inFlight is not null)
            {
                SpoolBatch(spool, inFlight);
            }

            MoveQueuedToSpool(spool);
        }
    }

    private void MoveQueuedToSpool(DiskSpool spool)
    {
        while (_queue.Reader.TryRead(out var queued))
        {
            SpoolBatch(spool, queued);
        }
    }

    private void SpoolBatch(DiskSpool spool, ExportMetricsServiceRequest request)
    {
        try
        {
            spool.Append(request);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var points = MetricsCounting.DataPoints(request);
            AgentMetrics.DroppedPoints.WithLabels(_id, "spool_error").Inc(points);
            LogSpoolWriteFailed(_logger, _id, points, ex.Message);
        }
    }

    private async Task WaitSpoolingAsync(DiskSpool spool, TimeSpan wait, CancellationToken stopping)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timer.CancelAfter(wait);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(timer.Token).ConfigureAwait(false))
            {
                MoveQueuedToSpool(spool);
            }

            // The writer completed (shutdown): stop waiting.
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        if (_sender is not null)
        {
            try
            {
                await _sender.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                await _stopping.CancelAsync().ConfigureAwait(false);
                if (_spool is not null)
                {
                    // The sender persists what it holds when cancelled; give it a moment to write.
                    await _sender.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        try
        {
            _sender?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The sender's failure was logged where it happened.
        }

        _stopping.Dispose();
        _spool?.Dispose();
        if (_retired && _spool is { Count: 0 })
        {
            // Drained by RetireAsync: the folder of a gateway that left the ring is not kept.
            try
            {
                Directory.Delete(_spool.Folder, recursive: true);
            }
            catch (IOException)
            {
                // Left for the next start, which routes whatever a folder holds.
            }
        }

        _channel.Dispose();
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Exporter {Exporter}: {Points} points not sent yet (attempt {Attempt}, {Code}: {Detail}); retrying in {Seconds:0.0} s.")]
    private static partial void LogRetrying(ILogger logger, string exporter, int points, int attempt, string code, string detail, double seconds);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Error, Message = "Exporter {Exporter} dropped {Points} points ({Code}: {Detail}).")]
    private static partial void LogDropped(ILogger logger, string exporter, int points, string code, string detail);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Exporter {Exporter}: the gateway rejected {Points} points and will not take them again: {Message}")]
    private static partial void LogPartialSuccess(ILogger logger, string exporter, long points, string message);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Warning, Message = "Exporter {Exporter}: the gateway is away; batches go to the disk spool ({Batches} waiting) and are sent in order when it is back.")]
    private static partial void LogSpooling(ILogger logger, string exporter, int batches);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Information, Message = "Exporter {Exporter}: the disk spool is drained; batches go straight to the gateway again.")]
    private static partial void LogSpoolDrained(ILogger logger, string exporter);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Error, Message = "Exporter {Exporter}: {Points} points could not be written to the disk spool and are dropped: {Reason}")]
    private static partial void LogSpoolWriteFailed(ILogger logger, string exporter, int points, string reason);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Error, Message = "Exporter {Exporter}: the sending queue is full; the oldest batch ({Points} points) was dropped.")]
    private static partial void LogDroppedOldest(ILogger logger, string exporter, int points);
}

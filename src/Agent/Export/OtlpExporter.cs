using System.Threading.Channels;
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
    private readonly string _id;
    private readonly OtlpExporterOptions _options;
    private readonly ILogger _logger;
    private readonly GrpcChannel _channel;
    private readonly MetricsService.MetricsServiceClient _client;
    private readonly Channel<ExportMetricsServiceRequest> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Metadata _headers = [];
    private Task? _sender;

    public OtlpExporter(string id, OtlpExporterOptions options, ILogger<OtlpExporter> logger)
    {
        _id = id;
        _options = options;
        _logger = logger;
        var address = options.Endpoint.Contains("://", StringComparison.Ordinal)
            ? options.Endpoint
            : (options.Tls.Insecure ? "http://" : "https://") + options.Endpoint;
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, KeepAlivePingDelay = TimeSpan.FromSeconds(30) };
        Shared.Security.TlsClientSetup.Apply(handler.SslOptions, options.Tls.CaFile, options.Tls.CertFile, options.Tls.KeyFile, options.Tls.ServerName, options.Tls.InsecureSkipVerify);
        _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            CompressionProviders = [new GzipCompressionProvider(System.IO.Compression.CompressionLevel.Fastest), new ZstdGrpcCompressionProvider()],
            MaxSendMessageSize = 64 << 20,
        });
        _client = new MetricsService.MetricsServiceClient(_channel);
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

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _sender = Task.Run(() => SendLoopAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        _queue.Writer.TryWrite(request);
        return Task.CompletedTask;
    }

    /// <summary>Sends one request with the retry policy; returns when it was delivered or given up.</summary>
    public async Task<bool> ExportAsync(ExportMetricsServiceRequest request, CancellationToken stopping)
    {
        var points = MetricsCounting.DataPoints(request);
        var delay = _options.RetryOnFailure.InitialInterval;
        var started = DateTime.UtcNow;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var response = await _client.ExportAsync(request, _headers, DateTime.UtcNow + _options.Timeout, stopping).ResponseAsync.ConfigureAwait(false);
                if (response.PartialSuccess is { RejectedDataPoints: > 0 } partial)
                {
                    // Rejected points are not retried: the server said they are bad, not that it was busy.
                    AgentMetrics.DroppedPoints.WithLabels(_id, "rejected").Inc(partial.RejectedDataPoints);
                    LogPartialSuccess(_logger, _id, partial.RejectedDataPoints, partial.ErrorMessage);
                }

                AgentMetrics.ExportedPoints.WithLabels(_id).Inc(points - (response.PartialSuccess?.RejectedDataPoints ?? 0));
                return true;
            }
            catch (RpcException ex) when (!stopping.IsCancellationRequested)
            {
                var retryable = _options.RetryOnFailure.Enabled && OtlpRetryPolicy.IsRetryable(ex);
                AgentMetrics.ExportFailures.WithLabels(_id, retryable ? "true" : "false").Inc();
                var elapsed = DateTime.UtcNow - started;
                if (!retryable || (_options.RetryOnFailure.MaxElapsedTime > TimeSpan.Zero && elapsed > _options.RetryOnFailure.MaxElapsedTime))
                {
                    AgentMetrics.DroppedPoints.WithLabels(_id, retryable ? "retries_exhausted" : "not_retryable").Inc(points);
                    LogDropped(_logger, _id, points, ex.StatusCode.ToString(), ex.Status.Detail);
                    return false;
                }

                var wait = OtlpRetryPolicy.RetryDelay(ex) ?? Jitter(delay);
                if (attempt == 1 || attempt % 10 == 0)
                {
                    LogRetrying(_logger, _id, points, attempt, ex.StatusCode.ToString(), ex.Status.Detail, wait.TotalSeconds);
                }

                await Task.Delay(wait, stopping).ConfigureAwait(false);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * _options.RetryOnFailure.Multiplier, _options.RetryOnFailure.MaxInterval.TotalMilliseconds));
            }
        }
    }

    private static TimeSpan Jitter(TimeSpan delay) => TimeSpan.FromMilliseconds(delay.TotalMilliseconds * (0.8 + Random.Shared.NextDouble() * 0.4));

    private async Task SendLoopAsync(CancellationToken stopping)
    {
        try
        {
            await foreach (var request in _queue.Reader.ReadAllAsync(stopping).ConfigureAwait(false))
            {
                await ExportAsync(request, stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
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
            }
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _stopping.Dispose();
        _channel.Dispose();
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Exporter {Exporter}: {Points} points not sent yet (attempt {Attempt}, {Code}: {Detail}); retrying in {Seconds:0.0} s.")]
    private static partial void LogRetrying(ILogger logger, string exporter, int points, int attempt, string code, string detail, double seconds);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Error, Message = "Exporter {Exporter} dropped {Points} points ({Code}: {Detail}).")]
    private static partial void LogDropped(ILogger logger, string exporter, int points, string code, string detail);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Exporter {Exporter}: the gateway rejected {Points} points and will not take them again: {Message}")]
    private static partial void LogPartialSuccess(ILogger logger, string exporter, long points, string message);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Error, Message = "Exporter {Exporter}: the sending queue is full; the oldest batch ({Points} points) was dropped.")]
    private static partial void LogDroppedOldest(ILogger logger, string exporter, int points);
}

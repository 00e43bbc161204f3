using Google.Protobuf;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Gateway.Queue;

/// <summary>
/// The durable queue of one pipeline, between its processors and its exporters. <see cref="ConsumeAsync"/>
/// appends the request to the on-disk log and completes once it is durable (so the receiver acknowledges only
/// then); one <see cref="QueueReader"/> per exporter replays the log to that exporter from its own persisted
/// cursor. A maintenance loop writes the cursors, deletes segments every exporter has passed, and updates the
/// queue's self-metrics.
/// </summary>
internal sealed partial class DurableQueue : IMetricsConsumer, IPipelineComponent, IDisposable
{
    private readonly string _pipeline;
    private readonly QueueOptions _options;
    private readonly IReadOnlyList<(string Id, IMetricsConsumer Exporter)> _exporters;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private QueueReader[] _readers = [];
    private readonly CancellationTokenSource _stopping = new();
    private Task? _maintenance;
    private volatile bool _open;
    private long _lastFullLog;

    public DurableQueue(string pipeline, string directory, QueueOptions options, IReadOnlyList<(string Id, IMetricsConsumer Exporter)> exporters, ILoggerFactory loggerFactory, TimeProvider? time = null)
    {
        _pipeline = pipeline;
        _options = options;
        _exporters = exporters;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<DurableQueue>();
        _time = time ?? TimeProvider.System;
        Log = new DurableLog(pipeline, directory, options, loggerFactory.CreateLogger<DurableLog>(), _time);
    }

    /// <summary>The pipeline this queue belongs to.</summary>
    public string Pipeline => _pipeline;

    /// <summary>The log on disk.</summary>
    public DurableLog Log { get; }

    /// <summary>One reader per exporter (after start).</summary>
    public IReadOnlyList<QueueReader> Readers => Volatile.Read(ref _readers);

    /// <summary>Opens the log (lock, torn-tail recovery) and starts replaying it to each exporter from its cursor.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        Log.Open();
        GatewayMetrics.QueueCapacityBytes.WithLabels(_pipeline).Set(_options.MaxSize.Bytes);
        var readers = new List<QueueReader>();
        foreach (var (id, exporter) in _exporters)
        {
            var start = Log.LoadCursor(id);
            Log.SaveCursor(id, start);
            var reader = new QueueReader(_pipeline, id, exporter, Log, start, _options.MaxInFlight.Bytes, _logger, _time);
            if (reader.DepthRecords > 0)
            {
                LogReplaying(_logger, _pipeline, id, reader.DepthRecords, reader.DepthBytes);
            }

            readers.Add(reader);
        }

        Volatile.Write(ref _readers, [.. readers]);
        foreach (var reader in readers)
        {
            reader.Start();
        }

        _open = true;
        _maintenance = Task.Run(MaintainAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        if (request.ResourceMetrics.Count == 0)
        {
            return Task.CompletedTask;
        }

        if (!_open)
        {
            throw new PipelineRefusedException(RefusalReason.ShuttingDown, "the durable queue is not open", TimeSpan.FromSeconds(1));
        }

        try
        {
            // Encoded into a pooled buffer (a batched request is easily over the large-object threshold); the log
            // copies it into its write buffer and returns it.
            var size = request.CalculateSize();
            var payload = BufferPools.Bytes.Rent(Math.Max(1, size));
            try
            {
                request.WriteTo(payload.AsSpan(0, size));
            }
            catch
            {
                BufferPools.Bytes.Return(payload);
                throw;
            }

            // The request itself goes along: an exporter that reads the record right away takes it instead of decoding.
            return Log.AppendAsync(payload, size, pooled: true, decoded: request);
        }
        catch (PipelineRefusedException ex) when (ex.Reason == RefusalReason.QueueFull)
        {
            GatewayMetrics.QueueRefusedRequests.WithLabels(_pipeline).Inc();
            GatewayMetrics.QueueRefusedPoints.WithLabels(_pipeline).Inc(MetricsCounting.DataPoints(request));
            var now = Environment.TickCount64;
            var last = Interlocked.Read(ref _lastFullLog);
            if ((last == 0 || now - last > 10_000) && Interlocked.CompareExchange(ref _lastFullLog, now, last) == last)
            {
                LogFull(_logger, _pipeline, _options.MaxSize.Bytes);
            }
            throw;
        }
    }

    /// <summary>
    /// Writes what was appended, stops the readers (letting records in flight finish within the token's time),
    /// and persists every cursor.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!_open)
        {
            return;
        }

        _open = false;
        await Log.StopWritingAsync().ConfigureAwait(false);
        foreach (var reader in _readers)
        {
            await reader.StopAsync(cancellationToken).ConfigureAwait(false);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_maintenance is not null)
        {
            await _maintenance.ConfigureAwait(false);
        }

        SyncCursors();
        UpdateMetrics();
        LogStopped(_logger, _pipeline, Log.SizeBytes);
    }

    private async Task MaintainAsync()
    {
        using var timer = new PeriodicTimer(_options.CursorSyncInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                try
                {
                    SyncCursors();
                    UpdateMetrics();
                }
                catch (IOException ex)
                {
                    LogMaintenanceFailed(_logger, _pipeline, ex.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Persists the cursors that moved, then deletes the segments every persisted cursor has passed.</summary>
    private void SyncCursors()
    {
        var min = long.MaxValue;
        foreach (var reader in _readers)
        {
            var cursor = reader.Cursor;
            if (cursor.Offset != reader.PersistedCursor.Offset)
            {
                Log.SaveCursor(reader.ExporterId, cursor);
                reader.PersistedCursor = cursor;
            }

            min = Math.Min(min, reader.PersistedCursor.Offset);
        }

        if (_readers.Length > 0)
        {
            Log.DeleteSegmentsBefore(min);
        }
    }

    private void UpdateMetrics()
    {
        GatewayMetrics.QueueBytes.WithLabels(_pipeline).Set(Log.SizeBytes);
        GatewayMetrics.QueueSegments.WithLabels(_pipeline).Set(Log.SegmentCount);
        foreach (var reader in _readers)
        {
            GatewayMetrics.QueueRecords.WithLabels(_pipeline, reader.ExporterId).Set(reader.DepthRecords);
            GatewayMetrics.QueueExporterBytes.WithLabels(_pipeline, reader.ExporterId).Set(reader.DepthBytes);
            GatewayMetrics.QueueOldestAge.WithLabels(_pipeline, reader.ExporterId).Set(reader.OldestAge?.TotalSeconds ?? 0);
        }
    }

    public void Dispose()
    {
        foreach (var reader in _readers)
        {
            reader.Abort();
            reader.Dispose();
        }

        if (_open)
        {
            _stopping.Cancel();
        }

        _stopping.Dispose();
        Log.Dispose();
    }

    [LoggerMessage(EventId = 1421, Level = LogLevel.Information, Message = "Durable queue {Queue} replays {Records} records ({Bytes} bytes) to exporter {Exporter}.")]
    private static partial void LogReplaying(ILogger logger, string queue, string exporter, long records, long bytes);

    [LoggerMessage(EventId = 1422, Level = LogLevel.Warning, Message = "Durable queue {Queue} is full ({MaxBytes} bytes) and refuses data; the clients retry. An exporter is behind or its destination is down.")]
    private static partial void LogFull(ILogger logger, string queue, long maxBytes);

    [LoggerMessage(EventId = 1423, Level = LogLevel.Information, Message = "Durable queue {Queue} stopped with {Bytes} bytes on disk; they are replayed on the next start.")]
    private static partial void LogStopped(ILogger logger, string queue, long bytes);

    [LoggerMessage(EventId = 1424, Level = LogLevel.Error, Message = "Durable queue {Queue} could not write a cursor or delete a segment: {Detail}")]
    private static partial void LogMaintenanceFailed(ILogger logger, string queue, string detail);
}

using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Otlp;

namespace PgOtelGateway.Gateway.Queue;

/// <summary>
/// Feeds one exporter from the durable queue: reads records in order, hands each to the exporter, keeps up to
/// <c>max_in_flight</c> bytes of them outstanding, and moves the exporter's cursor over the contiguous prefix of
/// records the exporter confirmed (its task completed). A record whose task fails is handed over again after a
/// pause, until it succeeds; nothing past the cursor is lost.
/// </summary>
internal sealed partial class QueueReader : IDisposable
{
    private readonly string _queue;
    private readonly DurableLog _log;
    private readonly IMetricsConsumer _exporter;
    private readonly long _maxInFlight;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Queue<InFlight> _inFlight = new();
    private readonly CancellationTokenSource _stopReading = new();
    private readonly CancellationTokenSource _abort = new();
    private LogPosition _cursor;
    private LogPosition _read;
    private InFlight? _tail;
    private long _inFlightBytes;
    private long _oldestUnixMs;
    private Task? _loop;

    public QueueReader(string queue, string exporterId, IMetricsConsumer exporter, DurableLog log, LogPosition start, long maxInFlight, ILogger logger, TimeProvider time)
    {
        _queue = queue;
        ExporterId = exporterId;
        _exporter = exporter;
        _log = log;
        _cursor = start;
        _read = start;
        PersistedCursor = start;
        _maxInFlight = maxInFlight;
        _logger = logger;
        _time = time;
    }

    /// <summary>The exporter this reader feeds.</summary>
    public string ExporterId { get; }

    /// <summary>The first record the exporter has not confirmed (everything before it is done).</summary>
    public LogPosition Cursor => Volatile.Read(ref _cursor);

    /// <summary>The cursor as last written to disk (segments before it may be deleted).</summary>
    public LogPosition PersistedCursor { get; set; }

    /// <summary>Records not yet confirmed by the exporter.</summary>
    public long DepthRecords => Math.Max(0, _log.CommittedSeq - Cursor.Seq);

    /// <summary>Bytes of records not yet confirmed by the exporter.</summary>
    public long DepthBytes => Math.Max(0, _log.CommittedOffset - Cursor.Offset);

    /// <summary>How long the oldest unconfirmed record has waited; null when there is none.</summary>
    public TimeSpan? OldestAge
    {
        get
        {
            var oldest = Interlocked.Read(ref _oldestUnixMs);
            if (oldest == 0 || DepthRecords == 0)
            {
                return null;
            }

            var age = _time.GetUtcNow().ToUnixTimeMilliseconds() - oldest;
            return TimeSpan.FromMilliseconds(Math.Max(0, age));
        }
    }

    public void Start() => _loop = Task.Run(RunAsync);

    /// <summary>Stops reading new records and waits (until <paramref name="cancellationToken"/>) for those in flight.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopReading.CancelAsync().ConfigureAwait(false);
        if (_loop is null)
        {
            return;
        }

        using (cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _abort))
        {
            await _loop.ConfigureAwait(false);
        }
    }

    private async Task RunAsync()
    {
        using var reader = _log.OpenReader();
        var abort = _abort.Token;
        var retryDelay = TimeSpan.FromMilliseconds(100);
        try
        {
            while (!abort.IsCancellationRequested)
            {
                var signal = _log.CommitSignal;
                var reading = !_stopReading.IsCancellationRequested;
                while (reading && _inFlightBytes < _maxInFlight && _tail?.Task.IsFaulted != true)
                {
                    LogRecord? record;
                    try
                    {
                        record = reader.Read(_read, pooled: true, takeDecoded: true);
                    }
                    catch (Exception ex) when (ex is InvalidDataException or IOException)
                    {
                        // A damaged record inside the log (a disk fault, not a crash): skip what cannot be read, loudly.
                        var next = reader.SkipSegment(_read);
                        LogDamaged(_logger, _queue, ExporterId, ex.Message, next.Offset - _read.Offset);
                        GatewayMetrics.QueueDamagedRecords.WithLabels(_queue, ExporterId).Inc();
                        _read = next;
                        if (_inFlight.Count == 0)
                        {
                            Volatile.Write(ref _cursor, next);
                        }

                        continue;
                    }

                    if (record is null)
                    {
                        break;
                    }

                    var entry = new InFlight(record);
                    Submit(entry, reader);
                    if (_inFlight.Count == 0)
                    {
                        Interlocked.Exchange(ref _oldestUnixMs, record.AppendedUnixMs);
                    }

                    _inFlight.Enqueue(entry);
                    _tail = entry;
                    _inFlightBytes += record.Next.Offset - record.Position.Offset;
                    _read = record.Next;
                }

                if (_inFlight.Count == 0)
                {
                    if (!reading)
                    {
                        return;
                    }

                    await signal.WaitAsync(_stopReading.Token).ConfigureAwait(false);
                    continue;
                }

                var head = _inFlight.Peek();
                if (head.Task.IsCompletedSuccessfully)
                {
                    Complete();
                    retryDelay = TimeSpan.FromMilliseconds(100);
                    continue;
                }

                if (head.Task.IsCompleted)
                {
                    if (!reading)
                    {
                        return;
                    }

                    // The exporter could not take it (its own buffer full, a fault): hand it over again after a pause.
                    var error = head.Task.Exception?.GetBaseException().Message ?? "cancelled";
                    if (head.Attempts == 1 || head.Attempts % 50 == 0)
                    {
                        LogRedeliver(_logger, _queue, ExporterId, head.Record.Position.Seq, head.Attempts, error);
                    }

                    await Task.Delay(retryDelay, abort).ConfigureAwait(false);
                    retryDelay = TimeSpan.FromMilliseconds(Math.Min(retryDelay.TotalMilliseconds * 2, 5000));
                    GatewayMetrics.QueueRedeliveries.WithLabels(_queue, ExporterId).Inc();
                    Submit(head, reader);
                    continue;
                }

                var canRead = reading && _inFlightBytes < _maxInFlight && _read.Offset < _log.CommittedOffset && _tail?.Task.IsFaulted != true;
                if (canRead)
                {
                    continue;
                }

                if (reading && _inFlightBytes < _maxInFlight)
                {
                    await Task.WhenAny(head.Task, signal).WaitAsync(abort).ConfigureAwait(false);
                }
                else
                {
                    await Task.WhenAny(head.Task).WaitAsync(abort).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: what is not confirmed stays after the cursor and is replayed on the next start.
        }
    }

    private void Submit(InFlight entry, DurableLog.LogReader reader)
    {
        entry.Attempts++;
        try
        {
            ExportMetricsServiceRequest request;
            if (entry.Record.Decoded is ExportMetricsServiceRequest decoded)
            {
                // The request the queue just appended, still in memory: no need to decode its bytes. Only the first
                // attempt gets it, because the exporter owns (and may change) what it is handed.
                request = decoded;
                entry.Record = entry.Record with { Decoded = null };
            }
            else
            {
                if (entry.Record.Payload.Length < entry.Record.Length)
                {
                    // No bytes held (handed over in memory, or given back after an earlier parse): read them now,
                    // for a clean copy.
                    entry.Record = reader.Read(entry.Record.Position, pooled: true)
                        ?? throw new InvalidDataException($"record {entry.Record.Position.Seq} is no longer in the log");
                }

                request = OtlpRequestReader.Parse(entry.Record.Payload.AsSpan(0, entry.Record.Length));

                // The exporter has its own objects now; a retry reads the bytes again (above), so the buffer need
                // not wait for the confirmation. Behind a backlog this is max_in_flight bytes less held.
                entry.ReleasePayload();
            }

            entry.Task = _exporter.ConsumeAsync(request, _abort.Token);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            entry.Task = Task.FromException(ex);
        }
    }

    private void Complete()
    {
        // Move the cursor over every confirmed record at the head, in order.
        var last = _cursor;
        while (_inFlight.Count > 0 && _inFlight.Peek().Task.IsCompletedSuccessfully)
        {
            var done = _inFlight.Dequeue();
            _inFlightBytes -= done.Record.Next.Offset - done.Record.Position.Offset;
            last = done.Record.Next;
        }

        if (_inFlight.Count == 0)
        {
            // All read is confirmed (or was skipped as damaged): the cursor catches up with the read position.
            last = _read;
            _tail = null;
            Interlocked.Exchange(ref _oldestUnixMs, 0);
        }
        else
        {
            Interlocked.Exchange(ref _oldestUnixMs, _inFlight.Peek().Record.AppendedUnixMs);
        }

        Volatile.Write(ref _cursor, last);
    }

    /// <summary>Stops at once, without waiting for what is in flight (the process is going away).</summary>
    public void Abort()
    {
        _stopReading.Cancel();
        _abort.Cancel();
    }

    public void Dispose()
    {
        // A loop still winding down after Abort reads the tokens; those sources own no timer, so leaving them is safe.
        if (_loop is not null && !_loop.IsCompleted)
        {
            return;
        }

        _stopReading.Dispose();
        _abort.Dispose();
    }

    private sealed class InFlight(LogRecord record)
    {
        public LogRecord Record { get; set; } = record;

        /// <summary>
        /// Gives a pooled payload back once the exporter has parsed its own copy in <see cref="Submit"/>. The record
        /// keeps its position and length, and an empty payload tells <see cref="Submit"/> to read it again.
        /// </summary>
        public void ReleasePayload()
        {
            if (Record.Pooled)
            {
                BufferPools.Bytes.Return(Record.Payload);
            }

            Record = Record with { Payload = [], Pooled = false };
        }

        public Task Task { get; set; } = Task.CompletedTask;

        public int Attempts { get; set; }
    }

    [LoggerMessage(EventId = 1411, Level = LogLevel.Warning, Message = "Durable queue {Queue}: exporter {Exporter} did not take record {Seq} (attempt {Attempt}): {Detail}. It is handed over again.")]
    private static partial void LogRedeliver(ILogger logger, string queue, string exporter, long seq, int attempt, string detail);

    [LoggerMessage(EventId = 1412, Level = LogLevel.Error, Message = "Durable queue {Queue}: exporter {Exporter} met a damaged record ({Detail}); {Bytes} bytes up to the next segment were skipped.")]
    private static partial void LogDamaged(ILogger logger, string queue, string exporter, string detail, long bytes);
}

using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.IO.Hashing;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Storage;

namespace PgOtelGateway.Gateway.Queue;

/// <summary>
/// An append-only log on disk, in segment files. Each record is framed by a 24-byte header: payload length
/// (uint32), CRC-32 (uint32) over the rest of the header and the payload, sequence number (int64) and append time
/// (int64, Unix ms), all little-endian. Appends go through one writer that gathers concurrent appends into one
/// write and one fsync (group commit); an append's task completes only once its record is durable by the
/// <see cref="FsyncPolicy"/>. Positions are logical byte offsets that keep growing across segments; a segment file
/// is named after the offset and sequence number of its first record.
/// </summary>
/// <remarks>
/// On open, the last segment is scanned: a partial record or a checksum mismatch at its end (a torn write of a
/// crash) is cut off and logged, never read as data. A lock file is held while the log is open, so a second
/// process cannot share the directory.
/// </remarks>
internal sealed partial class DurableLog : IDisposable
{
    public const int HeaderSize = 24;
    private const string SegmentExtension = ".seg";
    private const string CursorExtension = ".cursor";

    private readonly string _name;
    private readonly QueueOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _segmentsLock = new();
    private readonly List<Segment> _segments = [];
    private readonly Channel<PendingAppend> _appends = Channel.CreateUnbounded<PendingAppend>(new UnboundedChannelOptions { SingleReader = true });
    private FileStream? _lockFile;
    private FileStream? _active;
    private Segment? _activeSegment;
    private Task? _writer;
    private long _endOffset;
    private long _nextSeq;
    private long _committedOffset;
    private long _committedSeq;
    private long _firstOffset;
    private long _pendingBytes;
    private TaskCompletionSource _commitSignal = NewSignal();

    // The in-memory form of the newest records, by sequence number: the first reader to reach one takes it instead of
    // decoding the bytes that were just encoded from it. Only a few are kept (the writer drops the oldest), so a
    // reader that is behind costs no memory here; it decodes from disk as it would after a restart.
    private const int RecentMaxRecords = 4;
    private const long RecentMaxBytes = 8L << 20;
    private readonly ConcurrentDictionary<long, RecentRecord> _recent = new();
    private readonly Queue<(long Seq, int Length)> _recentOrder = new();
    private long _recentBytes;

    public DurableLog(string name, string directory, QueueOptions options, ILogger logger, TimeProvider? time = null)
    {
        _name = name;
        Directory = directory;
        _options = options;
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The directory holding the segments, cursors and lock file.</summary>
    public string Directory { get; }

    /// <summary>The end of the durable (acknowledged) records: readers read up to here.</summary>
    public long CommittedOffset => Volatile.Read(ref _committedOffset);

    /// <summary>The sequence number the next committed record will get.</summary>
    public long CommittedSeq => Volatile.Read(ref _committedSeq);

    /// <summary>Where the oldest retained record starts.</summary>
    public long FirstOffset => Volatile.Read(ref _firstOffset);

    /// <summary>Bytes in the segment files plus appends waiting to be written.</summary>
    public long SizeBytes => Volatile.Read(ref _endOffset) - FirstOffset + Interlocked.Read(ref _pendingBytes);

    /// <summary>Segment files on disk.</summary>
    public int SegmentCount
    {
        get
        {
            lock (_segmentsLock)
            {
                return _segments.Count;
            }
        }
    }

    /// <summary>Completes at the next commit; take it before checking <see cref="CommittedOffset"/>, then await it.</summary>
    public Task CommitSignal => Volatile.Read(ref _commitSignal).Task;

    /// <summary>Takes the lock, recovers the segments (cutting off a torn tail) and starts the writer.</summary>
    /// <exception cref="IOException">The directory cannot be used, or another process holds it.</exception>
    public void Open()
    {
        System.IO.Directory.CreateDirectory(Directory);
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "cursors"));
        AcquireLock();

        var files = new List<(long Offset, long Seq, string Path)>();
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory, "*" + SegmentExtension))
        {
            var parts = Path.GetFileNameWithoutExtension(path).Split('-');
            if (parts.Length == 2
                && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var offset)
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
            {
                files.Add((offset, seq, path));
            }
        }

        files.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        for (var i = 0; i < files.Count; i++)
        {
            var (offset, seq, path) = files[i];
            var segment = new Segment(offset, seq, path);
            if (i < files.Count - 1)
            {
                segment.EndOffset = offset + new FileInfo(path).Length;
                segment.EndSeq = files[i + 1].Seq;
            }
            else
            {
                var (length, records) = Recover(path, seq);
                segment.EndOffset = offset + length;
                segment.EndSeq = seq + records;
            }

            _segments.Add(segment);
        }

        if (_segments.Count == 0)
        {
            var first = new Segment(0, 0, SegmentPath(0, 0)) { EndOffset = 0, EndSeq = 0 };
            File.WriteAllBytes(first.Path, []);
            DirectorySync.Flush(Directory);
            _segments.Add(first);
        }

        var last = _segments[^1];
        _endOffset = last.EndOffset;
        _nextSeq = last.EndSeq;
        _committedOffset = _endOffset;
        _committedSeq = _nextSeq;
        _firstOffset = _segments[0].StartOffset;
        _active = OpenForAppend(last.Path);
        _activeSegment = last;
        _writer = Task.Run(WriteLoopAsync);
        LogOpened(_logger, _name, Directory, _segments.Count, _endOffset - _firstOffset, _nextSeq - _segments[0].StartSeq);
    }

    /// <summary>
    /// Appends one record; the task completes once it is durable by the fsync policy. Throws
    /// <see cref="PipelineRefusedException"/> (queue full) when the record does not fit in <c>max_size</c>.
    /// </summary>
    public Task AppendAsync(byte[] payload) => AppendAsync(payload, payload.Length, pooled: false);

    /// <summary>
    /// As <see cref="AppendAsync(byte[])"/> for the first <paramref name="length"/> bytes of <paramref name="payload"/>;
    /// with <paramref name="pooled"/> the log returns the array to <see cref="BufferPools.Bytes"/> once it has
    /// copied it (also when the append is refused), so the caller must not touch it after this call.
    /// </summary>
    public Task AppendAsync(byte[] payload, int length, bool pooled) => AppendAsync(payload, length, pooled, decoded: null);

    /// <summary>
    /// As <see cref="AppendAsync(byte[], int, bool)"/>, with the object the payload was encoded from: the first reader
    /// to read the record soon after it is committed gets that object in <see cref="LogRecord.Decoded"/> (and no
    /// payload), so it need not decode it again. The caller gives up the object with this call.
    /// </summary>
    public Task AppendAsync(byte[] payload, int length, bool pooled, object? decoded)
    {
        var size = HeaderSize + (long)length;
        var used = Interlocked.Add(ref _pendingBytes, size) + Volatile.Read(ref _endOffset) - FirstOffset;
        if (used > _options.MaxSize.Bytes)
        {
            Interlocked.Add(ref _pendingBytes, -size);
            if (pooled)
            {
                BufferPools.Bytes.Return(payload);
            }

            throw new PipelineRefusedException(RefusalReason.QueueFull,
                $"the durable queue of pipeline '{_name}' is full ({_options.MaxSize.Bytes} bytes); an exporter is behind", TimeSpan.FromSeconds(5));
        }

        var pending = new PendingAppend(payload, length, pooled) { Decoded = decoded };
        if (!_appends.Writer.TryWrite(pending))
        {
            Interlocked.Add(ref _pendingBytes, -size);
            pending.Release();
            throw new PipelineRefusedException(RefusalReason.ShuttingDown, "the gateway is shutting down", TimeSpan.FromSeconds(1));
        }

        return pending.Done.Task;
    }

    /// <summary>Stops taking appends and waits for the writer to write what it has.</summary>
    public async Task StopWritingAsync()
    {
        _appends.Writer.TryComplete();
        if (_writer is not null)
        {
            await _writer.ConfigureAwait(false);
        }
    }

    /// <summary>A reader with its own file handles (one per exporter).</summary>
    public LogReader OpenReader() => new(this);

    /// <summary>The persisted cursor of an exporter, clamped to the records that exist; the log's start when it has none.</summary>
    public LogPosition LoadCursor(string exporterId)
    {
        LogPosition? stored = null;
        var path = CursorPath(exporterId);
        if (File.Exists(path))
        {
            var bytes = File.ReadAllBytes(path);
            if (bytes.Length == 20 && Crc32.HashToUInt32(bytes.AsSpan(0, 16)) == BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(16)))
            {
                stored = new LogPosition(BinaryPrimitives.ReadInt64LittleEndian(bytes), BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(8)));
            }
            else
            {
                LogBadCursor(_logger, _name, exporterId, path);
            }
        }

        lock (_segmentsLock)
        {
            var first = _segments[0];
            if (stored is null || stored.Offset < first.StartOffset)
            {
                return new LogPosition(first.StartOffset, first.StartSeq);
            }

            if (stored.Offset > _endOffset)
            {
                // The records past the end were lost (a torn tail under fsync: never); nothing to replay there.
                LogCursorPastEnd(_logger, _name, exporterId, stored.Offset, _endOffset);
                return new LogPosition(_endOffset, _nextSeq);
            }

            return stored;
        }
    }

    /// <summary>Writes an exporter's cursor (temporary file, fsync, rename), so a crash never leaves half a cursor.</summary>
    public void SaveCursor(string exporterId, LogPosition position)
    {
        Span<byte> bytes = stackalloc byte[20];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, position.Offset);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[8..], position.Seq);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes[16..], Crc32.HashToUInt32(bytes[..16]));
        var path = CursorPath(exporterId);
        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
        DirectorySync.Flush(Path.GetDirectoryName(path)!);
    }

    /// <summary>Deletes the segments that lie wholly before <paramref name="offset"/> (every exporter has passed them).</summary>
    public int DeleteSegmentsBefore(long offset)
    {
        var deleted = 0;
        while (true)
        {
            Segment victim;
            lock (_segmentsLock)
            {
                // The last segment is the one being written: never deleted.
                if (_segments.Count < 2 || _segments[0].EndOffset > offset)
                {
                    break;
                }

                victim = _segments[0];
                _segments.RemoveAt(0);
                Volatile.Write(ref _firstOffset, _segments[0].StartOffset);
            }

            try
            {
                File.Delete(victim.Path);
                deleted++;
            }
            catch (IOException ex)
            {
                LogDeleteFailed(_logger, _name, victim.Path, ex.Message);
            }
        }

        return deleted;
    }

    private void AcquireLock()
    {
        var path = Path.Combine(Directory, "LOCK");
        try
        {
            // FileShare.None takes an exclusive flock on Unix: released by the kernel when the process dies.
            _lockFile = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
        }
        catch (IOException ex)
        {
            throw new IOException(
                $"the queue directory '{Directory}' is in use by another gateway process (it holds {path}); give each gateway its own gateway.queue.directory (or gateway.id)", ex);
        }

        _lockFile.SetLength(0);
        _lockFile.Write(System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n"));
    }

    /// <summary>Scans a segment; cuts off whatever follows the last whole, checksummed record. Returns its length and record count.</summary>
    private (long Length, long Records) Recover(string path, long startSeq)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
        var handle = stream.SafeFileHandle;
        var fileLength = stream.Length;
        var header = new byte[HeaderSize];
        long position = 0, records = 0;
        string? problem = null;
        while (position < fileLength)
        {
            if (position + HeaderSize > fileLength)
            {
                problem = "a partial record header";
                break;
            }

            ReadExactly(handle, header, position);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
            var seq = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(8));
            if (seq != startSeq + records)
            {
                problem = $"sequence number {seq} where {startSeq + records} was expected";
                break;
            }

            if (length > fileLength - position - HeaderSize)
            {
                problem = "a partial record";
                break;
            }

            var payload = BufferPools.Bytes.Rent((int)length);
            try
            {
                ReadExactly(handle, payload.AsSpan(0, (int)length), position + HeaderSize);
                if (Checksum(header, payload.AsSpan(0, (int)length)) != BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)))
                {
                    problem = "a checksum mismatch";
                    break;
                }
            }
            finally
            {
                BufferPools.Bytes.Return(payload);
            }

            position += HeaderSize + length;
            records++;
        }

        if (problem is not null)
        {
            LogTornTail(_logger, _name, path, position, fileLength - position, problem);
            GatewayMetrics.QueueTornTails.WithLabels(_name).Inc();
            stream.SetLength(position);
            stream.Flush(flushToDisk: true);
        }

        return (position, records);
    }

    private async Task WriteLoopAsync()
    {
        var reader = _appends.Reader;
        var batch = new List<PendingAppend>();
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        var groupMax = _options.Fsync == FsyncPolicy.Always ? 1 : _options.GroupCommit.MaxBytes.Bytes;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            if (_options.Fsync == FsyncPolicy.Group && _options.GroupCommit.Interval > TimeSpan.Zero)
            {
                // Let the appends of concurrent requests join this group: one write and one fsync for all of them.
                await Task.Delay(_options.GroupCommit.Interval).ConfigureAwait(false);
            }

            long bytes = 0;
            batch.Clear();
            while (bytes < groupMax && reader.TryRead(out var pending))
            {
                batch.Add(pending);
                bytes += HeaderSize + pending.Length;
            }

            try
            {
                Write(batch, buffer, bytes);
            }
            finally
            {
                foreach (var pending in batch)
                {
                    pending.Release();
                }
            }

            buffer.ResetWrittenCount();
            if (buffer.Capacity > 8 << 20)
            {
                buffer = new ArrayBufferWriter<byte>(64 * 1024);
            }
        }

        _active?.Flush(flushToDisk: _options.Fsync != FsyncPolicy.Never);
    }

    private void Write(List<PendingAppend> batch, ArrayBufferWriter<byte> buffer, long bytes)
    {
        var active = _active!;
        var startSeq = _nextSeq;
        var startOffset = _endOffset;
        try
        {
            if (_endOffset - _activeSegment!.StartOffset >= _options.EffectiveSegmentBytes)
            {
                active = Roll();
            }

            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var seq = startSeq;
            foreach (var pending in batch)
            {
                var header = buffer.GetSpan(HeaderSize)[..HeaderSize];
                var payload = pending.Payload.AsSpan(0, pending.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)payload.Length);
                BinaryPrimitives.WriteInt64LittleEndian(header[8..], seq++);
                BinaryPrimitives.WriteInt64LittleEndian(header[16..], now);
                BinaryPrimitives.WriteUInt32LittleEndian(header[4..], Checksum(header, payload));
                buffer.Advance(HeaderSize);
                buffer.Write(payload);
            }

            // Unbuffered stream: the bytes reach the kernel here, so they survive a crash of this process.
            active.Write(buffer.WrittenSpan);
            if (_options.Fsync != FsyncPolicy.Never)
            {
                var timer = Stopwatch.StartNew();
                active.Flush(flushToDisk: true);
                GatewayMetrics.QueueFsyncDuration.WithLabels(_name).Observe(timer.Elapsed.TotalSeconds);
            }

            _endOffset = startOffset + buffer.WrittenCount;
            _nextSeq = seq;
            KeepRecent(batch, startSeq, now);
            _activeSegment!.EndSeq = _nextSeq;
            _activeSegment.EndOffset = _endOffset;

            Volatile.Write(ref _committedSeq, _nextSeq);
            Volatile.Write(ref _committedOffset, _endOffset);
            Interlocked.Add(ref _pendingBytes, -bytes);
            GatewayMetrics.QueueAppendedRecords.WithLabels(_name).Inc(batch.Count);
            foreach (var pending in batch)
            {
                pending.Done.TrySetResult();
            }

            Interlocked.Exchange(ref _commitSignal, NewSignal()).TrySetResult();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogWriteFailed(_logger, _name, Directory, batch.Count, ex.Message);
            try
            {
                // Take back whatever part of the group reached the file, so the log stays a sequence of whole records.
                _active!.SetLength(_endOffset - _activeSegment!.StartOffset);
                _active.Seek(0, SeekOrigin.End);
            }
            catch (IOException)
            {
            }

            Interlocked.Add(ref _pendingBytes, -bytes);
            var refusal = new PipelineRefusedException(RefusalReason.Unavailable, $"the durable queue of pipeline '{_name}' cannot write to disk", TimeSpan.FromSeconds(5));
            foreach (var pending in batch)
            {
                pending.Done.TrySetException(refusal);
            }
        }
    }

    /// <summary>Keeps the decoded form of the records just written (before they are committed), dropping the oldest.</summary>
    private void KeepRecent(List<PendingAppend> batch, long startSeq, long appendedUnixMs)
    {
        var seq = startSeq;
        foreach (var pending in batch)
        {
            if (pending.Decoded is { } decoded)
            {
                _recent[seq] = new RecentRecord(decoded, pending.Length, appendedUnixMs);
                _recentOrder.Enqueue((seq, pending.Length));
                Interlocked.Add(ref _recentBytes, pending.Length);
                pending.Decoded = null;
            }

            seq++;
        }

        while (_recentOrder.Count > 0 && (_recentOrder.Count > RecentMaxRecords || Interlocked.Read(ref _recentBytes) > RecentMaxBytes))
        {
            var (old, length) = _recentOrder.Dequeue();
            if (_recent.TryRemove(old, out _))
            {
                Interlocked.Add(ref _recentBytes, -length);
            }
        }
    }

    /// <summary>Takes the decoded form of record <paramref name="seq"/> if it is still kept (only one reader gets it).</summary>
    private RecentRecord? TakeRecent(long seq)
    {
        if (!_recent.TryRemove(seq, out var recent))
        {
            return null;
        }

        Interlocked.Add(ref _recentBytes, -recent.Length);
        return recent;
    }

    private FileStream Roll()
    {
        var old = _active!;
        old.Flush(flushToDisk: _options.Fsync != FsyncPolicy.Never);
        var segment = new Segment(_endOffset, _nextSeq, SegmentPath(_endOffset, _nextSeq)) { EndOffset = _endOffset, EndSeq = _nextSeq };
        var next = OpenForAppend(segment.Path);
        if (_options.Fsync != FsyncPolicy.Never)
        {
            // Records synced into the new segment are only durable once the segment's name is.
            DirectorySync.Flush(Directory);
        }

        lock (_segmentsLock)
        {
            _segments.Add(segment);
        }

        _active = next;
        _activeSegment = segment;
        old.Dispose();
        return next;
    }

    private static FileStream OpenForAppend(string path)
    {
        var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, bufferSize: 0);
        stream.Seek(0, SeekOrigin.End);
        return stream;
    }

    private string SegmentPath(long offset, long seq) =>
        Path.Combine(Directory, offset.ToString("D20", CultureInfo.InvariantCulture) + "-" + seq.ToString("D20", CultureInfo.InvariantCulture) + SegmentExtension);

    private string CursorPath(string exporterId) => Path.Combine(Directory, "cursors", QueueOptions.SafeName(exporterId) + CursorExtension);

    /// <summary>The segment holding the record at <paramref name="offset"/> (segments are contiguous).</summary>
    private Segment? SegmentOf(long offset)
    {
        lock (_segmentsLock)
        {
            for (var i = _segments.Count - 1; i >= 0; i--)
            {
                if (_segments[i].StartOffset <= offset)
                {
                    return _segments[i];
                }
            }

            return null;
        }
    }

    internal static uint Checksum(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        var crc = new Crc32();
        crc.Append(header[..4]);
        crc.Append(header[8..HeaderSize]);
        crc.Append(payload);
        return crc.GetCurrentHashAsUInt32();
    }

    private static void ReadExactly(SafeFileHandle handle, Span<byte> target, long position)
    {
        while (target.Length > 0)
        {
            var n = RandomAccess.Read(handle, target, position);
            if (n == 0)
            {
                throw new EndOfStreamException("unexpected end of a queue segment");
            }

            target = target[n..];
            position += n;
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Dispose()
    {
        _appends.Writer.TryComplete();
        _active?.Dispose();
        _active = null;
        _lockFile?.Dispose();
        _lockFile = null;
    }

    private sealed class Segment(long startOffset, long startSeq, string path)
    {
        public long StartOffset { get; } = startOffset;

        public long StartSeq { get; } = startSeq;

        public string Path { get; } = path;

        public long EndOffset { get; set; }

        public long EndSeq { get; set; }
    }

    private sealed class PendingAppend(byte[] payload, int length, bool pooled)
    {
        private byte[]? _pooled = pooled ? payload : null;

        public byte[] Payload { get; } = payload;

        public int Length { get; } = length;

        /// <summary>Gives a pooled payload back (once), after it was copied into the write buffer.</summary>
        public void Release()
        {
            if (Interlocked.Exchange(ref _pooled, null) is { } array)
            {
                BufferPools.Bytes.Return(array);
            }
        }

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The object the payload was encoded from, if the caller handed it over.</summary>
        public object? Decoded { get; set; }
    }

    private sealed record RecentRecord(object Decoded, int Length, long AppendedUnixMs);

    /// <summary>Reads committed records in order, with its own file handle per segment.</summary>
    internal sealed class LogReader(DurableLog log) : IDisposable
    {
        private readonly byte[] _header = new byte[HeaderSize];
        private Segment? _segment;
        private SafeFileHandle? _handle;

        /// <summary>
        /// The record at <paramref name="position"/>, or null when nothing is committed there yet. Throws
        /// <see cref="InvalidDataException"/> when the record there is damaged.
        /// </summary>
        public LogRecord? Read(LogPosition position) => Read(position, pooled: false);

        /// <summary>
        /// As <see cref="Read(LogPosition)"/>; with <paramref name="pooled"/> the payload is rented from
        /// <see cref="BufferPools.Bytes"/> (longer than <see cref="LogRecord.Length"/>), and the caller returns it.
        /// </summary>
        public LogRecord? Read(LogPosition position, bool pooled) => Read(position, pooled, takeDecoded: false);

        /// <summary>
        /// As <see cref="Read(LogPosition, bool)"/>; with <paramref name="takeDecoded"/>, a record whose in-memory form
        /// the log still keeps comes back with it in <see cref="LogRecord.Decoded"/> and without its payload (which
        /// is not read from disk; read the record again without this flag when the payload is needed).
        /// </summary>
        public LogRecord? Read(LogPosition position, bool pooled, bool takeDecoded)
        {
            if (position.Offset >= log.CommittedOffset)
            {
                return null;
            }

            if (takeDecoded && log.TakeRecent(position.Seq) is { } recent)
            {
                var next = new LogPosition(position.Offset + HeaderSize + recent.Length, position.Seq + 1);
                return new LogRecord(position, next, recent.AppendedUnixMs, []) { Length = recent.Length, Decoded = recent.Decoded };
            }

            if (_segment is null || position.Offset < _segment.StartOffset || position.Offset >= _segment.EndOffset)
            {
                _handle?.Dispose();
                _segment = log.SegmentOf(position.Offset) ?? throw new InvalidDataException($"no segment holds offset {position.Offset}");
                _handle = File.OpenHandle(_segment.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            }

            var at = position.Offset - _segment.StartOffset;
            ReadExactly(_handle!, _header, at);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(_header);
            var seq = BinaryPrimitives.ReadInt64LittleEndian(_header.AsSpan(8));
            if (seq != position.Seq || length > _segment.EndOffset - position.Offset - HeaderSize)
            {
                throw new InvalidDataException($"damaged record at offset {position.Offset} of {_segment.Path}: sequence {seq}, length {length}");
            }

            var payload = pooled ? BufferPools.Bytes.Rent((int)length) : new byte[length];
            var span = payload.AsSpan(0, (int)length);
            try
            {
                ReadExactly(_handle!, span, at + HeaderSize);
                if (Checksum(_header, span) != BinaryPrimitives.ReadUInt32LittleEndian(_header.AsSpan(4)))
                {
                    throw new InvalidDataException($"checksum mismatch at offset {position.Offset} of {_segment.Path}");
                }
            }
            catch when (pooled)
            {
                BufferPools.Bytes.Return(payload);
                throw;
            }

            var time = BinaryPrimitives.ReadInt64LittleEndian(_header.AsSpan(16));
            return new LogRecord(position, new LogPosition(position.Offset + HeaderSize + length, seq + 1), time, payload) { Length = (int)length, Pooled = pooled };
        }

        /// <summary>Where reading resumes after a damaged record: the start of the next segment.</summary>
        public LogPosition SkipSegment(LogPosition position)
        {
            var segment = log.SegmentOf(position.Offset);
            if (segment is null)
            {
                return position;
            }

            lock (log._segmentsLock)
            {
                var i = log._segments.IndexOf(segment);
                return i >= 0 && i + 1 < log._segments.Count
                    ? new LogPosition(log._segments[i + 1].StartOffset, log._segments[i + 1].StartSeq)
                    : new LogPosition(log._endOffset, log._nextSeq);
            }
        }

        public void Dispose()
        {
            _handle?.Dispose();
            _handle = null;
        }
    }

    [LoggerMessage(EventId = 1401, Level = LogLevel.Information, Message = "Durable queue {Queue} opened in {Directory}: {Segments} segments, {Bytes} bytes, {Records} records retained.")]
    private static partial void LogOpened(ILogger logger, string queue, string directory, int segments, long bytes, long records);

    [LoggerMessage(EventId = 1402, Level = LogLevel.Warning, Message = "Durable queue {Queue}: {Path} ends in a torn write ({Problem}) at byte {Position}; {Bytes} bytes were cut off. Those records were never acknowledged.")]
    private static partial void LogTornTail(ILogger logger, string queue, string path, long position, long bytes, string problem);

    [LoggerMessage(EventId = 1403, Level = LogLevel.Error, Message = "Durable queue {Queue} cannot write {Records} records to {Directory}: {Detail}. The clients were refused and will retry.")]
    private static partial void LogWriteFailed(ILogger logger, string queue, string directory, int records, string detail);

    [LoggerMessage(EventId = 1404, Level = LogLevel.Warning, Message = "Durable queue {Queue}: the cursor of exporter {Exporter} in {Path} is damaged; the exporter starts from the oldest retained record.")]
    private static partial void LogBadCursor(ILogger logger, string queue, string exporter, string path);

    [LoggerMessage(EventId = 1405, Level = LogLevel.Warning, Message = "Durable queue {Queue}: the cursor of exporter {Exporter} ({Cursor}) is past the end of the log ({End}); it continues from the end.")]
    private static partial void LogCursorPastEnd(ILogger logger, string queue, string exporter, long cursor, long end);

    [LoggerMessage(EventId = 1406, Level = LogLevel.Warning, Message = "Durable queue {Queue} could not delete the consumed segment {Path}: {Detail}")]
    private static partial void LogDeleteFailed(ILogger logger, string queue, string path, string detail);
}

/// <summary>A place in the log: the logical byte offset of a record and its sequence number.</summary>
internal sealed record LogPosition(long Offset, long Seq);

/// <summary>One record read back: where it is, where the next one starts, when it was appended, and its bytes.</summary>
internal sealed record LogRecord(LogPosition Position, LogPosition Next, long AppendedUnixMs, byte[] Payload)
{
    /// <summary>The bytes of <see cref="Payload"/> that are the record (a pooled payload is longer).</summary>
    public int Length { get; init; } = Payload.Length;

    /// <summary>Whether <see cref="Payload"/> was rented from <see cref="BufferPools.Bytes"/> (its reader returns it).</summary>
    public bool Pooled { get; init; }

    /// <summary>The record's in-memory form handed over by its writer; set only when <see cref="Payload"/> was not read.</summary>
    public object? Decoded { get; init; }
}

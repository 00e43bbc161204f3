using System.Buffers.Binary;
using System.Globalization;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Storage;
using ZstdSharp;

namespace PgOtelGateway.Agent.Export;

/// <summary>
/// The otlp exporter's disk spool (<c>sending_queue.storage_dir</c>): batches the gateway could not take wait
/// here, one file per batch, oldest first. Each file is a 32-byte header (magic, version, flags, data points,
/// payload length, creation time, CRC-32C over header and payload) and the zstd-compressed OTLP request; it is
/// written to a temporary name, fsync'd, renamed and the directory fsync'd, so a crash leaves either the whole
/// batch or none. At start the files are replayed in order; a torn or corrupt file is detected by its length and
/// checksum, counted, logged and removed, never sent. When <c>max_size</c> is reached the oldest batches are
/// dropped, counted and logged. One process owns a spool directory (a lock file).
/// </summary>
internal sealed partial class DiskSpool : IDisposable
{
    internal const int HeaderSize = 32;
    private const uint Magic = 0x50534750; // "PGSP" little-endian
    private const byte Version = 1;
    private const byte FlagZstd = 1;
    private const string Extension = ".spool";

    private readonly string _directory;
    private readonly long _maxBytes;
    private readonly string _exporter;
    private readonly ILogger _logger;
    private readonly FileStream _lock;
    private readonly LinkedList<Entry> _entries = new();
    private readonly Compressor _compressor = new(3);
    private readonly Decompressor _decompressor = new();
    private long _nextSequence;
    private long _bytes;

    public DiskSpool(string directory, long maxBytes, string exporter, ILogger logger)
    {
        _directory = directory;
        _maxBytes = maxBytes;
        _exporter = exporter;
        _logger = logger;
        Directory.CreateDirectory(directory);
        try
        {
            _lock = new FileStream(Path.Combine(directory, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new IOException($"the spool directory {directory} is in use by another agent process (its .lock is held): {ex.Message}", ex);
        }

        Load();
        Publish();
    }

    /// <summary>The spool's folder.</summary>
    public string Folder => _directory;

    /// <summary>Takes every batch out, oldest first (a corrupt one is dropped and counted, as by <see cref="TryPeekOldest"/>).</summary>
    public List<ExportMetricsServiceRequest> TakeAll()
    {
        var batches = new List<ExportMetricsServiceRequest>();
        while (TryPeekOldest(out var sequence, out var batch, out _))
        {
            batches.Add(batch);
            Remove(sequence);
        }

        return batches;
    }

    /// <summary>Batches waiting on disk.</summary>
    public int Count
    {
        get
        {
            lock (_entries)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Bytes of the spool files.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Age of the oldest batch, zero when empty.</summary>
    public TimeSpan OldestAge
    {
        get
        {
            lock (_entries)
            {
                return _entries.First is { } first ? DateTimeOffset.UtcNow - DateTimeOffset.FromUnixTimeMilliseconds(first.Value.CreatedMs) : TimeSpan.Zero;
            }
        }
    }

    private void Load()
    {
        var found = new List<(long Sequence, string Path)>();
        foreach (var path in Directory.EnumerateFiles(_directory))
        {
            var name = Path.GetFileName(path);
            if (name.EndsWith(".tmp", StringComparison.Ordinal))
            {
                File.Delete(path); // A write that never finished: its batch was never counted as spooled.
            }
            else if (name.EndsWith(Extension, StringComparison.Ordinal) && long.TryParse(name[..^Extension.Length], NumberStyles.None, CultureInfo.InvariantCulture, out var sequence))
            {
                found.Add((sequence, path));
            }
        }

        found.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        foreach (var (sequence, path) in found)
        {
            var header = new byte[HeaderSize];
            long length;
            try
            {
                using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
                length = file.Length;
                file.ReadExactly(header);
            }
            catch (EndOfStreamException)
            {
                Discard(path, 0, "shorter than its header");
                continue;
            }

            if (!TryReadHeader(header, out var points, out var payload, out var created) || HeaderSize + payload != length)
            {
                Discard(path, points, "its header does not match its length");
                continue;
            }

            _entries.AddLast(new Entry(sequence, path, length, points, created));
            _bytes += length;
            _nextSequence = sequence + 1;
        }

        if (_entries.Count > 0)
        {
            LogReplaying(_logger, _exporter, _entries.Count, _bytes);
        }
    }

    private static bool TryReadHeader(ReadOnlySpan<byte> header, out int points, out int payloadLength, out long createdMs)
    {
        points = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        payloadLength = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        createdMs = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
        return BinaryPrimitives.ReadUInt32LittleEndian(header) == Magic && header[4] == Version && payloadLength >= 0;
    }

    /// <summary>Writes a batch behind the others (durably); drops the oldest batches when the spool would overflow.</summary>
    public void Append(ExportMetricsServiceRequest request)
    {
        var points = MetricsCounting.DataPoints(request);
        byte[] payload;
        using (var encoded = OtlpRequestEncoder.Encode(request))
        {
            payload = _compressor.Wrap(encoded.Span).ToArray();
        }

        var size = HeaderSize + payload.Length;
        if (size > _maxBytes)
        {
            AgentMetrics.DroppedPoints.WithLabels(_exporter, "spool_full").Inc(points);
            LogDroppedOldest(_logger, _exporter, 1, points, _maxBytes);
            return;
        }

        DropOldestUntil(_maxBytes - size);
        var created = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var header = new byte[HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(header, Magic);
        header[4] = Version;
        header[5] = FlagZstd;
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), points);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), payload.Length);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16), created);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(24), Checksum(header, payload));

        var sequence = _nextSequence++;
        var path = Path.Combine(_directory, sequence.ToString("D16", CultureInfo.InvariantCulture) + Extension);
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            file.Write(header);
            file.Write(payload);
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path);
        DirectorySync.Flush(_directory);
        lock (_entries)
        {
            _entries.AddLast(new Entry(sequence, path, size, points, created));
        }

        Interlocked.Add(ref _bytes, size);
        AgentMetrics.SpooledBatches.WithLabels(_exporter).Inc();
        Publish();
    }

    private void DropOldestUntil(long room)
    {
        var batches = 0;
        var points = 0L;
        while (Bytes > room)
        {
            Entry oldest;
            lock (_entries)
            {
                if (_entries.First is null)
                {
                    break;
                }

                oldest = _entries.First.Value;
                _entries.RemoveFirst();
            }

            Delete(oldest);
            batches++;
            points += oldest.Points;
        }

        if (batches > 0)
        {
            AgentMetrics.DroppedPoints.WithLabels(_exporter, "spool_full").Inc(points);
            LogDroppedOldest(_logger, _exporter, batches, points, _maxBytes);
        }
    }

    /// <summary>The oldest batch, read and verified; a corrupt one is dropped and the next one tried.</summary>
    public bool TryPeekOldest(out long sequence, out ExportMetricsServiceRequest request, out int points)
    {
        while (true)
        {
            Entry entry;
            lock (_entries)
            {
                if (_entries.First is null)
                {
                    sequence = 0;
                    request = null!;
                    points = 0;
                    return false;
                }

                entry = _entries.First.Value;
            }

            string? problem;
            try
            {
                var bytes = File.ReadAllBytes(entry.Path);
                problem = Verify(bytes, out request);
            }
            catch (IOException ex)
            {
                problem = ex.Message;
                request = null!;
            }

            if (problem is null)
            {
                sequence = entry.Sequence;
                points = entry.Points;
                return true;
            }

            Remove(entry.Sequence);
            AgentMetrics.DroppedPoints.WithLabels(_exporter, "spool_corrupt").Inc(entry.Points);
            LogCorrupt(_logger, _exporter, entry.Path, entry.Points, problem);
        }
    }

    private string? Verify(byte[] bytes, out ExportMetricsServiceRequest request)
    {
        request = null!;
        if (bytes.Length < HeaderSize || !TryReadHeader(bytes, out _, out var length, out _) || HeaderSize + length != bytes.Length)
        {
            return "the header does not match the file";
        }

        var payload = bytes.AsSpan(HeaderSize);
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(24)) != Checksum(bytes.AsSpan(0, HeaderSize), payload))
        {
            return "the checksum does not match";
        }

        try
        {
            var raw = (bytes[5] & FlagZstd) != 0 ? _decompressor.Unwrap(payload).ToArray() : payload.ToArray();
            request = ExportMetricsServiceRequest.Parser.ParseFrom(raw);
            return null;
        }
        catch (Exception ex) when (ex is ZstdException or InvalidProtocolBufferException)
        {
            return ex.Message;
        }
    }

    /// <summary>Removes a batch once it was delivered (or given up); nothing happens if it was dropped meanwhile.</summary>
    public void Remove(long sequence)
    {
        Entry entry;
        lock (_entries)
        {
            if (_entries.First is not { } first || first.Value.Sequence != sequence)
            {
                return;
            }

            entry = first.Value;
            _entries.RemoveFirst();
        }

        Delete(entry);
        Publish();
    }

    private void Delete(Entry entry)
    {
        try
        {
            File.Delete(entry.Path);
        }
        catch (IOException ex)
        {
            LogDeleteFailed(_logger, _exporter, entry.Path, ex.Message);
        }

        Interlocked.Add(ref _bytes, -entry.Size);
    }

    private void Discard(string path, int points, string problem)
    {
        AgentMetrics.DroppedPoints.WithLabels(_exporter, "spool_corrupt").Inc(points);
        LogCorrupt(_logger, _exporter, path, points, problem);
        File.Delete(path);
    }

    private void Publish()
    {
        AgentMetrics.SpoolBatches.WithLabels(_exporter).Set(Count);
        AgentMetrics.SpoolBytes.WithLabels(_exporter).Set(Bytes);
        AgentMetrics.SpoolOldestAge.WithLabels(_exporter).Set(OldestAge.TotalSeconds);
    }

    private static uint Checksum(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload) =>
        Crc32C.Append(Crc32C.Append(0, header[..24]), payload);

    public void Dispose()
    {
        Publish();
        _compressor.Dispose();
        _decompressor.Dispose();
        _lock.Dispose();
    }

    private readonly record struct Entry(long Sequence, string Path, long Size, int Points, long CreatedMs);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Exporter {Exporter}: {Batches} batches ({Bytes} bytes) wait in the spool from before the restart; they are sent first.")]
    private static partial void LogReplaying(ILogger logger, string exporter, int batches, long bytes);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Error, Message = "Exporter {Exporter}: the spool is full (max_size {MaxBytes} bytes); the oldest {Batches} batches ({Points} points) were dropped.")]
    private static partial void LogDroppedOldest(ILogger logger, string exporter, int batches, long points, long maxBytes);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Error, Message = "Exporter {Exporter}: spool file {Path} is damaged ({Problem}); its {Points} points are dropped.")]
    private static partial void LogCorrupt(ILogger logger, string exporter, string path, int points, string problem);

    [LoggerMessage(EventId = 4104, Level = LogLevel.Warning, Message = "Exporter {Exporter}: spool file {Path} could not be deleted: {Reason}")]
    private static partial void LogDeleteFailed(ILogger logger, string exporter, string path, string reason);
}

/// <summary>CRC-32C (Castagnoli), the checksum of spool files.</summary>
internal static class Crc32C
{
    private static readonly uint[] Table = Build();

    private static uint[] Build()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0x82F63B78 ^ (c >> 1) : c >> 1;
            }

            table[i] = c;
        }

        return table;
    }

    /// <summary>Continues <paramref name="crc"/> (0 to start) over <paramref name="data"/>.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        var c = ~crc;
        foreach (var b in data)
        {
            c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        }

        return ~c;
    }
}

using System.Buffers.Binary;
using System.IO.Hashing;

namespace PgOtelGateway.Gateway.Export.S3;

/// <summary>
/// One staging journal: the OTLP requests of one future file, appended as records
/// <c>[length u32 LE][crc32 u32 LE][protobuf]</c> and synced to disk before the exporter acknowledges them.
/// A record cut short by a crash (or with a wrong checksum) ends the journal: it was never acknowledged.
/// </summary>
internal sealed class StagingJournal : IDisposable
{
    public const string Extension = ".journal";
    private readonly FileStream _stream;
    private readonly byte[] _header = new byte[8];

    private StagingJournal(string path, long sequence, FileStream stream)
    {
        Path = path;
        Sequence = sequence;
        _stream = stream;
        OpenedAt = DateTimeOffset.UtcNow;
    }

    public string Path { get; }

    public long Sequence { get; }

    public DateTimeOffset OpenedAt { get; }

    public long Length => _stream.Length;

    public int Records { get; private set; }

    /// <summary>The journal path of a sequence number in <paramref name="directory"/>.</summary>
    public static string PathOf(string directory, long sequence) => System.IO.Path.Combine(directory, sequence.ToString("D10", System.Globalization.CultureInfo.InvariantCulture) + Extension);

    /// <summary>Creates a new, empty journal.</summary>
    public static StagingJournal Create(string directory, long sequence)
    {
        var path = PathOf(directory, sequence);
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);

        // The journal's own fsyncs keep its records; this keeps the journal (its name in the directory).
        Shared.Storage.DirectorySync.Flush(directory);
        return new StagingJournal(path, sequence, stream);
    }

    /// <summary>Appends one record (buffered; <see cref="Sync"/> makes it durable).</summary>
    public void Append(ReadOnlySpan<byte> payload)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_header, (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(_header.AsSpan(4), Crc32.HashToUInt32(payload));
        _stream.Write(_header);
        _stream.Write(payload);
        Records++;
    }

    /// <summary>Writes the buffer out and fsyncs the file.</summary>
    public void Sync() => _stream.Flush(flushToDisk: true);

    public void Dispose() => _stream.Dispose();

    /// <summary>
    /// Reads every intact record of a closed journal. A torn or corrupt record ends the read; the bytes from
    /// there on are reported so the caller can count them.
    /// </summary>
    public static List<byte[]> ReadAll(string path, out long discardedBytes)
    {
        var records = new List<byte[]>();
        var data = File.ReadAllBytes(path);
        var offset = 0;
        while (offset + 8 <= data.Length)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset));
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset + 4));
            if (length < 0 || offset + 8L + length > data.Length)
            {
                break;
            }

            var payload = data.AsSpan(offset + 8, length);
            if (Crc32.HashToUInt32(payload) != crc)
            {
                break;
            }

            records.Add(payload.ToArray());
            offset += 8 + length;
        }

        discardedBytes = data.Length - offset;
        return records;
    }
}

using System.IO.Hashing;

namespace PgOtelGateway.Shared.Otlp;

/// <summary>
/// A fixed-size, direct-mapped cache from short byte strings to the object decoded from them, shared by all
/// threads without locks: a slot holds one immutable entry, and a miss replaces it. Agents send the same few
/// thousand attribute and metric-name encodings every interval, so a hit saves decoding and allocating them again;
/// data whose strings never repeat only pays the hash and the replaced entry.
/// </summary>
internal sealed class BytesCache<T>
    where T : class
{
    private readonly Entry?[] _slots;
    private readonly int _mask;

    public BytesCache(int slotsLog2, int maxLength)
    {
        _slots = new Entry?[1 << slotsLog2];
        _mask = _slots.Length - 1;
        MaxLength = maxLength;
    }

    /// <summary>Byte strings longer than this are not cached (long texts rarely repeat and would pin memory).</summary>
    public int MaxLength { get; }

    public T? Get(ReadOnlySpan<byte> bytes, out ulong hash)
    {
        hash = XxHash3.HashToUInt64(bytes);
        var entry = Volatile.Read(ref _slots[(int)hash & _mask]);
        return entry is not null && entry.Hash == hash && bytes.SequenceEqual(entry.Bytes) ? entry.Value : null;
    }

    public void Add(ReadOnlySpan<byte> bytes, ulong hash, T value) =>
        Volatile.Write(ref _slots[(int)hash & _mask], new Entry(hash, bytes.ToArray(), value));

    private sealed class Entry(ulong hash, byte[] bytes, T value)
    {
        public readonly ulong Hash = hash;
        public readonly byte[] Bytes = bytes;
        public readonly T Value = value;
    }
}

using System.Buffers;
using System.IO.Hashing;
using System.Text;
using PgOtelGateway.Shared.Translation;

namespace PgOtelGateway.Gateway.Export.RemoteWrite;

/// <summary>Where one encoded <c>TimeSeries</c> message sits in its request's buffer, and its shard hash.</summary>
internal readonly record struct SeriesRef(int Offset, int Length, ulong Hash);

/// <summary>One series of a batch being sent: series <paramref name="Index"/> of <paramref name="Request"/>.</summary>
internal readonly record struct BatchItem(EncodedRequest Request, int Index);

/// <summary>
/// A translation sink that writes each series straight into remote-write protobuf bytes (a <c>TimeSeries</c>
/// message: sorted labels, one sample) in one pooled buffer per request, instead of building <c>TimeSeries</c>,
/// <c>Label</c> and <c>Sample</c> objects per point. The bytes are what <c>TimeSeries.ToByteArray()</c> gives for
/// the same series; the sender frames them as <c>WriteRequest.timeseries</c> fields.
/// </summary>
internal sealed class RemoteWriteSeriesEncoder : ISeriesSink
{
    private readonly (string Name, string Value)[] _external;
    private (string Name, string Value)[] _labels = new (string, string)[32];
    private int[] _nameBytes = new int[32];
    private int[] _valueBytes = new int[32];
    private byte[] _buffer;
    private int _length;
    private SeriesRef[] _refs;
    private int _count;

    /// <param name="external">The exporter's external labels (added unless a series has the name already).</param>
    /// <param name="expectedSeries">A size hint for the pooled arrays.</param>
    public RemoteWriteSeriesEncoder((string Name, string Value)[] external, int expectedSeries)
    {
        _external = external;
        var series = Math.Max(16, expectedSeries);
        _buffer = BufferPools.Bytes.Rent(series * 160);
        _refs = ArrayPool<SeriesRef>.Shared.Rent(series);
    }

    /// <summary>Series written so far.</summary>
    public int Count => _count;

    public void Add(string metricName, LabelSet labels, string? extraName, string? extraValue, double value, long timestampMs)
    {
        // Gather the labels as LabelSet.ToSeries does: __name__, non-empty labels (the extra one replaces its
        // namesakes), the external labels not already present; then sort by name (ordinal).
        var entries = labels.Entries;
        EnsureLabelRoom(entries.Length + 2 + _external.Length);
        var n = 0;
        _labels[n++] = ("__name__", metricName);
        foreach (var (name, _, v) in entries)
        {
            if (v.Length > 0 && (extraName is null || name != extraName))
            {
                _labels[n++] = (name, v);
            }
        }

        if (extraName is not null && extraValue!.Length > 0)
        {
            _labels[n++] = (extraName, extraValue);
        }

        foreach (var (name, v) in _external)
        {
            if (!Has(n, name))
            {
                _labels[n++] = (name, v);
            }
        }

        SortByName(n);

        // Sizes first (protobuf needs the lengths up front), then the bytes.
        var labelsSize = 0;
        for (var i = 0; i < n; i++)
        {
            var nb = Encoding.UTF8.GetByteCount(_labels[i].Name);
            var vb = Encoding.UTF8.GetByteCount(_labels[i].Value);
            _nameBytes[i] = nb;
            _valueBytes[i] = vb;
            var label = StringFieldSize(nb) + StringFieldSize(vb);
            labelsSize += 1 + VarintSize((uint)label) + label;
        }

        var valueBits = BitConverter.DoubleToInt64Bits(value);
        var sample = (valueBits != 0 ? 9 : 0) + (timestampMs != 0 ? 1 + VarintSize((ulong)timestampMs) : 0);
        var size = labelsSize + 1 + VarintSize((uint)sample) + sample;

        EnsureRoom(size);
        var span = _buffer.AsSpan(_length, size);
        var pos = 0;
        for (var i = 0; i < n; i++)
        {
            var nb = _nameBytes[i];
            var vb = _valueBytes[i];
            span[pos++] = 0x0A; // TimeSeries.labels (1), length-delimited
            pos += WriteVarint(span[pos..], (uint)(StringFieldSize(nb) + StringFieldSize(vb)));
            if (nb > 0)
            {
                span[pos++] = 0x0A; // Label.name (1)
                pos += WriteVarint(span[pos..], (uint)nb);
                pos += Encoding.UTF8.GetBytes(_labels[i].Name, span[pos..]);
            }

            if (vb > 0)
            {
                span[pos++] = 0x12; // Label.value (2)
                pos += WriteVarint(span[pos..], (uint)vb);
                pos += Encoding.UTF8.GetBytes(_labels[i].Value, span[pos..]);
            }
        }

        var hash = XxHash3.HashToUInt64(span[..labelsSize]);
        span[pos++] = 0x12; // TimeSeries.samples (2), length-delimited
        pos += WriteVarint(span[pos..], (uint)sample);
        if (valueBits != 0)
        {
            span[pos++] = 0x09; // Sample.value (1), fixed64
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(span[pos..], valueBits);
            pos += 8;
        }

        if (timestampMs != 0)
        {
            span[pos++] = 0x10; // Sample.timestamp (2), varint
            pos += WriteVarint(span[pos..], (ulong)timestampMs);
        }

        if (_count == _refs.Length)
        {
            var bigger = ArrayPool<SeriesRef>.Shared.Rent(_refs.Length * 2);
            _refs.AsSpan(0, _count).CopyTo(bigger);
            ArrayPool<SeriesRef>.Shared.Return(_refs);
            _refs = bigger;
        }

        _refs[_count++] = new SeriesRef(_length, size, hash);
        _length += size;
    }

    /// <summary>
    /// Hands the buffer over to an <see cref="EncodedRequest"/> with its series grouped by shard (each shard's
    /// series in translation order). The encoder must not be used afterwards.
    /// </summary>
    public EncodedRequest Finish(int shards)
    {
        var starts = new int[shards + 1];
        for (var i = 0; i < _count; i++)
        {
            starts[(int)(_refs[i].Hash % (ulong)shards) + 1]++;
        }

        for (var s = 0; s < shards; s++)
        {
            starts[s + 1] += starts[s];
        }

        // A stable counting sort: per-series order within a shard is the request's order.
        var sorted = ArrayPool<SeriesRef>.Shared.Rent(Math.Max(1, _count));
        var next = ArrayPool<int>.Shared.Rent(shards);
        starts.AsSpan(0, shards).CopyTo(next);
        for (var i = 0; i < _count; i++)
        {
            var r = _refs[i];
            sorted[next[(int)(r.Hash % (ulong)shards)]++] = r;
        }

        ArrayPool<int>.Shared.Return(next);
        ArrayPool<SeriesRef>.Shared.Return(_refs);
        _refs = [];
        var request = new EncodedRequest(_buffer, sorted, starts, _count);
        _buffer = [];
        return request;
    }

    /// <summary>Gives the pooled arrays back when the series are not going anywhere (nothing translated).</summary>
    public void Abandon()
    {
        if (_buffer.Length > 0)
        {
            BufferPools.Bytes.Return(_buffer);
            _buffer = [];
        }

        if (_refs.Length > 0)
        {
            ArrayPool<SeriesRef>.Shared.Return(_refs);
            _refs = [];
        }
    }

    private bool Has(int n, string name)
    {
        for (var i = 0; i < n; i++)
        {
            if (_labels[i].Name == name)
            {
                return true;
            }
        }

        return false;
    }

    private void SortByName(int n)
    {
        // Insertion sort: a series has a handful of labels, and this allocates nothing.
        for (var i = 1; i < n; i++)
        {
            var item = _labels[i];
            var j = i - 1;
            while (j >= 0 && string.CompareOrdinal(_labels[j].Name, item.Name) > 0)
            {
                _labels[j + 1] = _labels[j];
                j--;
            }

            _labels[j + 1] = item;
        }
    }

    private void EnsureLabelRoom(int labels)
    {
        if (labels > _labels.Length)
        {
            var size = Math.Max(labels, _labels.Length * 2);
            _labels = new (string, string)[size];
            _nameBytes = new int[size];
            _valueBytes = new int[size];
        }
    }

    private void EnsureRoom(int size)
    {
        if (_length + size > _buffer.Length)
        {
            var bigger = BufferPools.Bytes.Rent(Math.Max(_buffer.Length * 2, _length + size));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            BufferPools.Bytes.Return(_buffer);
            _buffer = bigger;
        }
    }

    private static int StringFieldSize(int bytes) => bytes == 0 ? 0 : 1 + VarintSize((uint)bytes) + bytes;

    /// <summary>Bytes a protobuf varint of <paramref name="value"/> takes.</summary>
    public static int VarintSize(ulong value) => (70 - System.Numerics.BitOperations.LeadingZeroCount(value | 1)) / 7;

    /// <summary>Writes a protobuf varint; returns the bytes written.</summary>
    public static int WriteVarint(Span<byte> span, ulong value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        return i;
    }
}

/// <summary>
/// One request's encoded series, grouped by shard, owned jointly by the shards' senders: when the last series has
/// been delivered (or dropped as not retryable) the pooled arrays go back and the request's task completes.
/// </summary>
internal sealed class EncodedRequest
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int[] _shardStarts;
    private byte[] _buffer;
    private SeriesRef[] _series;
    private int _remaining;

    public EncodedRequest(byte[] buffer, SeriesRef[] series, int[] shardStarts, int count)
    {
        _buffer = buffer;
        _series = series;
        _shardStarts = shardStarts;
        _remaining = count;
        Count = count;
    }

    /// <summary>Series in the request.</summary>
    public int Count { get; }

    public Task Task => _done.Task;

    /// <summary>The first series of shard <paramref name="shard"/> and the one after its last.</summary>
    public (int Start, int End) Shard(int shard) => (_shardStarts[shard], _shardStarts[shard + 1]);

    /// <summary>The encoded <c>TimeSeries</c> message of series <paramref name="index"/> (valid until completion).</summary>
    public ReadOnlySpan<byte> Series(int index)
    {
        var r = _series[index];
        return _buffer.AsSpan(r.Offset, r.Length);
    }

    /// <summary>The encoded length of series <paramref name="index"/>.</summary>
    public int Length(int index) => _series[index].Length;

    /// <summary><paramref name="series"/> more series left the gateway; the last one completes the request.</summary>
    public void Signal(int series)
    {
        if (Interlocked.Add(ref _remaining, -series) == 0)
        {
            var buffer = Interlocked.Exchange(ref _buffer, []);
            var refs = Interlocked.Exchange(ref _series, []);
            if (buffer.Length > 0)
            {
                BufferPools.Bytes.Return(buffer);
            }

            if (refs.Length > 0)
            {
                ArrayPool<SeriesRef>.Shared.Return(refs);
            }

            _done.TrySetResult();
        }
    }

    /// <summary>The exporter stopped before all series were queued: the durable queue replays the request.</summary>
    public void Fail() => _done.TrySetException(new Shared.Pipeline.PipelineRefusedException(
        Shared.Pipeline.RefusalReason.ShuttingDown, "the exporter has stopped", TimeSpan.FromSeconds(1)));
}

using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Collections;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Agent.Export;

/// <summary>
/// Encodes an <see cref="ExportMetricsServiceRequest"/> into pooled bytes, byte for byte what Google.Protobuf's
/// <c>ToByteArray()</c> gives. Google.Protobuf computes a nested message's size again at every level it is written
/// from (a point attribute's value sits 7 levels deep); this encoder writes back to front, last field first, so a
/// message's length is known once its fields are written and goes in front of them: every size is computed once,
/// bottom-up, in the same pass that writes the bytes. A <see cref="KeyValue"/> object met again in the same request
/// (the scrape shares one per database, schema, table and index name) is copied from its first encoding.
/// </summary>
/// <remarks>
/// Fields go out in field-number order with Google.Protobuf's presence rules (proto3 defaults left out, oneof and
/// <c>optional</c> members by their case). Unknown fields of parsed messages are not written: the agent builds its
/// requests, and its spool holds only what this encoder or Google.Protobuf wrote. One instance per request.
/// </remarks>
internal sealed class OtlpRequestEncoder
{
    // The key-value cache is direct-mapped by the object's identity hash, one slot per point up to 32,768: enough
    // for the names of a 20 × 500-table scrape (a table's name comes back once per table metric, ~10,000 attributes
    // later) without clearing a big table for a small request. A collision only costs a fresh encoding.
    private const int MinCache = 256;
    private const int MaxCache = 1 << 15;
    private const int MinBuffer = 64 << 10;

    private static readonly Encoding Utf8 = Encoding.UTF8;

    /// <summary>The last request's length: the next buffer starts that big, instead of growing there by doubling.</summary>
    private static int s_lengthHint = MinBuffer;

    /// <summary>The encoding buffer, kept between requests (see <see cref="SpareBuffer"/>).</summary>
    internal static readonly SpareBuffer Buffers = new();

    private readonly CachedKeyValue[] _cache;
    private readonly int _cacheMask;
    private byte[] _buffer;

    /// <summary>The encoding so far is <c>_buffer[_position..]</c>; it grows towards the start.</summary>
    private int _position;

    private OtlpRequestEncoder(int points)
    {
        _buffer = Buffers.Rent(Volatile.Read(ref s_lengthHint));
        _position = _buffer.Length;
        var slots = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(points, MinCache, MaxCache));
        _cacheMask = slots - 1;

        // Pooled arrays of this private type are only ever returned cleared (below), so no slot is stale.
        _cache = ArrayPool<CachedKeyValue>.Shared.Rent(slots);
    }

    /// <summary>Encodes <paramref name="request"/>; dispose the result to return its buffer to the pool.</summary>
    public static EncodedRequest Encode(ExportMetricsServiceRequest request)
    {
        var encoder = new OtlpRequestEncoder(MetricsCounting.DataPoints(request));
        try
        {
            encoder.WriteRequest(request);
        }
        catch
        {
            Buffers.Return(encoder._buffer);
            throw;
        }
        finally
        {
            // Clearing drops the references to the request's attributes, which must not outlive it in the pool.
            Array.Clear(encoder._cache, 0, encoder._cacheMask + 1);
            ArrayPool<CachedKeyValue>.Shared.Return(encoder._cache);
        }

        Volatile.Write(ref s_lengthHint, Math.Max(MinBuffer, encoder.Written));
        return new EncodedRequest(encoder._buffer, encoder._position);
    }

    /// <summary>Bytes written so far (their distance from the buffer's end does not change when it grows).</summary>
    private int Written => _buffer.Length - _position;

    private void WriteRequest(ExportMetricsServiceRequest request)
    {
        var resources = request.ResourceMetrics;
        for (var i = resources.Count - 1; i >= 0; i--)
        {
            WriteResourceMetrics(0x0A, resources[i]);
        }
    }

    private void WriteResourceMetrics(byte tag, ResourceMetrics rm)
    {
        var start = Written;
        String(0x1A, rm.SchemaUrl);
        var scopes = rm.ScopeMetrics;
        for (var i = scopes.Count - 1; i >= 0; i--)
        {
            WriteScopeMetrics(0x12, scopes[i]);
        }

        if (rm.Resource is { } resource)
        {
            WriteResource(0x0A, resource);
        }

        Prefix(tag, start);
    }

    private void WriteResource(byte tag, Resource resource)
    {
        var start = Written;
        var refs = resource.EntityRefs;
        for (var i = refs.Count - 1; i >= 0; i--)
        {
            WriteEntityRef(0x1A, refs[i]);
        }

        Varint(0x10, resource.DroppedAttributesCount);
        WriteAttributes(0x0A, resource.Attributes);
        Prefix(tag, start);
    }

    private void WriteEntityRef(byte tag, EntityRef entity)
    {
        var start = Written;
        Strings(0x22, entity.DescriptionKeys);
        Strings(0x1A, entity.IdKeys);
        String(0x12, entity.Type);
        String(0x0A, entity.SchemaUrl);
        Prefix(tag, start);
    }

    private void WriteScopeMetrics(byte tag, ScopeMetrics sm)
    {
        var start = Written;
        String(0x1A, sm.SchemaUrl);
        var metrics = sm.Metrics;
        for (var i = metrics.Count - 1; i >= 0; i--)
        {
            WriteMetric(0x12, metrics[i]);
        }

        if (sm.Scope is { } scope)
        {
            WriteScope(0x0A, scope);
        }

        Prefix(tag, start);
    }

    private void WriteScope(byte tag, InstrumentationScope scope)
    {
        var start = Written;
        Varint(0x20, scope.DroppedAttributesCount);
        WriteAttributes(0x1A, scope.Attributes);
        String(0x12, scope.Version);
        String(0x0A, scope.Name);
        Prefix(tag, start);
    }

    private void WriteMetric(byte tag, Metric metric)
    {
        var start = Written;
        WriteAttributes(0x62, metric.Metadata);
        switch (metric.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
                WriteGauge(0x2A, metric.Gauge);
                break;
            case Metric.DataOneofCase.Sum:
                WriteSum(0x3A, metric.Sum);
                break;
            case Metric.DataOneofCase.Histogram:
                WriteHistogram(0x4A, metric.Histogram);
                break;
            case Metric.DataOneofCase.ExponentialHistogram:
                WriteExponentialHistogram(0x52, metric.ExponentialHistogram);
                break;
            case Metric.DataOneofCase.Summary:
                WriteSummary(0x5A, metric.Summary);
                break;
        }

        String(0x1A, metric.Unit);
        String(0x12, metric.Description);
        String(0x0A, metric.Name);
        Prefix(tag, start);
    }

    private void WriteGauge(byte tag, Gauge gauge)
    {
        var start = Written;
        WriteNumberPoints(gauge.DataPoints);
        Prefix(tag, start);
    }

    private void WriteSum(byte tag, Sum sum)
    {
        var start = Written;
        if (sum.IsMonotonic)
        {
            Varint(0x18, 1);
        }

        Int32(0x10, (int)sum.AggregationTemporality);
        WriteNumberPoints(sum.DataPoints);
        Prefix(tag, start);
    }

    private void WriteNumberPoints(RepeatedField<NumberDataPoint> points)
    {
        for (var i = points.Count - 1; i >= 0; i--)
        {
            WriteNumberPoint(0x0A, points[i]);
        }
    }

    private void WriteNumberPoint(byte tag, NumberDataPoint point)
    {
        var start = Written;
        Varint(0x40, point.Flags);
        WriteAttributes(0x3A, point.Attributes);
        if (point.ValueCase == NumberDataPoint.ValueOneofCase.AsInt)
        {
            Fixed64Field(0x31, (ulong)point.AsInt);
        }

        WriteExemplars(0x2A, point.Exemplars);
        if (point.ValueCase == NumberDataPoint.ValueOneofCase.AsDouble)
        {
            DoubleField(0x21, point.AsDouble);
        }

        Fixed64(0x19, point.TimeUnixNano);
        Fixed64(0x11, point.StartTimeUnixNano);
        Prefix(tag, start);
    }

    private void WriteHistogram(byte tag, Histogram histogram)
    {
        var start = Written;
        Int32(0x10, (int)histogram.AggregationTemporality);
        var points = histogram.DataPoints;
        for (var i = points.Count - 1; i >= 0; i--)
        {
            WriteHistogramPoint(0x0A, points[i]);
        }

        Prefix(tag, start);
    }

    private void WriteHistogramPoint(byte tag, HistogramDataPoint point)
    {
        var start = Written;
        if (point.HasMax)
        {
            DoubleField(0x61, point.Max);
        }

        if (point.HasMin)
        {
            DoubleField(0x59, point.Min);
        }

        Varint(0x50, point.Flags);
        WriteAttributes(0x4A, point.Attributes);
        WriteExemplars(0x42, point.Exemplars);
        PackedDoubles(0x3A, point.ExplicitBounds);
        PackedFixed64(0x32, point.BucketCounts);
        if (point.HasSum)
        {
            DoubleField(0x29, point.Sum);
        }

        Fixed64(0x21, point.Count);
        Fixed64(0x19, point.TimeUnixNano);
        Fixed64(0x11, point.StartTimeUnixNano);
        Prefix(tag, start);
    }

    private void WriteExponentialHistogram(byte tag, ExponentialHistogram histogram)
    {
        var start = Written;
        Int32(0x10, (int)histogram.AggregationTemporality);
        var points = histogram.DataPoints;
        for (var i = points.Count - 1; i >= 0; i--)
        {
            WriteExponentialHistogramPoint(0x0A, points[i]);
        }

        Prefix(tag, start);
    }

    private void WriteExponentialHistogramPoint(byte tag, ExponentialHistogramDataPoint point)
    {
        var start = Written;
        if (point.ZeroThreshold != 0D)
        {
            DoubleField(0x71, point.ZeroThreshold);
        }

        if (point.HasMax)
        {
            DoubleField(0x69, point.Max);
        }

        if (point.HasMin)
        {
            DoubleField(0x61, point.Min);
        }

        WriteExemplars(0x5A, point.Exemplars);
        Varint(0x50, point.Flags);
        if (point.Negative is { } negative)
        {
            WriteBuckets(0x4A, negative);
        }

        if (point.Positive is { } positive)
        {
            WriteBuckets(0x42, positive);
        }

        Fixed64(0x39, point.ZeroCount);
        if (point.Scale != 0)
        {
            Varint(0x30, ZigZag(point.Scale));
        }

        if (point.HasSum)
        {
            DoubleField(0x29, point.Sum);
        }

        Fixed64(0x21, point.Count);
        Fixed64(0x19, point.TimeUnixNano);
        Fixed64(0x11, point.StartTimeUnixNano);
        WriteAttributes(0x0A, point.Attributes);
        Prefix(tag, start);
    }

    private void WriteBuckets(byte tag, ExponentialHistogramDataPoint.Types.Buckets buckets)
    {
        var start = Written;
        var counts = buckets.BucketCounts;
        if (counts.Count > 0)
        {
            var packed = Written;
            for (var i = counts.Count - 1; i >= 0; i--)
            {
                VarintValue(counts[i]);
            }

            Prefix(0x12, packed);
        }

        if (buckets.Offset != 0)
        {
            Varint(0x08, ZigZag(buckets.Offset));
        }

        Prefix(tag, start);
    }

    private void WriteSummary(byte tag, Summary summary)
    {
        var start = Written;
        var points = summary.DataPoints;
        for (var i = points.Count - 1; i >= 0; i--)
        {
            WriteSummaryPoint(0x0A, points[i]);
        }

        Prefix(tag, start);
    }

    private void WriteSummaryPoint(byte tag, SummaryDataPoint point)
    {
        var start = Written;
        Varint(0x40, point.Flags);
        WriteAttributes(0x3A, point.Attributes);
        var quantiles = point.QuantileValues;
        for (var i = quantiles.Count - 1; i >= 0; i--)
        {
            var quantile = quantiles[i];
            var q = Written;
            Double(0x11, quantile.Value);
            Double(0x09, quantile.Quantile);
            Prefix(0x32, q);
        }

        Double(0x29, point.Sum);
        Fixed64(0x21, point.Count);
        Fixed64(0x19, point.TimeUnixNano);
        Fixed64(0x11, point.StartTimeUnixNano);
        Prefix(tag, start);
    }

    private void WriteExemplars(byte tag, RepeatedField<Exemplar> exemplars)
    {
        for (var i = exemplars.Count - 1; i >= 0; i--)
        {
            var exemplar = exemplars[i];
            var start = Written;
            WriteAttributes(0x3A, exemplar.FilteredAttributes);
            if (exemplar.ValueCase == Exemplar.ValueOneofCase.AsInt)
            {
                Fixed64Field(0x31, (ulong)exemplar.AsInt);
            }

            Bytes(0x2A, exemplar.TraceId);
            Bytes(0x22, exemplar.SpanId);
            if (exemplar.ValueCase == Exemplar.ValueOneofCase.AsDouble)
            {
                DoubleField(0x19, exemplar.AsDouble);
            }

            Fixed64(0x11, exemplar.TimeUnixNano);
            Prefix(tag, start);
        }
    }

    private void WriteAttributes(byte tag, RepeatedField<KeyValue> attributes)
    {
        for (var i = attributes.Count - 1; i >= 0; i--)
        {
            WriteKeyValue(tag, attributes[i]);
        }
    }

    /// <summary>A key-value pair; one already encoded in this request is copied (its length prefix included).</summary>
    private void WriteKeyValue(byte tag, KeyValue kv)
    {
        ref var cached = ref _cache[RuntimeHelpers.GetHashCode(kv) & _cacheMask];
        if (ReferenceEquals(cached.Attribute, kv))
        {
            var length = cached.Length;
            var target = Reserve(length);
            _buffer.AsSpan(_buffer.Length - cached.End, length).CopyTo(target);
            Tag(tag);
            return;
        }

        var start = Written;
        Int32(0x18, kv.KeyStrindex);
        if (kv.Value is { } value)
        {
            WriteAnyValue(0x12, value);
        }

        String(0x0A, kv.Key);
        VarintValue((uint)(Written - start));
        cached = new CachedKeyValue(kv, Written, Written - start);
        Tag(tag);
    }

    private void WriteAnyValue(byte tag, AnyValue value)
    {
        var start = Written;
        switch (value.ValueCase)
        {
            case AnyValue.ValueOneofCase.StringValue:
                StringField(0x0A, value.StringValue);
                break;
            case AnyValue.ValueOneofCase.BoolValue:
                VarintField(0x10, value.BoolValue ? 1UL : 0UL);
                break;
            case AnyValue.ValueOneofCase.IntValue:
                VarintField(0x18, (ulong)value.IntValue);
                break;
            case AnyValue.ValueOneofCase.DoubleValue:
                DoubleField(0x21, value.DoubleValue);
                break;
            case AnyValue.ValueOneofCase.ArrayValue:
                var array = Written;
                var values = value.ArrayValue.Values;
                for (var i = values.Count - 1; i >= 0; i--)
                {
                    WriteAnyValue(0x0A, values[i]);
                }

                Prefix(0x2A, array);
                break;
            case AnyValue.ValueOneofCase.KvlistValue:
                var list = Written;
                WriteAttributes(0x0A, value.KvlistValue.Values);
                Prefix(0x32, list);
                break;
            case AnyValue.ValueOneofCase.BytesValue:
                BytesField(0x3A, value.BytesValue);
                break;
            case AnyValue.ValueOneofCase.StringValueStrindex:
                VarintField(0x40, (ulong)(long)value.StringValueStrindex);
                break;
        }

        Prefix(tag, start);
    }

    // Field writers: each writes its value, then what goes in front of it (length, tag), since the encoding grows
    // towards the start. The ...Field ones always write; the others leave proto3 defaults out, as Google.Protobuf does.

    /// <summary>The length of what was written since <paramref name="start"/>, then the tag: a nested message's head.</summary>
    private void Prefix(byte tag, int start)
    {
        VarintValue((uint)(Written - start));
        Tag(tag);
    }

    private void String(byte tag, string text)
    {
        if (text.Length != 0)
        {
            StringField(tag, text);
        }
    }

    private void StringField(byte tag, string text)
    {
        var length = Utf8.GetByteCount(text);
        Utf8.GetBytes(text, Reserve(length));
        VarintValue((uint)length);
        Tag(tag);
    }

    private void Strings(byte tag, RepeatedField<string> texts)
    {
        for (var i = texts.Count - 1; i >= 0; i--)
        {
            StringField(tag, texts[i]);
        }
    }

    private void Bytes(byte tag, ByteString bytes)
    {
        if (bytes.Length != 0)
        {
            BytesField(tag, bytes);
        }
    }

    private void BytesField(byte tag, ByteString bytes)
    {
        bytes.Span.CopyTo(Reserve(bytes.Length));
        VarintValue((uint)bytes.Length);
        Tag(tag);
    }

    private void PackedFixed64(byte tag, RepeatedField<ulong> values)
    {
        if (values.Count == 0)
        {
            return;
        }

        var target = Reserve(values.Count * 8);
        for (var i = 0; i < values.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(target[(i * 8)..], values[i]);
        }

        VarintValue((uint)target.Length);
        Tag(tag);
    }

    private void PackedDoubles(byte tag, RepeatedField<double> values)
    {
        if (values.Count == 0)
        {
            return;
        }

        var target = Reserve(values.Count * 8);
        for (var i = 0; i < values.Count; i++)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(target[(i * 8)..], values[i]);
        }

        VarintValue((uint)target.Length);
        Tag(tag);
    }

    private void Fixed64(byte tag, ulong value)
    {
        if (value != 0)
        {
            Fixed64Field(tag, value);
        }
    }

    private void Double(byte tag, double value)
    {
        if (value != 0D)
        {
            DoubleField(tag, value);
        }
    }

    private void DoubleField(byte tag, double value) => Fixed64Field(tag, BitConverter.DoubleToUInt64Bits(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Fixed64Field(byte tag, ulong value)
    {
        var target = Reserve(9);
        target[0] = tag;
        BinaryPrimitives.WriteUInt64LittleEndian(target[1..], value);
    }

    /// <summary>An int32 or enum field: a negative value takes ten bytes, sign-extended, as in Google.Protobuf.</summary>
    private void Int32(byte tag, int value) => Varint(tag, (ulong)(long)value);

    private void Varint(byte tag, ulong value)
    {
        if (value != 0)
        {
            VarintField(tag, value);
        }
    }

    private void VarintField(byte tag, ulong value)
    {
        VarintValue(value);
        Tag(tag);
    }

    private static uint ZigZag(int value) => (uint)((value << 1) ^ (value >> 31));

    private void VarintValue(ulong value)
    {
        var length = (BitOperations.Log2(value | 1) / 7) + 1;
        var target = Reserve(length);
        for (var i = 0; i < length - 1; i++)
        {
            target[i] = (byte)(value | 0x80);
            value >>= 7;
        }

        target[length - 1] = (byte)value;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Tag(byte value)
    {
        if (_position == 0)
        {
            Grow(1);
        }

        _buffer[--_position] = value;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Reserve(int length)
    {
        if (_position < length)
        {
            Grow(length);
        }

        _position -= length;
        return _buffer.AsSpan(_position, length);
    }

    /// <summary>A bigger buffer with the encoding so far at its end.</summary>
    private void Grow(int length)
    {
        var written = Written;
        var bigger = Buffers.Rent(Math.Max(checked(_buffer.Length * 2), checked(written + length)));
        _buffer.AsSpan(_position).CopyTo(bigger.AsSpan(bigger.Length - written));
        Buffers.Return(_buffer);
        _buffer = bigger;
        _position = bigger.Length - written;
    }

    /// <summary>Where a key-value pair's encoding (length prefix and fields, without the tag) sits, from the buffer's end.</summary>
    private readonly record struct CachedKeyValue(KeyValue? Attribute, int End, int Length);
}

/// <summary>An encoded request in the encoder's kept buffer; <see cref="Dispose"/> gives the buffer back.</summary>
internal sealed class EncodedRequest : IDisposable
{
    private byte[]? _buffer;
    private readonly int _offset;

    internal EncodedRequest(byte[] buffer, int offset)
    {
        _buffer = buffer;
        _offset = offset;
    }

    public int Length => Buffer.Length - _offset;

    public ReadOnlySpan<byte> Span => Buffer.AsSpan(_offset);

    private byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(EncodedRequest));

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            OtlpRequestEncoder.Buffers.Return(buffer);
        }
    }
}

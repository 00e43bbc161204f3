using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Collections;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;

namespace PgOtelGateway.Shared.Otlp;

/// <summary>
/// Decodes an OTLP <c>ExportMetricsServiceRequest</c> into the generated classes, as
/// <c>ExportMetricsServiceRequest.Parser.ParseFrom</c> does, but without decoding what repeats: an attribute whose
/// encoding was seen before is the same <see cref="KeyValue"/> object as last time, and metric names, units and
/// attribute keys come from a cache of strings. An agent sends the same attributes on every point of a table and
/// every interval, so most of a request's attributes cost a hash and no allocation.
/// <para>
/// Sharing attribute objects means they must not be changed in place: code that changes an attribute replaces
/// the <see cref="KeyValue"/> in its list instead (the processors do). Attributes whose value is an array or a
/// key-value list are never shared.
/// </para>
/// <para>
/// Anything this reader does not expect (a field it does not know, a field repeated where Google's parser would
/// merge, a malformed message) hands the bytes to Google's parser, which keeps unknown fields and words the errors,
/// so the result and the errors are always the generated parser's.
/// </para>
/// </summary>
public static class OtlpRequestReader
{
    private const int WireVarint = 0;
    private const int WireFixed64 = 1;
    private const int WireLength = 2;

    // Attribute values nest (arrays, key-value lists); deeper than this goes to Google's parser, whose own limit
    // then applies, rather than recursing here without bound.
    private const int MaxValueDepth = 32;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static readonly BytesCache<KeyValue> Attributes = new(slotsLog2: 15, maxLength: 256);
    private static readonly BytesCache<string> Strings = new(slotsLog2: 12, maxLength: 256);

    private static long _fallbacks;

    /// <summary>Requests handed to Google's parser so far (unknown fields, merges, malformed input).</summary>
    public static long Fallbacks => Interlocked.Read(ref _fallbacks);

    /// <summary>Decodes <paramref name="data"/>; throws <see cref="InvalidProtocolBufferException"/> as Google's parser does.</summary>
    public static ExportMetricsServiceRequest Parse(ReadOnlySequence<byte> data)
    {
        if (data.IsSingleSegment)
        {
            return Parse(data.FirstSpan);
        }

        // A request that arrived in several buffers is read from one copy.
        var length = checked((int)data.Length);
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            data.CopyTo(buffer);
            return Parse(buffer.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <inheritdoc cref="Parse(ReadOnlySequence{byte})"/>
    public static ExportMetricsServiceRequest Parse(ReadOnlySpan<byte> data)
    {
        try
        {
            var request = new ExportMetricsServiceRequest();
            ReadOnlyField1(data, request.ResourceMetrics, ReadResourceMetrics);
            return request;
        }
        catch (FallbackException)
        {
            Interlocked.Increment(ref _fallbacks);
            return ExportMetricsServiceRequest.Parser.ParseFrom(data);
        }
    }

    private static ResourceMetrics ReadResourceMetrics(ReadOnlySpan<byte> data)
    {
        var rm = new ResourceMetrics();
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 1 when wire == WireLength && rm.Resource is null:
                    rm.Resource = ReadResource(reader.Bytes());
                    break;
                case 2 when wire == WireLength:
                    rm.ScopeMetrics.Add(ReadScopeMetrics(reader.Bytes()));
                    break;
                case 3 when wire == WireLength:
                    rm.SchemaUrl = String(reader.Bytes());
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return rm;
    }

    private static Resource ReadResource(ReadOnlySpan<byte> data)
    {
        var resource = new Resource();
        Presize(resource.Attributes, data, 1);
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 1 when wire == WireLength:
                    resource.Attributes.Add(ReadKeyValue(reader.Bytes()));
                    break;
                case 2 when wire == WireVarint:
                    resource.DroppedAttributesCount = (uint)reader.Varint();
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return resource;
    }

    private static ScopeMetrics ReadScopeMetrics(ReadOnlySpan<byte> data)
    {
        var sm = new ScopeMetrics();
        Presize(sm.Metrics, data, 2);
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 1 when wire == WireLength && sm.Scope is null:
                    sm.Scope = ReadScope(reader.Bytes());
                    break;
                case 2 when wire == WireLength:
                    sm.Metrics.Add(ReadMetric(reader.Bytes()));
                    break;
                case 3 when wire == WireLength:
                    sm.SchemaUrl = String(reader.Bytes());
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return sm;
    }

    private static InstrumentationScope ReadScope(ReadOnlySpan<byte> data)
    {
        var scope = new InstrumentationScope();
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 1 when wire == WireLength:
                    scope.Name = String(reader.Bytes());
                    break;
                case 2 when wire == WireLength:
                    scope.Version = String(reader.Bytes());
                    break;
                case 3 when wire == WireLength:
                    scope.Attributes.Add(ReadKeyValue(reader.Bytes()));
                    break;
                case 4 when wire == WireVarint:
                    scope.DroppedAttributesCount = (uint)reader.Varint();
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return scope;
    }

    private static Metric ReadMetric(ReadOnlySpan<byte> data)
    {
        var metric = new Metric();
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            if (wire != WireLength)
            {
                throw new FallbackException();
            }

            // A second data field would be merged (same kind) or replace the first (another kind) by Google's parser.
            if (field is 5 or 7 or 9 or 10 or 11 && metric.DataCase != Metric.DataOneofCase.None)
            {
                throw new FallbackException();
            }

            switch (field)
            {
                case 1:
                    metric.Name = String(reader.Bytes());
                    break;
                case 2:
                    metric.Description = String(reader.Bytes());
                    break;
                case 3:
                    metric.Unit = String(reader.Bytes());
                    break;
                case 5:
                    metric.Gauge = ReadGauge(reader.Bytes());
                    break;
                case 7:
                    metric.Sum = ReadSum(reader.Bytes());
                    break;
                case 9:
                    metric.Histogram = ReadHistogram(reader.Bytes());
                    break;
                case 10:
                    metric.ExponentialHistogram = ReadExponentialHistogram(reader.Bytes());
                    break;
                case 11:
                    metric.Summary = ReadSummary(reader.Bytes());
                    break;
                case 12:
                    metric.Metadata.Add(ReadKeyValue(reader.Bytes()));
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return metric;
    }

    private static Gauge ReadGauge(ReadOnlySpan<byte> data)
    {
        var gauge = new Gauge();
        ReadOnlyField1(data, gauge.DataPoints, ReadNumberPoint);
        return gauge;
    }

    private static Sum ReadSum(ReadOnlySpan<byte> data)
    {
        var sum = new Sum();
        Presize(sum.DataPoints, data, 1);
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 1 when wire == WireLength:
                    sum.DataPoints.Add(ReadNumberPoint(reader.Bytes()));
                    break;
                case 2 when wire == WireVarint:
                    sum.AggregationTemporality = (AggregationTemporality)(int)reader.Varint();
                    break;
                case 3 when wire == WireVarint:
                    sum.IsMonotonic = reader.Varint() != 0;
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return sum;
    }

    private static Histogram ReadHistogram(ReadOnlySpan<byte> data)
    {
        var histogram = new Histogram();
        Presize(histogram.DataPoints, data, 1);
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 1 when wire == WireLength:
                    histogram.DataPoints.Add(ReadHistogramPoint(reader.Bytes()));
                    break;
                case 2 when wire == WireVarint:
                    histogram.AggregationTemporality = (AggregationTemporality)(int)reader.Varint();
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return histogram;
    }

    private static ExponentialHistogram ReadExponentialHistogram(ReadOnlySpan<byte> data)
    {
        var histogram = new ExponentialHistogram();
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 1 when wire == WireLength:
                    histogram.DataPoints.Add(ReadExponentialPoint(reader.Bytes()));
                    break;
                case 2 when wire == WireVarint:
                    histogram.AggregationTemporality = (AggregationTemporality)(int)reader.Varint();
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return histogram;
    }

    private static Summary ReadSummary(ReadOnlySpan<byte> data)
    {
        var summary = new Summary();
        ReadOnlyField1(data, summary.DataPoints, ReadSummaryPoint);
        return summary;
    }

    private static NumberDataPoint ReadNumberPoint(ReadOnlySpan<byte> data)
    {
        var point = new NumberDataPoint();
        Presize(point.Attributes, data, 7);
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 7 when wire == WireLength:
                    point.Attributes.Add(ReadKeyValue(reader.Bytes()));
                    break;
                case 2 when wire == WireFixed64:
                    point.StartTimeUnixNano = reader.Fixed64();
                    break;
                case 3 when wire == WireFixed64:
                    point.TimeUnixNano = reader.Fixed64();
                    break;
                case 4 when wire == WireFixed64:
                    point.AsDouble = reader.Double();
                    break;
                case 6 when wire == WireFixed64:
                    point.AsInt = (long)reader.Fixed64();
                    break;
                case 5 when wire == WireLength:
                    point.Exemplars.Add(ReadExemplar(reader.Bytes()));
                    break;
                case 8 when wire == WireVarint:
                    point.Flags = (uint)reader.Varint();
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return point;
    }

    private static HistogramDataPoint ReadHistogramPoint(ReadOnlySpan<byte> data)
    {
        var point = new HistogramDataPoint();
        Presize(point.Attributes, data, 9);
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 9 when wire == WireLength:
                    point.Attributes.Add(ReadKeyValue(reader.Bytes()));
                    break;
                case 2 when wire == WireFixed64:
                    point.StartTimeUnixNano = reader.Fixed64();
                    break;
                case 3 when wire == WireFixed64:
                    point.TimeUnixNano = reader.Fixed64();
                    break;
                case 4 when wire == WireFixed64:
                    point.Count = reader.Fixed64();
                    break;
                case 5 when wire == WireFixed64:
                    point.Sum = reader.Double();
                    break;
                case 6:
                    ReadFixed64s(ref reader, wire, point.BucketCounts, static bits => bits);
                    break;
                case 7:
                    ReadFixed64s(ref reader, wire, point.ExplicitBounds, BitConverter.UInt64BitsToDouble);
                    break;
                case 8 when wire == WireLength:
                    point.Exemplars.Add(ReadExemplar(reader.Bytes()));
                    break;
                case 10 when wire == WireVarint:
                    point.Flags = (uint)reader.Varint();
                    break;
                case 11 when wire == WireFixed64:
                    point.Min = reader.Double();
                    break;
                case 12 when wire == WireFixed64:
                    point.Max = reader.Double();
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return point;
    }

    private static ExponentialHistogramDataPoint ReadExponentialPoint(ReadOnlySpan<byte> data)
    {
        var point = new ExponentialHistogramDataPoint();
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 1 when wire == WireLength:
                    point.Attributes.Add(ReadKeyValue(reader.Bytes()));
                    break;
                case 2 when wire == WireFixed64:
                    point.StartTimeUnixNano = reader.Fixed64();
                    break;
                case 3 when wire == WireFixed64:
                    point.TimeUnixNano = reader.Fixed64();
                    break;
                case 4 when wire == WireFixed64:
                    point.Count = reader.Fixed64();
                    break;
                case 5 when wire == WireFixed64:
                    point.Sum = reader.Double();
                    break;
                case 6 when wire == WireVarint:
                    point.Scale = ZigZag32(reader.Varint());
                    break;
                case 7 when wire == WireFixed64:
                    point.ZeroCount = reader.Fixed64();
                    break;
                case 8 when wire == WireLength && point.Positive is null:
                    point.Positive = ReadBuckets(reader.Bytes());
                    break;
                case 9 when wire == WireLength && point.Negative is null:
                    point.Negative = ReadBuckets(reader.Bytes());
                    break;
                case 10 when wire == WireVarint:
                    point.Flags = (uint)reader.Varint();
                    break;
                case 11 when wire == WireLength:
                    point.Exemplars.Add(ReadExemplar(reader.Bytes()));
                    break;
                case 12 when wire == WireFixed64:
                    point.Min = reader.Double();
                    break;
                case 13 when wire == WireFixed64:
                    point.Max = reader.Double();
                    break;
                case 14 when wire == WireFixed64:
                    point.ZeroThreshold = reader.Double();
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return point;
    }

    private static ExponentialHistogramDataPoint.Types.Buckets ReadBuckets(ReadOnlySpan<byte> data)
    {
        var buckets = new ExponentialHistogramDataPoint.Types.Buckets();
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 1 when wire == WireVarint:
                    buckets.Offset = ZigZag32(reader.Varint());
                    break;
                case 2 when wire == WireLength:
                    var packed = new Reader(reader.Bytes());
                    while (packed.More)
                    {
                        buckets.BucketCounts.Add(packed.Varint());
                    }

                    break;
                case 2 when wire == WireVarint:
                    buckets.BucketCounts.Add(reader.Varint());
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return buckets;
    }

    private static SummaryDataPoint ReadSummaryPoint(ReadOnlySpan<byte> data)
    {
        var point = new SummaryDataPoint();
        Presize(point.Attributes, data, 7);
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 7 when wire == WireLength:
                    point.Attributes.Add(ReadKeyValue(reader.Bytes()));
                    break;
                case 2 when wire == WireFixed64:
                    point.StartTimeUnixNano = reader.Fixed64();
                    break;
                case 3 when wire == WireFixed64:
                    point.TimeUnixNano = reader.Fixed64();
                    break;
                case 4 when wire == WireFixed64:
                    point.Count = reader.Fixed64();
                    break;
                case 5 when wire == WireFixed64:
                    point.Sum = reader.Double();
                    break;
                case 6 when wire == WireLength:
                    point.QuantileValues.Add(ReadQuantile(reader.Bytes()));
                    break;
                case 8 when wire == WireVarint:
                    point.Flags = (uint)reader.Varint();
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return point;
    }

    private static SummaryDataPoint.Types.ValueAtQuantile ReadQuantile(ReadOnlySpan<byte> data)
    {
        var quantile = new SummaryDataPoint.Types.ValueAtQuantile();
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 1 when wire == WireFixed64:
                    quantile.Quantile = reader.Double();
                    break;
                case 2 when wire == WireFixed64:
                    quantile.Value = reader.Double();
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return quantile;
    }

    private static Exemplar ReadExemplar(ReadOnlySpan<byte> data)
    {
        var exemplar = new Exemplar();
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 7 when wire == WireLength:
                    exemplar.FilteredAttributes.Add(ReadKeyValue(reader.Bytes()));
                    break;
                case 2 when wire == WireFixed64:
                    exemplar.TimeUnixNano = reader.Fixed64();
                    break;
                case 3 when wire == WireFixed64:
                    exemplar.AsDouble = reader.Double();
                    break;
                case 6 when wire == WireFixed64:
                    exemplar.AsInt = (long)reader.Fixed64();
                    break;
                case 4 when wire == WireLength:
                    exemplar.SpanId = ByteString.CopyFrom(reader.Bytes());
                    break;
                case 5 when wire == WireLength:
                    exemplar.TraceId = ByteString.CopyFrom(reader.Bytes());
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return exemplar;
    }

    /// <summary>An attribute: the cached object when these exact bytes were read before.</summary>
    private static KeyValue ReadKeyValue(ReadOnlySpan<byte> data)
    {
        if (data.Length > Attributes.MaxLength)
        {
            return ReadKeyValueUncached(data, 0);
        }

        var cached = Attributes.Get(data, out var hash);
        if (cached is not null)
        {
            return cached;
        }

        var kv = ReadKeyValueUncached(data, 0);
        if (kv.Value is null or { ValueCase: not (AnyValue.ValueOneofCase.ArrayValue or AnyValue.ValueOneofCase.KvlistValue) })
        {
            Attributes.Add(data, hash, kv);
        }

        return kv;
    }

    private static KeyValue ReadKeyValueUncached(ReadOnlySpan<byte> data, int depth)
    {
        var kv = new KeyValue();
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            switch (field)
            {
                case 1 when wire == WireLength:
                    kv.Key = String(reader.Bytes());
                    break;
                case 2 when wire == WireLength && kv.Value is null:
                    kv.Value = ReadAnyValue(reader.Bytes(), depth);
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return kv;
    }

    private static AnyValue ReadAnyValue(ReadOnlySpan<byte> data, int depth)
    {
        if (depth > MaxValueDepth)
        {
            throw new FallbackException();
        }

        var value = new AnyValue();
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();

            // A second array or list would be merged into the first by Google's parser.
            if (field is 5 or 6 && value.ValueCase is AnyValue.ValueOneofCase.ArrayValue or AnyValue.ValueOneofCase.KvlistValue)
            {
                throw new FallbackException();
            }

            switch (field)
            {
                case 1 when wire == WireLength:
                    value.StringValue = String(reader.Bytes());
                    break;
                case 2 when wire == WireVarint:
                    value.BoolValue = reader.Varint() != 0;
                    break;
                case 3 when wire == WireVarint:
                    value.IntValue = (long)reader.Varint();
                    break;
                case 4 when wire == WireFixed64:
                    value.DoubleValue = reader.Double();
                    break;
                case 5 when wire == WireLength:
                    var array = new ArrayValue();
                    var items = new Reader(reader.Bytes());
                    while (items.More)
                    {
                        var (f, w) = items.Tag();
                        if (f != 1 || w != WireLength)
                        {
                            throw new FallbackException();
                        }

                        array.Values.Add(ReadAnyValue(items.Bytes(), depth + 1));
                    }

                    value.ArrayValue = array;
                    break;
                case 6 when wire == WireLength:
                    var list = new KeyValueList();
                    var pairs = new Reader(reader.Bytes());
                    while (pairs.More)
                    {
                        var (f, w) = pairs.Tag();
                        if (f != 1 || w != WireLength)
                        {
                            throw new FallbackException();
                        }

                        // Uncached: these sit inside a list that someone could change.
                        list.Values.Add(ReadKeyValueUncached(pairs.Bytes(), depth + 1));
                    }

                    value.KvlistValue = list;
                    break;
                case 7 when wire == WireLength:
                    value.BytesValue = ByteString.CopyFrom(reader.Bytes());
                    break;
                default:
                    throw new FallbackException();
            }
        }

        return value;
    }

    private delegate T MessageReader<T>(ReadOnlySpan<byte> data);

    /// <summary>A message whose only field is the repeated message field 1 (a request, a gauge, a summary).</summary>
    private static void ReadOnlyField1<T>(ReadOnlySpan<byte> data, RepeatedField<T> into, MessageReader<T> read)
    {
        Presize(into, data, 1);
        var reader = new Reader(data);
        while (reader.More)
        {
            var (field, wire) = reader.Tag();
            if (field != 1 || wire != WireLength)
            {
                throw new FallbackException();
            }

            into.Add(read(reader.Bytes()));
        }
    }

    /// <summary>
    /// Sizes a repeated field to the number of times <paramref name="field"/> occurs in <paramref name="data"/>:
    /// a list grown by doubling would allocate up to twice its final size, in several arrays.
    /// </summary>
    private static void Presize<T>(RepeatedField<T> list, ReadOnlySpan<byte> data, int field)
    {
        var count = 0;
        var reader = new Reader(data);
        while (reader.More)
        {
            var (f, wire) = reader.Tag();
            reader.Skip(wire);
            if (f == field)
            {
                count++;
            }
        }

        if (count > 1)
        {
            list.Capacity = count;
        }
    }

    /// <summary>A repeated fixed64 or double field: packed (the usual encoding) or one element per field.</summary>
    private static void ReadFixed64s<T>(ref Reader reader, int wire, RepeatedField<T> into, Func<ulong, T> convert)
    {
        if (wire == WireFixed64)
        {
            into.Add(convert(reader.Fixed64()));
            return;
        }

        if (wire != WireLength)
        {
            throw new FallbackException();
        }

        var packed = reader.Bytes();
        if (packed.Length % 8 != 0)
        {
            throw new FallbackException();
        }

        for (var i = 0; i < packed.Length; i += 8)
        {
            into.Add(convert(BinaryPrimitives.ReadUInt64LittleEndian(packed[i..])));
        }
    }

    /// <summary>A UTF-8 string field, from the cache when short. Invalid UTF-8 falls back (Google's parser rejects it).</summary>
    private static string String(ReadOnlySpan<byte> data)
    {
        if (data.Length == 0)
        {
            return "";
        }

        if (data.Length > Strings.MaxLength)
        {
            return Decode(data);
        }

        var cached = Strings.Get(data, out var hash);
        if (cached is not null)
        {
            return cached;
        }

        var text = Decode(data);
        Strings.Add(data, hash, text);
        return text;
    }

    private static string Decode(ReadOnlySpan<byte> data)
    {
        try
        {
            return StrictUtf8.GetString(data);
        }
        catch (DecoderFallbackException)
        {
            throw new FallbackException();
        }
    }

    private static int ZigZag32(ulong raw)
    {
        var n = (uint)raw;
        return (int)(n >> 1) ^ -(int)(n & 1);
    }

    /// <summary>Not an error: the bytes go to Google's parser instead.</summary>
    private sealed class FallbackException : Exception;

    /// <summary>Reads protobuf wire primitives from one message's bytes; anything out of bounds falls back.</summary>
    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _pos;

        public readonly bool More => _pos < _data.Length;

        public (int Field, int Wire) Tag()
        {
            var tag = Varint();
            var field = tag >> 3;
            if (field == 0 || field > int.MaxValue)
            {
                throw new FallbackException();
            }

            return ((int)field, (int)(tag & 7));
        }

        public ulong Varint()
        {
            ulong result = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= _data.Length)
                {
                    throw new FallbackException();
                }

                var b = _data[_pos++];
                result |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return result;
                }
            }

            throw new FallbackException();
        }

        public ulong Fixed64()
        {
            if (_data.Length - _pos < 8)
            {
                throw new FallbackException();
            }

            var value = BinaryPrimitives.ReadUInt64LittleEndian(_data[_pos..]);
            _pos += 8;
            return value;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case WireVarint:
                    Varint();
                    break;
                case WireFixed64:
                    Fixed64();
                    break;
                case WireLength:
                    Bytes();
                    break;
                default:
                    throw new FallbackException();
            }
        }

        public double Double() => BitConverter.UInt64BitsToDouble(Fixed64());

        public ReadOnlySpan<byte> Bytes()
        {
            var length = Varint();
            if (length > (ulong)(_data.Length - _pos))
            {
                throw new FallbackException();
            }

            var bytes = _data.Slice(_pos, (int)length);
            _pos += (int)length;
            return bytes;
        }
    }
}

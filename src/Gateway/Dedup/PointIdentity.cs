using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Google.Protobuf.Collections;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Resource.V1;

namespace PgOtelGateway.Gateway.Dedup;

/// <summary>
/// 128-bit identities of data points from <c>identifier_keys</c>: the listed resource attributes, the pseudo keys
/// <c>metric.name</c> and <c>timestamp</c>, and always the point's own attributes (in any order). Strings are
/// hashed in place (XxHash128 over their UTF-16 code units) and parts are combined on the stack, so hashing a
/// point allocates nothing.
/// </summary>
internal sealed class PointIdentity
{
    /// <summary>The pseudo key for the metric name.</summary>
    public const string MetricNameKey = "metric.name";

    /// <summary>The pseudo key for the point's timestamp.</summary>
    public const string TimestampKey = "timestamp";

    private const long StringSeed = 0x5157_2A11;
    private const long KeySeed = 0x6B65_7973;
    private readonly string[] _resourceKeys;
    private readonly bool _metricName;
    private readonly bool _timestamp;

    public PointIdentity(IReadOnlyList<string> identifierKeys)
    {
        var keys = new List<string>();
        foreach (var key in identifierKeys)
        {
            switch (key)
            {
                case MetricNameKey:
                    _metricName = true;
                    break;
                case TimestampKey:
                    _timestamp = true;
                    break;
                default:
                    if (!keys.Contains(key))
                    {
                        keys.Add(key);
                    }

                    break;
            }
        }

        _resourceKeys = [.. keys];
    }

    /// <summary>
    /// The resource's part of the identity, from the listed resource attributes. False when the resource carries none
    /// of them: such data is not agent-shaped and passes untouched, so unrelated sources that share a metric name are
    /// never merged. With no resource key listed, every resource takes part.
    /// </summary>
    public bool TryResource(Resource? resource, out UInt128 hash)
    {
        hash = 0x9E37_79B9_7F4A_7C15;
        if (_resourceKeys.Length == 0)
        {
            return true;
        }

        var found = false;
        var attributes = resource?.Attributes;
        for (var k = 0; k < _resourceKeys.Length; k++)
        {
            var value = Find(attributes, _resourceKeys[k]);
            if (value is null)
            {
                // Absent keys still count by position, so {a} and {b} under different keys differ.
                hash = Combine(hash, (UInt128)(ulong)(k + 1));
                continue;
            }

            found = true;
            hash = Combine(hash, Combine((UInt128)(ulong)(k + 1) << 64, Value(value)));
        }

        return found;
    }

    /// <summary>Adds the metric's part (its name, when listed) to a resource hash.</summary>
    public UInt128 Metric(UInt128 resource, string name) => _metricName ? Combine(resource, TextOf(name)) : resource;

    /// <summary>The identity of one point under a metric hash.</summary>
    public UInt128 Point(UInt128 metric, RepeatedField<KeyValue> attributes, ulong timeUnixNano)
    {
        // A sum of per-attribute hashes does not depend on their order; the count keeps {} and {x, -x} apart.
        UInt128 sum = (ulong)attributes.Count;
        for (var i = 0; i < attributes.Count; i++)
        {
            var kv = attributes[i];
            sum += Combine(KeyOf(kv.Key), Value(kv.Value));
        }

        Span<byte> buffer = stackalloc byte[40];
        BinaryPrimitives.WriteUInt128LittleEndian(buffer, metric);
        BinaryPrimitives.WriteUInt128LittleEndian(buffer[16..], sum);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer[32..], _timestamp ? timeUnixNano : 0);
        return XxHash128.HashToUInt128(buffer);
    }

    /// <summary>Combines two hashes where order matters.</summary>
    public static UInt128 Combine(UInt128 a, UInt128 b)
    {
        Span<byte> buffer = stackalloc byte[32];
        BinaryPrimitives.WriteUInt128LittleEndian(buffer, a);
        BinaryPrimitives.WriteUInt128LittleEndian(buffer[16..], b);
        return XxHash128.HashToUInt128(buffer);
    }

    /// <summary>A hash of an attribute value that also tells its type apart ("1" ≠ 1).</summary>
    public static UInt128 Value(AnyValue? value)
    {
        if (value is null)
        {
            return 0;
        }

        Span<byte> buffer = stackalloc byte[9];
        switch (value.ValueCase)
        {
            case AnyValue.ValueOneofCase.StringValue:
                return TextOf(value.StringValue);
            case AnyValue.ValueOneofCase.IntValue:
                buffer[0] = 1;
                BinaryPrimitives.WriteInt64LittleEndian(buffer[1..], value.IntValue);
                return XxHash128.HashToUInt128(buffer);
            case AnyValue.ValueOneofCase.DoubleValue:
                buffer[0] = 2;
                BinaryPrimitives.WriteDoubleLittleEndian(buffer[1..], value.DoubleValue);
                return XxHash128.HashToUInt128(buffer);
            case AnyValue.ValueOneofCase.BoolValue:
                buffer[0] = 3;
                buffer[1] = value.BoolValue ? (byte)1 : (byte)0;
                return XxHash128.HashToUInt128(buffer[..2]);
            case AnyValue.ValueOneofCase.BytesValue:
                return XxHash128.HashToUInt128(value.BytesValue.Span, 4);
            case AnyValue.ValueOneofCase.None:
                return 5;
            default:
                // Arrays and maps are rare as attributes; their encoding is deterministic enough to tell them apart.
                return XxHash128.HashToUInt128(value.ToByteArray(), 6);
        }
    }

    /// <summary>The 16 bytes of an identity as stored in Redis after the key prefix.</summary>
    public static void Write(UInt128 identity, Span<byte> destination) => BinaryPrimitives.WriteUInt128BigEndian(destination, identity);

    [ThreadStatic]
    private static StringHashSlot<UInt128>[]? t_keyHashes;

    [ThreadStatic]
    private static StringHashSlot<UInt128>[]? t_valueHashes;

    private static readonly Func<string, UInt128> KeyHash = static text => Hash(text, KeySeed);
    private static readonly Func<string, UInt128> ValueHash = static text => Hash(text, StringSeed);

    private static UInt128 KeyOf(string key) => StringHashTable.Of(ref t_keyHashes, key, KeyHash);

    private static UInt128 TextOf(string text) => StringHashTable.Of(ref t_valueHashes, text, ValueHash);

    private static UInt128 Hash(string text, long seed) => XxHash128.HashToUInt128(MemoryMarshal.AsBytes(text.AsSpan()), seed);

    private static AnyValue? Find(RepeatedField<KeyValue>? attributes, string key)
    {
        if (attributes is null)
        {
            return null;
        }

        for (var i = 0; i < attributes.Count; i++)
        {
            if (string.Equals(attributes[i].Key, key, StringComparison.Ordinal))
            {
                return attributes[i].Value;
            }
        }

        return null;
    }
}

using System.IO.Hashing;
using System.Runtime.InteropServices;
using Google.Protobuf.Collections;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Resource.V1;

namespace PgOtelGateway.Shared.Ring;

/// <summary>
/// The 64-bit routing hashes of resources, metrics and points. Strings are hashed as their UTF-16 code units
/// (no encoding, no allocation); attribute sets are hashed order-independently (a sum of per-attribute hashes),
/// so two senders that list the same attributes in another order still land on the same owner.
/// </summary>
internal static class StreamHash
{
    private const ulong KeySeed = 0x6b65795f5f5f5f5fUL;
    private const ulong ValueSeed = 0x76616c75655f5f5fUL;

    /// <summary>
    /// The resource identity: <c>service.namespace</c>, <c>service.name</c>, <c>service.instance.id</c> and
    /// <c>db.instance</c> when <c>service.instance.id</c> or <c>db.instance</c> is present (so HA agents that
    /// differ only in <c>agent.id</c> or <c>host.name</c> map to the same owner); otherwise every attribute.
    /// </summary>
    public static ulong OfResource(Resource? resource)
    {
        if (resource is null)
        {
            return 0;
        }

        var attributes = resource.Attributes;
        var identified = false;
        for (var i = 0; i < attributes.Count; i++)
        {
            if (attributes[i].Key is "service.instance.id" or "db.instance")
            {
                identified = true;
                break;
            }
        }

        ulong sum = 0;
        for (var i = 0; i < attributes.Count; i++)
        {
            var kv = attributes[i];
            if (!identified || kv.Key is "service.namespace" or "service.name" or "service.instance.id" or "db.instance")
            {
                sum = unchecked(sum + OfAttribute(kv));
            }
        }

        return HashRing.Mix(sum ^ 0x7265736f75726365UL);
    }

    /// <summary><c>service.namespace</c> + <c>service.name</c>.</summary>
    public static ulong OfService(Resource? resource)
    {
        ulong sum = 0;
        if (resource is not null)
        {
            var attributes = resource.Attributes;
            for (var i = 0; i < attributes.Count; i++)
            {
                var kv = attributes[i];
                if (kv.Key is "service.namespace" or "service.name")
                {
                    sum = unchecked(sum + OfAttribute(kv));
                }
            }
        }

        return HashRing.Mix(sum ^ 0x736572766963655fUL);
    }

    /// <summary>A metric name.</summary>
    public static ulong OfName(string name) => OfString(name, 0x6d65747269635f5fUL);

    /// <summary>An attribute set, independent of order.</summary>
    public static ulong OfAttributes(RepeatedField<KeyValue> attributes)
    {
        ulong sum = 0;
        for (var i = 0; i < attributes.Count; i++)
        {
            sum = unchecked(sum + OfAttribute(attributes[i]));
        }

        return sum;
    }

    /// <summary>The hash of a stream: resource identity, metric name and point attributes.</summary>
    public static ulong OfStream(ulong resource, ulong metricName, ulong pointAttributes) =>
        HashRing.Mix(unchecked((resource * 31) + HashRing.Mix(metricName ^ (pointAttributes * 0x9E3779B97F4A7C15UL))));

    private static ulong OfAttribute(KeyValue kv) => HashRing.Mix(OfString(kv.Key, KeySeed) ^ OfValue(kv.Value, ValueSeed));

    private static ulong OfString(string s, ulong seed) =>
        XxHash3.HashToUInt64(MemoryMarshal.AsBytes(s.AsSpan()), unchecked((long)seed));

    private static ulong OfValue(AnyValue? value, ulong seed)
    {
        if (value is null)
        {
            return seed;
        }

        switch (value.ValueCase)
        {
            case AnyValue.ValueOneofCase.StringValue:
                return OfString(value.StringValue, seed);
            case AnyValue.ValueOneofCase.IntValue:
                return HashRing.Mix(unchecked((ulong)value.IntValue + seed + 1));
            case AnyValue.ValueOneofCase.DoubleValue:
                return HashRing.Mix(unchecked((ulong)BitConverter.DoubleToInt64Bits(value.DoubleValue) + seed + 2));
            case AnyValue.ValueOneofCase.BoolValue:
                return HashRing.Mix(seed + (value.BoolValue ? 3UL : 4UL));
            case AnyValue.ValueOneofCase.BytesValue:
                return XxHash3.HashToUInt64(value.BytesValue.Span, unchecked((long)(seed + 5)));
            case AnyValue.ValueOneofCase.ArrayValue:
                // Order matters inside an array.
                var h = seed + 6;
                foreach (var v in value.ArrayValue.Values)
                {
                    h = HashRing.Mix(unchecked((h * 31) + OfValue(v, seed)));
                }

                return h;
            case AnyValue.ValueOneofCase.KvlistValue:
                ulong sum = seed + 7;
                foreach (var kv in value.KvlistValue.Values)
                {
                    sum = unchecked(sum + OfAttribute(kv));
                }

                return HashRing.Mix(sum);
            default:
                return seed;
        }
    }
}

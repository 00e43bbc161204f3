using Google.Protobuf.Reflection;

namespace PgOtelGateway.Shared.Tests.Protos;

/// <summary>
/// Rewrites protobuf bytes into the canonical form a conforming encoder produces, changing nothing else:
/// minimal varints, fields in field-number order (repeated fields keep their relative order), and proto3
/// implicit-presence fields left out when they hold their default. The OpenTelemetry .NET SDK's serializer
/// differs on all three (four-byte padded lengths, its own field order, explicit empty strings) — all valid
/// protobuf — so comparing its output with ours needs this step. It walks the wire format itself; the
/// descriptor only says which fields hold nested messages and which have explicit presence.
/// </summary>
internal static class WireCanonicalizer
{
    public static byte[] Canonicalize(ReadOnlySpan<byte> input, MessageDescriptor descriptor)
    {
        var output = new List<byte>(input.Length);
        Write(input, descriptor, output);
        return [.. output];
    }

    private static void Write(ReadOnlySpan<byte> input, MessageDescriptor descriptor, List<byte> output)
    {
        var fields = new List<(int Number, int Order, byte[] Bytes)>();
        var pos = 0;
        while (pos < input.Length)
        {
            var tag = ReadVarint(input, ref pos);
            var number = (int)(tag >> 3);
            var field = descriptor.FindFieldByNumber(number);
            var bytes = new List<byte>();
            WriteVarint(tag, bytes);
            bool isDefault;
            switch ((int)(tag & 7))
            {
                case 0:
                    var varint = ReadVarint(input, ref pos);
                    WriteVarint(varint, bytes);
                    isDefault = varint == 0;
                    break;
                case 1:
                    var fixed64 = input.Slice(pos, 8).ToArray();
                    bytes.AddRange(fixed64);
                    pos += 8;
                    isDefault = Array.TrueForAll(fixed64, b => b == 0);
                    break;
                case 5:
                    var fixed32 = input.Slice(pos, 4).ToArray();
                    bytes.AddRange(fixed32);
                    pos += 4;
                    isDefault = Array.TrueForAll(fixed32, b => b == 0);
                    break;
                case 2:
                    var length = (int)ReadVarint(input, ref pos);
                    var payload = input.Slice(pos, length);
                    pos += length;
                    if (field?.FieldType == FieldType.Message)
                    {
                        var nested = new List<byte>(length);
                        Write(payload, field.MessageType, nested);
                        WriteVarint((ulong)nested.Count, bytes);
                        bytes.AddRange(nested);
                    }
                    else
                    {
                        WriteVarint((ulong)length, bytes);
                        bytes.AddRange(payload.ToArray());
                    }

                    isDefault = length == 0;
                    break;
                default:
                    throw new InvalidDataException($"unsupported wire type {tag & 7} for field {number}");
            }

            // Unknown fields are kept; a singular proto3 field without presence is not written at its default.
            var implicitDefault = field is not null && !field.IsRepeated && !field.HasPresence && isDefault;
            if (!implicitDefault)
            {
                fields.Add((number, fields.Count, [.. bytes]));
            }
        }

        fields.Sort((a, b) => a.Number != b.Number ? a.Number.CompareTo(b.Number) : a.Order.CompareTo(b.Order));
        foreach (var (_, _, bytes) in fields)
        {
            output.AddRange(bytes);
        }
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> input, ref int pos)
    {
        ulong value = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            var b = input[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        throw new InvalidDataException("varint longer than 10 bytes");
    }

    private static void WriteVarint(ulong value, List<byte> output)
    {
        while (value >= 0x80)
        {
            output.Add((byte)(value | 0x80));
            value >>= 7;
        }

        output.Add((byte)value);
    }
}

using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace PgOtelGateway.Shared.Ring;

/// <summary>
/// A minimal DNS SRV lookup (RFC 1035 / RFC 2782) over UDP to the first <c>nameserver</c> of
/// <c>/etc/resolv.conf</c>; .NET resolves only A/AAAA itself. The name must be fully qualified (no search list).
/// </summary>
internal static class SrvLookup
{
    private const ushort TypeSrv = 33;

    /// <summary>The (target, port) of each SRV record of <paramref name="name"/>, e.g. <c>_otlp._tcp.gw.ns.svc.cluster.local</c>.</summary>
    public static async Task<List<(string Target, int Port)>> QueryAsync(string name, CancellationToken cancellationToken, IPEndPoint? server = null)
    {
        server ??= NameServer();
        var id = (ushort)Random.Shared.Next(ushort.MaxValue);
        var query = BuildQuery(id, name);
        using var udp = new UdpClient(server.AddressFamily);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        await udp.SendAsync(query, server, timeout.Token).ConfigureAwait(false);
        while (true)
        {
            var answer = await udp.ReceiveAsync(timeout.Token).ConfigureAwait(false);
            if (answer.Buffer.Length >= 12 && BinaryPrimitives.ReadUInt16BigEndian(answer.Buffer) == id)
            {
                return Parse(answer.Buffer);
            }
        }
    }

    private static IPEndPoint NameServer()
    {
        foreach (var line in File.ReadLines("/etc/resolv.conf"))
        {
            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && parts[0] == "nameserver" && IPAddress.TryParse(parts[1], out var ip))
            {
                return new IPEndPoint(ip, 53);
            }
        }

        return new IPEndPoint(IPAddress.Loopback, 53);
    }

    internal static byte[] BuildQuery(ushort id, string name)
    {
        using var ms = new MemoryStream();
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, id);
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], 0x0100); // recursion desired
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], 1);
        ms.Write(header);
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            var bytes = Encoding.ASCII.GetBytes(label);
            ms.WriteByte((byte)bytes.Length);
            ms.Write(bytes);
        }

        ms.WriteByte(0);
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt16BigEndian(tail, TypeSrv);
        BinaryPrimitives.WriteUInt16BigEndian(tail[2..], 1);
        ms.Write(tail);
        return ms.ToArray();
    }

    internal static List<(string Target, int Port)> Parse(byte[] message)
    {
        var rcode = message[3] & 0x0F;
        if (rcode != 0)
        {
            throw new IOException($"DNS answered rcode {rcode}");
        }

        var questions = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(4));
        var answers = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(6));
        var pos = 12;
        for (var i = 0; i < questions; i++)
        {
            ReadName(message, ref pos);
            pos += 4;
        }

        var records = new List<(string, int)>();
        for (var i = 0; i < answers; i++)
        {
            ReadName(message, ref pos);
            var type = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(pos));
            var length = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(pos + 8));
            pos += 10;
            if (type == TypeSrv)
            {
                var port = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(pos + 4));
                var target = pos + 6;
                records.Add((ReadName(message, ref target), port));
            }

            pos += length;
        }

        return records;
    }

    private static string ReadName(byte[] message, ref int pos)
    {
        var labels = new List<string>();
        var jumped = false;
        var cursor = pos;
        for (var hops = 0; hops < 64; hops++)
        {
            var len = message[cursor];
            if (len == 0)
            {
                cursor++;
                break;
            }

            if ((len & 0xC0) == 0xC0)
            {
                var offset = ((len & 0x3F) << 8) | message[cursor + 1];
                if (!jumped)
                {
                    pos = cursor + 2;
                }

                jumped = true;
                cursor = offset;
                continue;
            }

            labels.Add(Encoding.ASCII.GetString(message, cursor + 1, len));
            cursor += len + 1;
        }

        if (!jumped)
        {
            pos = cursor;
        }

        return string.Join('.', labels);
    }
}

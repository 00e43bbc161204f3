using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using PgOtelGateway.Shared.Ring;
using Xunit;

namespace PgOtelGateway.Shared.Tests.Ring;

public sealed class SrvLookupTests
{
    /// <summary>A DNS answer as a server sends it: the question echoed, then SRV records whose targets use name compression.</summary>
    private static byte[] Answer(byte[] query, params (string Target, ushort Port)[] records)
    {
        using var ms = new MemoryStream();
        ms.Write(query.AsSpan(0, 2));
        ms.Write([0x81, 0x80, 0, 1]);
        var counts = new byte[6];
        BinaryPrimitives.WriteUInt16BigEndian(counts, (ushort)records.Length);
        ms.Write(counts);
        ms.Write(query.AsSpan(12));
        foreach (var (target, port) in records)
        {
            ms.Write([0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 30]);
            var rdata = new MemoryStream();
            rdata.Write([0, 10, 0, 50]);
            var p = new byte[2];
            BinaryPrimitives.WriteUInt16BigEndian(p, port);
            rdata.Write(p);
            var host = target.Split('.')[0];
            rdata.WriteByte((byte)host.Length);
            rdata.Write(System.Text.Encoding.ASCII.GetBytes(host));
            rdata.Write([0xC0, 12 + 1 + 5 + 1 + 4]); // the rest of the name points into the question (after "_otlp._tcp")
            var len = new byte[2];
            BinaryPrimitives.WriteUInt16BigEndian(len, (ushort)rdata.Length);
            ms.Write(len);
            ms.Write(rdata.ToArray());
        }

        return ms.ToArray();
    }

    [Fact]
    public void Parse_SrvAnswerWithCompressedNames_ReturnsTargetsAndPorts()
    {
        var query = SrvLookup.BuildQuery(0x1234, "_otlp._tcp.gw.monitoring.svc.cluster.local");
        var records = SrvLookup.Parse(Answer(query, ("gw-0", 4317), ("gw-1", 4318)));

        Assert.Equal([("gw-0.gw.monitoring.svc.cluster.local", 4317), ("gw-1.gw.monitoring.svc.cluster.local", 4318)], records);
    }

    [Fact]
    public async Task QueryAsync_AgainstALocalResponder_ReadsTheAnswer()
    {
        using var server = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var endpoint = (IPEndPoint)server.Client.LocalEndPoint!;
        var responder = Task.Run(async () =>
        {
            var request = await server.ReceiveAsync();
            await server.SendAsync(Answer(request.Buffer, ("gw-2", 4317)), request.RemoteEndPoint);
        });

        var records = await SrvLookup.QueryAsync("_otlp._tcp.gw.ns.svc", CancellationToken.None, endpoint).WaitAsync(TimeSpan.FromSeconds(30));
        await responder.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal([("gw-2.gw.ns.svc", 4317)], records);
    }
}

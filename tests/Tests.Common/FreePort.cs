using System.Net;
using System.Net.Sockets;

namespace PgOtelGateway.Tests.Common;

/// <summary>Loopback ports nothing listens on, for servers a test starts itself.</summary>
public static class FreePort
{
    /// <summary>A port the OS just handed out and released.</summary>
    public static int Get()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        var port = ((IPEndPoint)socket.LocalEndpoint).Port;
        socket.Stop();
        return port;
    }
}

using System.Net;
using System.Net.Sockets;

namespace PgOtelGateway.Tests.Common;

/// <summary>Loopback ports nothing listens on, for servers a test starts itself.</summary>
public static class FreePort
{
    // Below the kernel's ephemeral range (32768+), where outgoing connections take their local ports, and below
    // the harness's service ports (20000–49999, scripts/lib/services.sh): a port handed out here is not taken by a
    // client socket or a restarted service between now and the moment the test's server binds it.
    private const int First = 10000;
    private const int Count = 10000;
    private static readonly HashSet<int> Given = [];

    /// <summary>A port that was free just now and that this process has not handed out before.</summary>
    public static int Get()
    {
        lock (Given)
        {
            for (var attempt = 0; attempt < 1000; attempt++)
            {
                var port = First + Random.Shared.Next(Count);
                if (Given.Contains(port) || !CanBind(port))
                {
                    continue;
                }

                Given.Add(port);
                return port;
            }
        }

        throw new InvalidOperationException($"no free loopback port in {First}–{First + Count - 1}");
    }

    private static bool CanBind(int port)
    {
        try
        {
            using var socket = new TcpListener(IPAddress.Loopback, port);
            socket.Start();
            socket.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

using System.Globalization;
using System.Net;

namespace PgOtelGateway.Shared.Hosting;

/// <summary>Parses <c>host:port</c> listen addresses (<c>0.0.0.0:4317</c>, <c>:8888</c>, <c>localhost:0</c>, <c>[::]:4317</c>).</summary>
public static class ListenAddress
{
    /// <summary>Parses an address; throws <see cref="FormatException"/> naming <paramref name="key"/>.</summary>
    public static IPEndPoint Parse(string address, string key)
    {
        var colon = address.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(address.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            throw new FormatException($"{key}: '{address}' is not host:port");
        }

        var host = address[..colon].Trim('[', ']');
        IPAddress ip = host switch
        {
            "" or "0.0.0.0" or "*" => IPAddress.Any,
            "::" => IPAddress.IPv6Any,
            "localhost" => IPAddress.Loopback,
            _ => IPAddress.TryParse(host, out var parsed) ? parsed
                : throw new FormatException($"{key}: '{host}' is not an IP address (use 0.0.0.0, 127.0.0.1 or localhost)"),
        };
        return new IPEndPoint(ip, port);
    }
}

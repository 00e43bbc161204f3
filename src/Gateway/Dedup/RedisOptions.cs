using PgOtelGateway.Gateway.Export.RemoteWrite;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Dedup;

/// <summary>
/// The <c>redis:</c> block of <c>dedupe</c> and <c>ha_tracker</c>: where the state shared by all gateways lives.
/// An empty endpoint keeps the processor local to this gateway (in-memory only).
/// </summary>
internal sealed class RedisOptions : IValidatableOptions
{
    /// <summary><c>host:port</c> of a standalone Redis (or the master a proxy points at); empty: local only.</summary>
    public string Endpoint { get; set; } = "";

    /// <summary>The password (AUTH), inline or as <c>password_file</c>.</summary>
    [Secret]
    public string Password { get; set; } = "";

    /// <summary>The ACL user name, when the password belongs to one.</summary>
    public string Username { get; set; } = "";

    /// <summary>TLS towards Redis. As in the collector's Redis components it is off (<c>insecure: true</c>) unless turned on.</summary>
    public ClientTlsOptions Tls { get; set; } = new() { Insecure = true };

    /// <summary>Prefix of every key this processor writes, so several deployments can share one Redis.</summary>
    public string KeyPrefix { get; set; } = "pgotel:";

    /// <summary>How long one Redis call may take before the request goes on with the local state only.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Whether an endpoint is set.</summary>
    public bool Enabled => Endpoint.Length > 0;

    /// <summary>Whether TLS is on: <c>insecure: false</c>, or any TLS file or setting given.</summary>
    public bool UseTls => !Tls.Insecure || Tls.CaFile.Length > 0 || Tls.CertFile.Length > 0 || Tls.ServerName.Length > 0 || Tls.InsecureSkipVerify;

    public IEnumerable<string> Validate()
    {
        if (Endpoint.Length > 0)
        {
            var colon = Endpoint.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(Endpoint.AsSpan(colon + 1), System.Globalization.CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                yield return $"endpoint '{Endpoint}' is not host:port";
            }
        }

        if (Timeout <= TimeSpan.Zero)
        {
            yield return "timeout must be above 0";
        }

        if (Tls.KeyFile.Length > 0 && Tls.CertFile.Length == 0)
        {
            yield return "tls.key_file needs tls.cert_file";
        }
    }
}

using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Shared.Ring;

/// <summary>What decides a data point's owner on the ring.</summary>
internal enum RoutingKey
{
    /// <summary>Resource identity + metric name + point attributes: one owner per series.</summary>
    Stream,

    /// <summary>Resource identity only: everything one PostgreSQL instance (or SDK process) sends goes to one owner.</summary>
    Resource,

    /// <summary><c>service.namespace</c> + <c>service.name</c>.</summary>
    Service,

    /// <summary>The metric name.</summary>
    Metric,
}

/// <summary>Where the ring's members come from (<c>members:</c>); exactly one source.</summary>
internal sealed class RingMembersOptions : IValidatableOptions
{
    /// <summary><c>id=host:port</c> (or just <c>host:port</c>, which is then also the id), one per member.</summary>
    [ConfigKey("static")]
    public List<string> Static { get; set; } = [];

    /// <summary>A headless Service: A/AAAA or SRV records.</summary>
    public DnsMembersOptions? Dns { get; set; }

    /// <summary>Redis heartbeats: each member keeps a key alive; the live keys form the ring.</summary>
    public RedisMembersOptions? Redis { get; set; }

    /// <summary>How often members found by <c>static</c> or <c>dns</c> are probed (an empty OTLP Export).</summary>
    public TimeSpan ProbeInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Consecutive failed probes (or failed forwards) after which a member counts as gone.</summary>
    public int FailureThreshold { get; set; } = 2;

    /// <inheritdoc />
    public IEnumerable<string> Validate()
    {
        var sources = (Static.Count > 0 ? 1 : 0) + (Dns is null ? 0 : 1) + (Redis is null ? 0 : 1);
        if (sources != 1)
        {
            yield return "exactly one of static, dns or redis must be given";
        }

        foreach (var entry in Static)
        {
            if (!MemberAddress.TryParse(entry, out _, out _))
            {
                yield return $"static: '{entry}' is not id=host:port or host:port";
            }
        }

        if (ProbeInterval <= TimeSpan.Zero)
        {
            yield return "probe_interval must be above 0";
        }

        if (FailureThreshold < 1)
        {
            yield return "failure_threshold must be at least 1";
        }
    }
}

/// <summary><c>members.dns</c>: the members are what a name resolves to.</summary>
internal sealed class DnsMembersOptions : IValidatableOptions
{
    /// <summary>The headless Service name, e.g. <c>pgotel-gateway-headless.monitoring.svc.cluster.local</c>; an
    /// <c>_service._proto.name</c> form is looked up as SRV records (target and port from each record).</summary>
    [ConfigRequired]
    public string Hostname { get; set; } = "";

    /// <summary>The OTLP/gRPC port of the members (A/AAAA records carry none).</summary>
    public int Port { get; set; } = 4317;

    /// <summary>How often the name is resolved again.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(10);

    /// <inheritdoc />
    public IEnumerable<string> Validate()
    {
        if (Port is < 1 or > 65535)
        {
            yield return "port must be 1–65535";
        }

        if (Interval <= TimeSpan.Zero)
        {
            yield return "interval must be above 0";
        }
    }
}

/// <summary><c>members.redis</c>: members heartbeat a key each.</summary>
internal sealed class RedisMembersOptions : IValidatableOptions
{
    /// <summary><c>host:port</c> of Redis.</summary>
    public string Endpoint { get; set; } = "localhost:6379";

    /// <summary>Redis password (also <c>password_file</c>).</summary>
    [Secret]
    public string Password { get; set; } = "";

    /// <summary>Prefix of the ring's keys; members of one ring share it.</summary>
    public string KeyPrefix { get; set; } = "pgotel:ring:";

    /// <summary>How often a member renews its key and reads the others.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>A key not renewed for this long expires: its member is gone.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromSeconds(10);

    /// <inheritdoc />
    public IEnumerable<string> Validate()
    {
        if (Endpoint.Length == 0)
        {
            yield return "endpoint is required";
        }

        if (HeartbeatInterval <= TimeSpan.Zero || Ttl <= HeartbeatInterval)
        {
            yield return "heartbeat_interval must be above 0 and below ttl";
        }
    }
}

/// <summary>TLS towards the other members (forwarding and probes); off by default (h2c).</summary>
internal sealed class RingClientTlsOptions
{
    /// <summary>Use TLS to reach the members.</summary>
    public bool Enabled { get; set; }

    public string CaFile { get; set; } = "";

    public string CertFile { get; set; } = "";

    public string KeyFile { get; set; } = "";

    public string ServerName { get; set; } = "";

    public bool InsecureSkipVerify { get; set; }
}

/// <summary><c>gateway.ring</c>: the consistent-hash ring of the gateway tier.</summary>
internal sealed class RingOptions : IValidatableOptions
{
    /// <summary>This member's id; empty: <c>gateway.id</c>.</summary>
    public string Self { get; set; } = "";

    /// <summary>Where the other members reach this one (<c>host:port</c> of its OTLP/gRPC receiver); empty: from
    /// the static list, else the receiver's bound address (its first non-loopback IPv4 address when it binds all).</summary>
    public string AdvertiseAddress { get; set; } = "";

    /// <summary>Tokens each member places on the ring.</summary>
    public int TokensPerMember { get; set; } = HashRing.DefaultTokensPerMember;

    /// <summary>What decides a point's owner.</summary>
    public RoutingKey RoutingKey { get; set; } = RoutingKey.Stream;

    /// <summary>Where the members come from.</summary>
    public RingMembersOptions Members { get; set; } = new();

    /// <summary>Deadline of one forward; an owner that does not answer within it is bypassed (processed locally).</summary>
    public TimeSpan ForwardTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>After turning LEAVING, how long this member keeps serving (processing locally) so the others
    /// notice before its listeners close.</summary>
    public TimeSpan LeaveGrace { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>TLS to the other members.</summary>
    public RingClientTlsOptions Tls { get; set; } = new();

    /// <inheritdoc />
    public IEnumerable<string> Validate()
    {
        if (TokensPerMember is < 1 or > 4096)
        {
            yield return "tokens_per_member must be 1–4096";
        }

        if (ForwardTimeout <= TimeSpan.Zero)
        {
            yield return "forward_timeout must be above 0";
        }

        if (LeaveGrace < TimeSpan.Zero)
        {
            yield return "leave_grace must not be negative";
        }

        if (AdvertiseAddress.Length > 0 && !MemberAddress.TryParse(AdvertiseAddress, out _, out _))
        {
            yield return "advertise_address must be host:port";
        }
    }
}

/// <summary><c>exporters.otlp.loadbalancing</c>: the agent sends each stream straight to its owner.</summary>
internal sealed class LoadBalancingOptions
{
    /// <summary>What decides a point's owner; must match the gateways' <c>gateway.ring.routing_key</c>.</summary>
    public RoutingKey RoutingKey { get; set; } = RoutingKey.Stream;

    /// <summary>Tokens per member; must match the gateways'.</summary>
    public int TokensPerMember { get; set; } = HashRing.DefaultTokensPerMember;

    /// <summary>Where the gateways are.</summary>
    public RingMembersOptions Members { get; set; } = new();
}

/// <summary>Parses <c>id=host:port</c> and <c>host:port</c>.</summary>
internal static class MemberAddress
{
    public static bool TryParse(string text, out string id, out string address)
    {
        var eq = text.IndexOf('=', StringComparison.Ordinal);
        id = eq < 0 ? text.Trim() : text[..eq].Trim();
        address = eq < 0 ? text.Trim() : text[(eq + 1)..].Trim();
        var colon = address.LastIndexOf(':');
        return id.Length > 0 && colon > 0 && int.TryParse(address.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536;
    }
}

using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Ring;

namespace PgOtelGateway.Gateway.Routing;

/// <summary>
/// This gateway as a ring member: its state (JOINING until the gateway is ready, then ACTIVE, then LEAVING on
/// SIGTERM or <c>POST /api/v1/ring/leave</c>), the membership it sees, and the pooled channels to the other
/// members. It is also the admin API's view of the ring.
/// </summary>
internal sealed partial class GatewayRing : IRingStatus, IAsyncDisposable
{
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _leaving = new();
    private int _state = (int)MemberState.Joining;
    private volatile HashSet<IPAddress> _peerIps = [];

    public GatewayRing(RingOptions options, string selfId, string bearerToken, ILoggerFactory loggerFactory, TimeProvider time)
    {
        Options = options;
        SelfId = selfId;
        _logger = loggerFactory.CreateLogger<GatewayRing>();
        Peers = new PeerClients(options.Tls, bearerToken);
        Membership = new RingMembership(options.Members, options.TokensPerMember, selfId, () => State, Peers, options.ForwardTimeout,
            loggerFactory.CreateLogger<RingMembership>(), time);
        Membership.Changed += OnChanged;
    }

    /// <summary><c>gateway.ring</c>.</summary>
    public RingOptions Options { get; }

    /// <summary>This member's id.</summary>
    public string SelfId { get; }

    /// <summary>This member's state.</summary>
    public MemberState State => (MemberState)Volatile.Read(ref _state);

    /// <summary>The members and the ring they form.</summary>
    public RingMembership Membership { get; }

    /// <summary>One channel per member.</summary>
    public PeerClients Peers { get; }

    /// <summary>
    /// Whether <paramref name="ip"/> is the address of another member: a request it forwards carries traffic its own
    /// receiver has already admitted (rate limit included), so it is not counted against the sender a second time.
    /// </summary>
    public bool IsPeer(IPAddress ip)
    {
        var peers = _peerIps;
        return peers.Contains(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip);
    }

    /// <summary>Cancelled once this member turns LEAVING: the process should stop.</summary>
    public CancellationToken LeaveRequested => _leaving.Token;

    /// <summary>Starts membership; <paramref name="boundGrpc"/> is the OTLP/gRPC listener, for the advertised address.</summary>
    public async Task StartAsync(IPEndPoint? boundGrpc, CancellationToken cancellationToken)
    {
        if (Options.AdvertiseAddress.Length > 0)
        {
            Membership.SelfAddress = Options.AdvertiseAddress;
        }
        else if (Membership.SelfAddress.Length == 0 && boundGrpc is not null)
        {
            Membership.SelfAddress = AdvertisedAddress(boundGrpc);
        }

        await Membership.StartAsync(cancellationToken).ConfigureAwait(false);
        LogJoining(_logger, SelfId, Membership.SelfAddress);
    }

    /// <summary>The gateway is ready: take this member's share.</summary>
    public async Task ActivateAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.CompareExchange(ref _state, (int)MemberState.Active, (int)MemberState.Joining) == (int)MemberState.Joining)
        {
            await Membership.PublishSelfAsync(cancellationToken).ConfigureAwait(false);
            LogActive(_logger, SelfId);
        }
    }

    /// <inheritdoc />
    public async Task LeaveAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _state, (int)MemberState.Leaving) == (int)MemberState.Leaving)
        {
            return;
        }

        LogLeaving(_logger, SelfId);
        await Membership.PublishSelfAsync(cancellationToken).ConfigureAwait(false);
        await _leaving.CancelAsync().ConfigureAwait(false);
    }

    /// <inheritdoc />
    public RingSnapshot Snapshot()
    {
        var view = Membership.Current;
        var members = new List<RingMemberSnapshot>(view.Members.Count);
        foreach (var m in view.Members)
        {
            var index = view.Ring.IndexOf(m.Id);
            members.Add(new RingMemberSnapshot(m.Id, m.Address, ToAdmin(m.State), m.LastSeen, index < 0 ? 0 : view.Ring.OwnedFraction(index)));
        }

        return new RingSnapshot(SelfId, members);
    }

    private static RingMemberState ToAdmin(MemberState state) => state switch
    {
        MemberState.Active => RingMemberState.Active,
        MemberState.Leaving => RingMemberState.Leaving,
        _ => RingMemberState.Joining,
    };

    private void OnChanged(RingView view)
    {
        int joining = 0, active = 0, leaving = 0;
        foreach (var m in view.Members)
        {
            switch (m.State)
            {
                case MemberState.Active:
                    active++;
                    break;
                case MemberState.Leaving:
                    leaving++;
                    break;
                default:
                    joining++;
                    break;
            }
        }

        GatewayMetrics.RingMembers.WithLabels("JOINING").Set(joining);
        GatewayMetrics.RingMembers.WithLabels("ACTIVE").Set(active);
        GatewayMetrics.RingMembers.WithLabels("LEAVING").Set(leaving);
        GatewayMetrics.RingOwnedFraction.Set(view.Self < 0 ? 0 : view.Ring.OwnedFraction(view.Self));
        // Keep the channels of every live member (probes use them too), not only of the owners.
        var addresses = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in view.Members)
        {
            addresses.Add(m.Address);
        }

        Peers.Retain(addresses);
        addresses.Remove(Membership.SelfAddress);
        _ = ResolvePeersAsync(addresses);
    }

    /// <summary>The members' IP addresses (host names resolved), for <see cref="IsPeer"/>.</summary>
    private async Task ResolvePeersAsync(HashSet<string> addresses)
    {
        var ips = new HashSet<IPAddress>();
        foreach (var address in addresses)
        {
            var colon = address.LastIndexOf(':');
            var host = (colon > 0 ? address[..colon] : address).Trim('[', ']');
            if (IPAddress.TryParse(host, out var ip))
            {
                ips.Add(ip);
                continue;
            }

            try
            {
                foreach (var resolved in await Dns.GetHostAddressesAsync(host).ConfigureAwait(false))
                {
                    ips.Add(resolved.IsIPv4MappedToIPv6 ? resolved.MapToIPv4() : resolved);
                }
            }
            catch (SocketException)
            {
                // Not resolvable now: its forwards count against the rate limit until the next change.
            }
        }

        _peerIps = ips;
    }

    /// <summary>The bound address, or for a wildcard bind the first non-loopback IPv4 address of this host.</summary>
    private static string AdvertisedAddress(IPEndPoint bound)
    {
        var ip = bound.Address.Equals(IPAddress.Any) || bound.Address.Equals(IPAddress.IPv6Any) ? FirstIPv4() : bound.Address;
        var host = ip.AddressFamily == AddressFamily.InterNetworkV6 ? "[" + ip + "]" : ip.ToString();
        return host + ":" + bound.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static IPAddress FirstIPv4()
    {
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            if (nic.OperationalStatus != OperationalStatus.Up || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback)
            {
                continue;
            }

            foreach (var address in nic.GetIPProperties().UnicastAddresses)
            {
                if (address.Address.AddressFamily == AddressFamily.InterNetwork)
                {
                    return address.Address;
                }
            }
        }

        return IPAddress.Loopback;
    }

    public async ValueTask DisposeAsync()
    {
        Membership.Changed -= OnChanged;
        await Membership.DisposeAsync().ConfigureAwait(false);
        Peers.Dispose();
        _leaving.Dispose();
    }

    [LoggerMessage(EventId = 6101, Level = LogLevel.Information, Message = "Ring member {Member} joins at {Address}; it owns nothing until the gateway is ready.")]
    private static partial void LogJoining(ILogger logger, string member, string address);

    [LoggerMessage(EventId = 6102, Level = LogLevel.Information, Message = "Ring member {Member} is ACTIVE and owns its share of streams.")]
    private static partial void LogActive(ILogger logger, string member);

    [LoggerMessage(EventId = 6103, Level = LogLevel.Warning, Message = "Ring member {Member} is LEAVING: it owns nothing any more, drains, then exits.")]
    private static partial void LogLeaving(ILogger logger, string member);
}

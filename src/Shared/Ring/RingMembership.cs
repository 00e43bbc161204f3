using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace PgOtelGateway.Shared.Ring;

/// <summary>Where a ring member stands.</summary>
internal enum MemberState
{
    /// <summary>Known, not ready: owns nothing.</summary>
    Joining,

    /// <summary>Ready: owns its share.</summary>
    Active,

    /// <summary>Draining before it exits: owns nothing.</summary>
    Leaving,
}

/// <summary>One member as this node sees it.</summary>
internal sealed record RingMember(string Id, string Address, MemberState State, DateTimeOffset? LastSeen, bool IsSelf);

/// <summary>
/// The ring at one moment: the members that own streams (ACTIVE and reachable), their addresses, and every
/// member known. Immutable; a membership change publishes a new view.
/// </summary>
internal sealed class RingView
{
    public RingView(HashRing ring, string[] addresses, int self, IReadOnlyList<RingMember> members)
    {
        Ring = ring;
        Addresses = addresses;
        Self = self;
        Members = members;
    }

    /// <summary>The ring of the owning members.</summary>
    public HashRing Ring { get; }

    /// <summary>The address of each ring member, by ring index.</summary>
    public string[] Addresses { get; }

    /// <summary>This node's ring index; -1 when it owns nothing (not ACTIVE, or an agent).</summary>
    public int Self { get; }

    /// <summary>Every live member (this one included), sorted by id.</summary>
    public IReadOnlyList<RingMember> Members { get; }
}

/// <summary>
/// Keeps the ring's membership from one source — a static list or DNS (both probed with an empty OTLP Export
/// that also tells each member's id and state), or Redis heartbeats (a key per member with its state and
/// address, expiring after <c>ttl</c>) — and publishes a new <see cref="RingView"/> whenever the set of owning
/// members changes. Used by the gateway (with itself as a member) and by the agent (without).
/// </summary>
internal sealed partial class RingMembership : IAsyncDisposable
{
    private readonly RingMembersOptions _options;
    private readonly int _tokensPerMember;
    private readonly string? _selfId;
    private readonly Func<MemberState> _selfState;
    private readonly PeerClients _peers;
    private readonly TimeSpan _probeTimeout;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Lock _rebuildGate = new();
    private readonly Dictionary<string, Peer> _known = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _roundLock = new(1, 1);
    private List<string> _dnsAddresses = [];
    private ConnectionMultiplexer? _redis;
    private bool _redisDown;
    private Task? _loop;
    private volatile RingView _view;

    /// <param name="options">The membership source.</param>
    /// <param name="tokensPerMember">Tokens per member.</param>
    /// <param name="selfId">This node's member id; null for an agent (not a member).</param>
    /// <param name="selfState">This node's state now (read at every change).</param>
    /// <param name="peers">The channels to the members (probes).</param>
    /// <param name="probeTimeout">Deadline of one probe.</param>
    public RingMembership(RingMembersOptions options, int tokensPerMember, string? selfId, Func<MemberState> selfState, PeerClients peers, TimeSpan probeTimeout, ILogger logger, TimeProvider time)
    {
        _options = options;
        _tokensPerMember = tokensPerMember;
        _selfId = selfId;
        _selfState = selfState;
        _peers = peers;
        _probeTimeout = probeTimeout;
        _logger = logger;
        _time = time;
        _view = new RingView(HashRing.Empty, [], -1, []);
        foreach (var entry in options.Static)
        {
            MemberAddress.TryParse(entry, out var id, out var address);
            if (id == selfId)
            {
                SelfAddress = address;
            }
            else
            {
                _known[id] = new Peer(id, address) { Configured = true };
            }
        }
    }

    /// <summary>This node's address as the static list names it ("" when it does not, or for other sources).</summary>
    public string SelfAddress { get; set; } = "";

    /// <summary>The ring now.</summary>
    public RingView Current => _view;

    /// <summary>Raised after a new view is published.</summary>
    public event Action<RingView>? Changed;

    /// <summary>Runs one discovery round (so the first view is known), then keeps it up to date in the background.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_options.Redis is { } redis)
        {
            var config = ConfigurationOptions.Parse(redis.Endpoint);
            config.Password = redis.Password.Length > 0 ? redis.Password : null;
            config.AbortOnConnectFail = false;
            config.ConnectTimeout = (int)Math.Min(int.MaxValue, redis.HeartbeatInterval.TotalMilliseconds * 2);
            config.SyncTimeout = config.AsyncTimeout = config.ConnectTimeout;
            config.ClientName = "pgotel-ring";
            _redis = await ConnectionMultiplexer.ConnectAsync(config).ConfigureAwait(false);
        }

        try
        {
            await RoundAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRoundFailed(_logger, ex.Message);
        }

        _loop = Task.Run(() => LoopAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>
    /// Publishes this node's state now (Redis heartbeat) and rebuilds the view; called when the state changes.
    /// </summary>
    public async Task PublishSelfAsync(CancellationToken cancellationToken)
    {
        if (_redis is not null && _options.Redis is { } redis)
        {
            try
            {
                await HeartbeatAsync(_redis.GetDatabase(), redis).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                LogRedisFailed(_logger, ex.Message);
            }
        }

        Rebuild();
    }

    /// <summary>A forward to <paramref name="id"/> failed to reach it: counts as a failed probe.</summary>
    public void ReportUnreachable(string id)
    {
        lock (_gate)
        {
            if (!_known.TryGetValue(id, out var peer) || !peer.Live)
            {
                return;
            }

            if (++peer.Failures < _options.FailureThreshold)
            {
                return;
            }

            peer.Live = false;
        }

        LogMemberGone(_logger, id, "forwards to it fail");
        Rebuild();
    }

    private async Task LoopAsync(CancellationToken stopping)
    {
        var interval = _options.Redis?.HeartbeatInterval ?? _options.ProbeInterval;
        var nextDns = _time.GetUtcNow() + (_options.Dns?.Interval ?? TimeSpan.Zero);
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, _time, stopping).ConfigureAwait(false);
                if (_options.Dns is not null && _time.GetUtcNow() >= nextDns)
                {
                    nextDns = _time.GetUtcNow() + _options.Dns.Interval;
                    _dnsAddresses = [];
                }

                await RoundAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogRoundFailed(_logger, ex.Message);
            }
        }
    }

    private async Task RoundAsync(CancellationToken cancellationToken)
    {
        await _roundLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_options.Redis is { } redis && _redis is not null)
            {
                await RedisRoundAsync(redis, _redis.GetDatabase()).ConfigureAwait(false);
            }
            else
            {
                if (_options.Dns is { } dns && _dnsAddresses.Count == 0)
                {
                    _dnsAddresses = await ResolveAsync(dns, cancellationToken).ConfigureAwait(false);
                }

                await ProbeRoundAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _roundLock.Release();
        }

        Rebuild();
    }

    private async Task ProbeRoundAsync(CancellationToken cancellationToken)
    {
        // Static: the configured members. DNS: every address the name resolves to; its id comes from the probe.
        List<(string? Id, string Address)> targets = [];
        lock (_gate)
        {
            if (_options.Dns is null)
            {
                foreach (var peer in _known.Values)
                {
                    targets.Add((peer.Id, peer.Address));
                }
            }
        }

        foreach (var address in _dnsAddresses)
        {
            targets.Add((null, address));
        }

        var probes = new Task<(string? Id, string Address, ProbeAnswer? Answer, string? Error)>[targets.Count];
        for (var i = 0; i < targets.Count; i++)
        {
            var (id, address) = targets[i];
            probes[i] = ProbeOneAsync(id, address, cancellationToken);
        }

        var results = await Task.WhenAll(probes).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        var seenDns = new HashSet<string>(StringComparer.Ordinal);
        List<(string Id, string Why)> gone = [];
        List<string> back = [];
        lock (_gate)
        {
            foreach (var (configuredId, address, answer, error) in results)
            {
                var id = configuredId ?? answer?.Id ?? address;
                if (id == _selfId)
                {
                    // DNS lists this node too.
                    SelfAddress = SelfAddress.Length > 0 ? SelfAddress : address;
                    continue;
                }

                if (configuredId is null && answer is null)
                {
                    // An address that never answered has no id yet; a known member at it fails below.
                    foreach (var peer in _known.Values)
                    {
                        if (peer.Address == address)
                        {
                            seenDns.Add(peer.Id);
                            Fail(peer, error ?? "no answer", gone);
                        }
                    }

                    continue;
                }

                if (!_known.TryGetValue(id, out var p))
                {
                    p = new Peer(id, address);
                    _known[id] = p;
                }

                seenDns.Add(id);
                p.Address = address;
                if (answer is { } a)
                {
                    if (!p.Live)
                    {
                        back.Add(id);
                    }

                    p.Live = true;
                    p.Failures = 0;
                    p.State = a.State;
                    p.LastSeen = now;
                }
                else
                {
                    Fail(p, error ?? "no answer", gone);
                }
            }

            if (_options.Dns is not null)
            {
                // A member whose address DNS no longer lists is gone.
                foreach (var id in _known.Keys.ToList())
                {
                    if (!seenDns.Contains(id))
                    {
                        _known.Remove(id);
                        gone.Add((id, "DNS no longer lists it"));
                    }
                }
            }
        }

        foreach (var (id, why) in gone)
        {
            LogMemberGone(_logger, id, why);
        }

        foreach (var id in back)
        {
            LogMemberLive(_logger, id);
        }
    }

    private void Fail(Peer peer, string why, List<(string Id, string Why)> gone)
    {
        if (++peer.Failures >= _options.FailureThreshold && peer.Live)
        {
            peer.Live = false;
            gone.Add((peer.Id, why));
        }
    }

    private async Task<(string? Id, string Address, ProbeAnswer? Answer, string? Error)> ProbeOneAsync(string? id, string address, CancellationToken cancellationToken)
    {
        try
        {
            var answer = await _peers.ProbeAsync(address, _selfId, _probeTimeout, cancellationToken).ConfigureAwait(false);
            return (id, address, answer, null);
        }
        catch (RpcException ex)
        {
            return (id, address, null, ex.StatusCode + ": " + ex.Status.Detail);
        }
    }

    private static async Task<List<string>> ResolveAsync(DnsMembersOptions dns, CancellationToken cancellationToken)
    {
        var addresses = new List<string>();
        if (dns.Hostname.StartsWith('_'))
        {
            foreach (var (target, port) in await SrvLookup.QueryAsync(dns.Hostname, cancellationToken).ConfigureAwait(false))
            {
                addresses.Add(target.TrimEnd('.') + ":" + port.ToString(CultureInfo.InvariantCulture));
            }
        }
        else
        {
            foreach (var ip in await Dns.GetHostAddressesAsync(dns.Hostname, cancellationToken).ConfigureAwait(false))
            {
                var host = ip.AddressFamily == AddressFamily.InterNetworkV6 ? "[" + ip + "]" : ip.ToString();
                addresses.Add(host + ":" + dns.Port.ToString(CultureInfo.InvariantCulture));
            }
        }

        addresses.Sort(StringComparer.Ordinal);
        return addresses;
    }

    private async Task RedisRoundAsync(RedisMembersOptions redis, IDatabase db)
    {
        try
        {
            if (_selfId is not null)
            {
                await HeartbeatAsync(db, redis).ConfigureAwait(false);
            }

            var ids = await db.SetMembersAsync(redis.KeyPrefix + "members").ConfigureAwait(false);
            var keys = new RedisKey[ids.Length];
            for (var i = 0; i < ids.Length; i++)
            {
                keys[i] = redis.KeyPrefix + "member:" + ids[i];
            }

            var values = keys.Length == 0 ? [] : await db.StringGetAsync(keys).ConfigureAwait(false);
            if (_redisDown)
            {
                _redisDown = false;
                LogRedisBack(_logger);
            }

            List<string> gone = [];
            List<string> joined = [];
            var present = new HashSet<string>(StringComparer.Ordinal);
            lock (_gate)
            {
                for (var i = 0; i < ids.Length; i++)
                {
                    string id = ids[i]!;
                    if (id == _selfId)
                    {
                        continue;
                    }

                    if (values[i].IsNull || !TryParseHeartbeat(values[i]!, out var state, out var address, out var seen))
                    {
                        // Expired: the member stopped renewing its key.
                        _ = db.SetRemoveAsync(redis.KeyPrefix + "members", id, CommandFlags.FireAndForget);
                        continue;
                    }

                    present.Add(id);
                    if (!_known.TryGetValue(id, out var peer))
                    {
                        peer = new Peer(id, address);
                        _known[id] = peer;
                        joined.Add(id);
                    }

                    // A member a forward found unreachable stays out until it heartbeats again.
                    if (!peer.Live && seen > peer.LastSeen)
                    {
                        peer.Live = true;
                        peer.Failures = 0;
                    }

                    peer.Address = address;
                    peer.State = state;
                    peer.LastSeen = seen;
                }

                foreach (var id in _known.Keys.ToList())
                {
                    if (!present.Contains(id))
                    {
                        _known.Remove(id);
                        gone.Add(id);
                    }
                }
            }

            foreach (var id in gone)
            {
                LogMemberGone(_logger, id, "its heartbeat key expired");
            }

            foreach (var id in joined)
            {
                LogMemberLive(_logger, id);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Keep the last known members: forwards that fail still fall back, and a dead member is marked then.
            if (!_redisDown)
            {
                _redisDown = true;
                LogRedisFailed(_logger, ex.Message);
            }
        }
    }

    private async Task HeartbeatAsync(IDatabase db, RedisMembersOptions redis)
    {
        if (_selfId is null)
        {
            return;
        }

        var value = RingHeaders.NameOf(_selfState()) + "|" + SelfAddress + "|" + _time.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
        var batch = db.CreateBatch();
        var set = batch.StringSetAsync(redis.KeyPrefix + "member:" + _selfId, value, redis.Ttl);
        var add = batch.SetAddAsync(redis.KeyPrefix + "members", _selfId);
        batch.Execute();
        await Task.WhenAll(set, add).ConfigureAwait(false);
    }

    private static bool TryParseHeartbeat(string value, out MemberState state, out string address, out DateTimeOffset seen)
    {
        var parts = value.Split('|');
        state = MemberState.Joining;
        address = "";
        seen = default;
        if (parts.Length != 3 || !long.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms))
        {
            return false;
        }

        state = RingHeaders.Parse(parts[0]);
        address = parts[1];
        seen = DateTimeOffset.FromUnixTimeMilliseconds(ms);
        return address.Length > 0;
    }

    /// <summary>Builds the view from what is known now and publishes it when the members or their states changed.</summary>
    public void Rebuild()
    {
        // One rebuild at a time, so a view built from older state never replaces a newer one.
        lock (_rebuildGate)
        {
            RebuildLocked();
        }
    }

    private void RebuildLocked()
    {
        var members = new List<RingMember>();
        var owners = new List<(string Id, string Address)>();
        var selfState = _selfState();
        if (_selfId is not null)
        {
            members.Add(new RingMember(_selfId, SelfAddress, selfState, _time.GetUtcNow(), true));
            if (selfState == MemberState.Active)
            {
                owners.Add((_selfId, SelfAddress));
            }
        }

        lock (_gate)
        {
            foreach (var peer in _known.Values)
            {
                if (!peer.Live)
                {
                    continue;
                }

                members.Add(new RingMember(peer.Id, peer.Address, peer.State, peer.LastSeen, false));
                if (peer.State == MemberState.Active)
                {
                    owners.Add((peer.Id, peer.Address));
                }
            }
        }

        members.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        var old = _view;
        var same = old.Ring.Members.Count == owners.Count;
        if (same)
        {
            foreach (var (id, address) in owners)
            {
                var i = old.Ring.IndexOf(id);
                if (i < 0 || old.Addresses[i] != address)
                {
                    same = false;
                    break;
                }
            }
        }

        var ring = same ? old.Ring : new HashRing(owners.Select(o => o.Id), _tokensPerMember);
        var addresses = new string[ring.Members.Count];
        foreach (var (id, address) in owners)
        {
            addresses[ring.IndexOf(id)] = address;
        }

        var view = new RingView(ring, addresses, _selfId is null ? -1 : ring.IndexOf(_selfId), members);
        var membersSame = old.Members.Count == members.Count;
        for (var i = 0; membersSame && i < members.Count; i++)
        {
            membersSame = old.Members[i].Id == members[i].Id && old.Members[i].State == members[i].State && old.Members[i].Address == members[i].Address;
        }

        _view = view;
        if (!same)
        {
            if (ring.Collisions > 0)
            {
                LogCollisions(_logger, ring.Collisions);
            }

            LogRingChanged(_logger, ring.Members.Count, string.Join(", ", ring.Members));
        }

        if (!same || !membersSame)
        {
            Changed?.Invoke(view);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        if (_redis is not null)
        {
            if (_selfId is not null && _options.Redis is { } redis)
            {
                // Leave at once rather than after the TTL.
                try
                {
                    var db = _redis.GetDatabase();
                    await db.KeyDeleteAsync(redis.KeyPrefix + "member:" + _selfId).ConfigureAwait(false);
                    await db.SetRemoveAsync(redis.KeyPrefix + "members", _selfId).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException)
                {
                    LogRedisFailed(_logger, ex.Message);
                }
            }

            await _redis.DisposeAsync().ConfigureAwait(false);
        }

        _stopping.Dispose();
        _roundLock.Dispose();
    }

    private sealed class Peer(string id, string address)
    {
        public string Id { get; } = id;

        public string Address { get; set; } = address;

        public bool Configured { get; init; }

        public MemberState State { get; set; } = MemberState.Joining;

        public DateTimeOffset? LastSeen { get; set; }

        public bool Live { get; set; }

        public int Failures { get; set; }
    }

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "The ring now has {Count} owning members: {Members}.")]
    private static partial void LogRingChanged(ILogger logger, int count, string members);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "Ring member {Member} is gone: {Reason}.")]
    private static partial void LogMemberGone(ILogger logger, string member, string reason);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Information, Message = "Ring member {Member} is reachable.")]
    private static partial void LogMemberLive(ILogger logger, string member);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Warning, Message = "Ring membership could not be refreshed: {Reason}")]
    private static partial void LogRoundFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Warning, Message = "Ring membership cannot reach Redis; keeping the last known members: {Reason}")]
    private static partial void LogRedisFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 6006, Level = LogLevel.Information, Message = "Ring membership reaches Redis again.")]
    private static partial void LogRedisBack(ILogger logger);

    [LoggerMessage(EventId = 6007, Level = LogLevel.Information, Message = "{Collisions} ring token collisions were resolved by deriving the later tokens again.")]
    private static partial void LogCollisions(ILogger logger, int collisions);
}

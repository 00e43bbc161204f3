using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Compression;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Compression;
using PgOtelGateway.Shared.Security;

namespace PgOtelGateway.Shared.Ring;

/// <summary>The headers ring members exchange.</summary>
internal static class RingHeaders
{
    /// <summary>Set by a gateway that forwards a share to its owner (value: the forwarder's id); a request that
    /// carries it is processed where it lands and never forwarded again.</summary>
    public const string Forwarded = "x-pgotel-forwarded";

    /// <summary>Response trailer: the answering gateway's ring member id.</summary>
    public const string Member = "x-pgotel-ring-member";

    /// <summary>Response trailer: the answering gateway's state (<c>JOINING</c>, <c>ACTIVE</c>, <c>LEAVING</c>).</summary>
    public const string State = "x-pgotel-ring-state";

    /// <summary>The wire name of a state.</summary>
    public static string NameOf(MemberState state) => state switch
    {
        MemberState.Active => "ACTIVE",
        MemberState.Leaving => "LEAVING",
        _ => "JOINING",
    };

    /// <summary>Parses a wire name; unknown names read as JOINING (owns nothing).</summary>
    public static MemberState Parse(string? name) => name switch
    {
        "ACTIVE" => MemberState.Active,
        "LEAVING" => MemberState.Leaving,
        _ => MemberState.Joining,
    };
}

/// <summary>What a probe learnt about a member.</summary>
/// <param name="Id">The id the member answered with (its trailer), or null.</param>
/// <param name="State">Its state (ACTIVE when it did not say).</param>
internal readonly record struct ProbeAnswer(string? Id, MemberState State);

/// <summary>
/// One pooled gRPC channel (HTTP/2, multiplexed) per member address, for forwarding and probes. Channels of
/// addresses no longer in the ring are disposed by <see cref="Retain"/>.
/// </summary>
internal sealed class PeerClients : IDisposable
{
    private readonly ConcurrentDictionary<string, (GrpcChannel Channel, MetricsService.MetricsServiceClient Client)> _clients = new(StringComparer.Ordinal);
    private readonly RingClientTlsOptions _tls;
    private readonly string _bearerToken;
    private readonly string _compression;
    private readonly IReadOnlyDictionary<string, string> _extraHeaders;

    /// <param name="tls">TLS towards the members.</param>
    /// <param name="bearerToken">Sent as <c>authorization: Bearer …</c> when the members' receivers ask for one.</param>
    /// <param name="compression"><c>zstd</c>, <c>gzip</c> or <c>none</c>.</param>
    /// <param name="extraHeaders">Further request metadata (the agent's configured headers).</param>
    public PeerClients(RingClientTlsOptions tls, string bearerToken, string compression = "zstd", IReadOnlyDictionary<string, string>? extraHeaders = null)
    {
        _tls = tls;
        _bearerToken = bearerToken;
        _compression = compression;
        _extraHeaders = extraHeaders ?? new Dictionary<string, string>();
    }

    /// <summary>The client of the member at <paramref name="address"/> (<c>host:port</c>).</summary>
    public MetricsService.MetricsServiceClient For(string address) => _clients.GetOrAdd(address, Create).Client;

    /// <summary>Request headers for a call; <paramref name="forwardedBy"/> sets the hop header.</summary>
    public Metadata Headers(string? forwardedBy)
    {
        var headers = new Metadata();
        if (forwardedBy is not null)
        {
            headers.Add(RingHeaders.Forwarded, forwardedBy);
        }

        foreach (var (key, value) in _extraHeaders)
        {
            headers.Add(key.ToLowerInvariant(), value);
        }

        if (_bearerToken.Length > 0)
        {
            headers.Add("authorization", "Bearer " + _bearerToken);
        }

        if (_compression is "zstd" or "gzip")
        {
            headers.Add("grpc-internal-encoding-request", _compression);
        }

        return headers;
    }

    /// <summary>
    /// Sends an empty Export (the receiver answers it without touching its pipeline) and reads the member's id and
    /// state from the trailers. Throws <see cref="RpcException"/> when the member cannot be reached or refuses.
    /// </summary>
    public async Task<ProbeAnswer> ProbeAsync(string address, string? forwardedBy, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var call = For(address).ExportAsync(new ExportMetricsServiceRequest(), Headers(forwardedBy ?? "probe"), DateTime.UtcNow + timeout, cancellationToken);
        await call.ResponseAsync.ConfigureAwait(false);
        var trailers = call.GetTrailers();
        var state = trailers.GetValue(RingHeaders.State);
        return new ProbeAnswer(trailers.GetValue(RingHeaders.Member), state is null ? MemberState.Active : RingHeaders.Parse(state));
    }

    /// <summary>Disposes the channels of addresses not in <paramref name="addresses"/>.</summary>
    public void Retain(IReadOnlyCollection<string> addresses)
    {
        foreach (var address in _clients.Keys)
        {
            if (!addresses.Contains(address) && _clients.TryRemove(address, out var gone))
            {
                gone.Channel.Dispose();
            }
        }
    }

    public void Dispose()
    {
        foreach (var (_, (channel, _)) in _clients)
        {
            channel.Dispose();
        }

        _clients.Clear();
    }

    private (GrpcChannel, MetricsService.MetricsServiceClient) Create(string address)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            KeepAlivePingDelay = TimeSpan.FromSeconds(20),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            ConnectTimeout = TimeSpan.FromSeconds(5),
        };
        if (_tls.Enabled)
        {
            TlsClientSetup.Apply(handler.SslOptions, _tls.CaFile, _tls.CertFile, _tls.KeyFile, _tls.ServerName, _tls.InsecureSkipVerify);
        }

        var channel = GrpcChannel.ForAddress((_tls.Enabled ? "https://" : "http://") + address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            CompressionProviders = [new GzipCompressionProvider(System.IO.Compression.CompressionLevel.Fastest), new ZstdGrpcCompressionProvider()],
            MaxSendMessageSize = 64 << 20,
            MaxReceiveMessageSize = 4 << 20,
        });
        return (channel, new MetricsService.MetricsServiceClient(channel));
    }
}

using Google.Protobuf;
using Grpc.Core;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Otlp;

namespace PgOtelGateway.Gateway.Ingest;

/// <summary>
/// <c>opentelemetry.proto.collector.metrics.v1.MetricsService/Export</c>. Bound by hand rather than through the
/// generated base class so a request that does not parse gets INVALID_ARGUMENT naming the problem, not a generic
/// internal error.
/// </summary>
[BindServiceMethod(typeof(OtlpMetricsServiceBase), nameof(BindService))]
internal abstract class OtlpMetricsServiceBase
{
    public const string ServiceName = "opentelemetry.proto.collector.metrics.v1.MetricsService";

    /// <summary>The header a forwarding gateway sets, so a request is never forwarded twice.</summary>
    public const string HopHeader = Shared.Ring.RingHeaders.Forwarded;

    private static readonly Method<ExportMetricsServiceRequest, ExportMetricsServiceResponse> ExportMethod = new(
        MethodType.Unary,
        ServiceName,
        "Export",
        new Marshaller<ExportMetricsServiceRequest>(static (m, ctx) => ctx.Complete(m.ToByteArray()), ParseRequest),
        new Marshaller<ExportMetricsServiceResponse>(static (m, ctx) => ctx.Complete(m.ToByteArray()), static ctx => ExportMetricsServiceResponse.Parser.ParseFrom(ctx.PayloadAsReadOnlySequence())));

    // grpc-dotnet binds only handlers that override a method declared on the type named in the attribute.
    public static void BindService(ServiceBinderBase binder, OtlpMetricsServiceBase? service) =>
        binder.AddMethod(ExportMethod, service is null ? null : service.Export);

    public abstract Task<ExportMetricsServiceResponse> Export(ExportMetricsServiceRequest request, ServerCallContext context);

    private static ExportMetricsServiceRequest ParseRequest(DeserializationContext context)
    {
        try
        {
            return OtlpRequestReader.Parse(context.PayloadAsReadOnlySequence());
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.InvalidArgument, "malformed ExportMetricsServiceRequest: " + ex.Message));
        }
    }

}

/// <summary>The Export handler: admission checks, then the receiver's ingest.</summary>
internal sealed class OtlpGrpcService(OtlpIngestRegistry registry) : OtlpMetricsServiceBase
{
    private readonly OtlpIngestRegistry _registry = registry;

    public override async Task<ExportMetricsServiceResponse> Export(ExportMetricsServiceRequest request, ServerCallContext context)
    {
        var http = context.GetHttpContext();
        var ingest = _registry.ForGrpcPort(http.Connection.LocalPort);
        var client = http.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        var fromPeer = _registry.IsForwardedByPeer(context.RequestHeaders.GetValue(HopHeader) is not null, http.Connection.RemoteIpAddress);
        switch (ingest.Admit(context.RequestHeaders.GetValue("authorization"), client, out var retryAfter, rateLimited: !fromPeer))
        {
            case AdmissionResult.Unauthenticated:
                throw new RpcException(new Grpc.Core.Status(StatusCode.Unauthenticated, "a valid bearer token is required"));
            case AdmissionResult.RateLimited:
                throw ErrorDetails.Rpc(StatusCode.ResourceExhausted, "rate limit exceeded for this client", retryAfter);
        }

        if (_registry.RingIdentity is { } ring)
        {
            // Ring members learn each other's id and state from these (probes are empty Exports).
            var (member, state) = ring();
            context.ResponseTrailers.Add(Shared.Ring.RingHeaders.Member, member);
            context.ResponseTrailers.Add(Shared.Ring.RingHeaders.State, state);
        }

        try
        {
            var forwarded = context.RequestHeaders.GetValue(HopHeader) is not null;
            return await ingest.ExportAsync(request, "grpc", context.CancellationToken, forwarded).ConfigureAwait(false);
        }
        catch (PipelineRefusedException ex)
        {
            throw ErrorDetails.Rpc(StatusCode.Unavailable, ex.Message, ex.RetryAfter);
        }
    }
}

/// <summary>The ingest of each OTLP receiver, found by the local port a request came in on.</summary>
internal sealed class OtlpIngestRegistry
{
    private readonly Dictionary<int, OtlpIngest> _byGrpcPort = [];
    private readonly Dictionary<int, OtlpIngest> _byHttpPort = [];

    // The listeners accept connections before the receivers are known by their bound ports; until Open(), a
    // request is told to come back (UNAVAILABLE / 503, which clients retry) rather than that nothing is here.
    private volatile bool _open;

    /// <summary>This gateway's ring member id and state, sent as response trailers; null without a ring.</summary>
    public Func<(string Member, string State)>? RingIdentity { get; set; }

    /// <summary>Whether a remote address is another ring member's; null without a ring.</summary>
    public Func<System.Net.IPAddress, bool>? IsRingPeer { get; set; }

    /// <summary>
    /// A request another member forwarded (hop header, from a member's address) was rate-limited at that member's
    /// receiver already; counting it again would throttle the whole fleet behind one gateway's address.
    /// </summary>
    public bool IsForwardedByPeer(bool hopHeader, System.Net.IPAddress? remote) =>
        hopHeader && remote is not null && IsRingPeer is { } isPeer && isPeer(remote);

    /// <summary>Whether the receivers are registered and requests can be served.</summary>
    public bool IsOpen => _open;

    public void AddGrpc(int port, OtlpIngest ingest) => _byGrpcPort[port] = ingest;

    public void AddHttp(int port, OtlpIngest ingest) => _byHttpPort[port] = ingest;

    /// <summary>Every receiver is added: lookups start (the dictionaries are not written after this).</summary>
    public void Open() => _open = true;

    public OtlpIngest ForGrpcPort(int port)
    {
        if (!_open)
        {
            throw ErrorDetails.Rpc(StatusCode.Unavailable, "the gateway is starting", TimeSpan.FromSeconds(1));
        }

        return _byGrpcPort.TryGetValue(port, out var i) ? i
            : throw new RpcException(new Grpc.Core.Status(StatusCode.Unimplemented, "no OTLP/gRPC receiver on this port"));
    }

    /// <summary>The receiver on this port; null when there is none or (see <see cref="IsOpen"/>) not yet.</summary>
    public OtlpIngest? ForHttpPort(int port) => _open ? _byHttpPort.GetValueOrDefault(port) : null;
}

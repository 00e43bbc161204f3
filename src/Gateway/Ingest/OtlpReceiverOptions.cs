using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Ingest;

/// <summary><c>receivers.otlp</c>: OTLP over gRPC (:4317) and HTTP (:4318).</summary>
internal sealed class OtlpReceiverOptions : IValidatableOptions
{
    public OtlpProtocolsOptions Protocols { get; set; } = new();

    /// <summary>Largest request after decompression; larger ones get RESOURCE_EXHAUSTED / 413.</summary>
    public ByteSize MaxRequestSize { get; set; } = ByteSize.FromMiB(64);

    /// <summary>Bearer-token authentication on both protocols.</summary>
    public AuthOptions Auth { get; set; } = new();

    /// <summary>TLS (and mTLS with client_ca_file) on both protocols.</summary>
    public ServerTlsOptions Tls { get; set; } = new();

    /// <summary>Per-client request rate limit (token bucket per client address).</summary>
    public RateLimitingOptions RateLimiting { get; set; } = new();

    /// <summary>Per-point limits; points over them are rejected by partial success.</summary>
    public PointLimitsOptions Limits { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        if (Protocols.Grpc is null && Protocols.Http is null)
        {
            yield return "protocols must enable grpc, http or both";
        }

        if (MaxRequestSize.Bytes < 1024)
        {
            yield return "max_request_size must be at least 1KiB";
        }

        if (RateLimiting.Enabled && (RateLimiting.RequestsPerSecond <= 0 || RateLimiting.Burst < 1))
        {
            yield return "rate_limiting needs requests_per_second > 0 and burst >= 1";
        }

        if ((Tls.CertFile.Length > 0) != (Tls.KeyFile.Length > 0))
        {
            yield return "tls needs both cert_file and key_file";
        }

        if (Tls.ClientCaFile.Length > 0 && Tls.CertFile.Length == 0)
        {
            yield return "tls.client_ca_file (mTLS) needs cert_file and key_file";
        }
    }
}

/// <summary>As in the collector, listing a protocol turns it on: <c>grpc:</c> alone serves only gRPC.</summary>
internal sealed class OtlpProtocolsOptions
{
    public GrpcEndpointOptions? Grpc { get; set; }

    public HttpEndpointOptions? Http { get; set; }
}

internal sealed class GrpcEndpointOptions
{
    public string Endpoint { get; set; } = "0.0.0.0:4317";
}

internal sealed class HttpEndpointOptions
{
    public string Endpoint { get; set; } = "0.0.0.0:4318";
}

internal sealed class AuthOptions
{
    /// <summary>The token clients must send as <c>Authorization: Bearer …</c>; also <c>bearer_token_file</c>.</summary>
    [Secret]
    public string BearerToken { get; set; } = "";
}

internal sealed class ServerTlsOptions
{
    public string CertFile { get; set; } = "";

    public string KeyFile { get; set; } = "";

    /// <summary>When set, clients must present a certificate signed by this CA (mTLS).</summary>
    public string ClientCaFile { get; set; } = "";
}

internal sealed class RateLimitingOptions
{
    public bool Enabled { get; set; } = true;

    public double RequestsPerSecond { get; set; } = 100;

    public int Burst { get; set; } = 200;
}

internal sealed class PointLimitsOptions
{
    public int MaxLabelNameBytes { get; set; } = 1024;

    public int MaxLabelValueBytes { get; set; } = 2048;

    public int MaxAttributes { get; set; } = 30;
}

using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Gateway.Ingest;

/// <summary>The outcome of the checks a request passes before its data is read.</summary>
internal enum AdmissionResult
{
    Admitted,
    Unauthenticated,
    RateLimited,
}

/// <summary>
/// What both OTLP transports share: bearer-token check (constant time), the per-client rate limit, per-point
/// limits with partial success, and handing the data to the pipeline. Transports map the outcomes to their
/// status codes.
/// </summary>
internal sealed partial class OtlpIngest
{
    private readonly string _receiverId;
    private readonly OtlpReceiverOptions _options;
    private readonly IMetricsConsumer _next;
    private readonly IMetricsConsumer _local;
    private readonly ILogger _logger;
    private readonly RateLimiter? _rateLimiter;
    private readonly byte[]? _tokenHash;

    /// <param name="local">Where a request another gateway forwarded (hop header) goes: the pipeline, never the
    /// ring router again; defaults to <paramref name="next"/>.</param>
    public OtlpIngest(string receiverId, OtlpReceiverOptions options, IMetricsConsumer next, ILogger logger, TimeProvider time, IMetricsConsumer? local = null)
    {
        _receiverId = receiverId;
        _options = options;
        _next = next;
        _local = local ?? next;
        _logger = logger;
        _rateLimiter = options.RateLimiting.Enabled ? new RateLimiter(options.RateLimiting, time) : null;
        _tokenHash = options.Auth.BearerToken.Length > 0 ? SHA256.HashData(Encoding.UTF8.GetBytes(options.Auth.BearerToken)) : null;
    }

    public string ReceiverId => _receiverId;

    public long MaxRequestBytes => _options.MaxRequestSize.Bytes;

    /// <summary>Checks the token and (unless <paramref name="rateLimited"/> is false) the client's rate before anything is read.</summary>
    public AdmissionResult Admit(string? authorization, string client, out TimeSpan retryAfter, bool rateLimited = true)
    {
        retryAfter = TimeSpan.Zero;
        if (_tokenHash is not null && !TokenMatches(authorization))
        {
            Refused("unauthenticated", 0);
            return AdmissionResult.Unauthenticated;
        }

        if (rateLimited && _rateLimiter is not null && !_rateLimiter.TryAcquire(client, out retryAfter))
        {
            Refused("rate_limited", 0);
            return AdmissionResult.RateLimited;
        }

        return AdmissionResult.Admitted;
    }

    private bool TokenMatches(string? authorization)
    {
        const string Prefix = "Bearer ";
        if (authorization is null || !authorization.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        // Hashing first gives equal lengths, so the comparison takes the same time whatever was sent.
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(authorization[Prefix.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, _tokenHash);
    }

    /// <summary>
    /// Enforces per-point limits, hands the rest to the pipeline, and answers with partial success when points
    /// were rejected. A refusal by the pipeline propagates as <see cref="PipelineRefusedException"/>.
    /// </summary>
    public async Task<ExportMetricsServiceResponse> ExportAsync(ExportMetricsServiceRequest request, string transport, CancellationToken cancellationToken, bool forwarded = false)
    {
        var total = MetricsCounting.DataPoints(request);
        var (rejected, message) = PointLimits.Enforce(request, _options.Limits);
        var accepted = total - rejected;
        if (accepted > 0)
        {
            try
            {
                await (forwarded ? _local : _next).ConsumeAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (PipelineRefusedException ex)
            {
                Refused(ex.Reason.ToString().ToLowerInvariant(), total);
                LogRefused(_logger, _receiverId, total, ex.Message);
                throw;
            }

            GatewayMetrics.AcceptedPoints.WithLabels(_receiverId, transport).Inc(accepted);
            if (forwarded)
            {
                GatewayMetrics.ForwardedInPoints.Inc(accepted);
            }
        }

        var response = new ExportMetricsServiceResponse();
        if (rejected > 0)
        {
            GatewayMetrics.RejectedPoints.WithLabels(_receiverId, "limits").Inc(rejected);
            response.PartialSuccess = new ExportMetricsPartialSuccess { RejectedDataPoints = rejected, ErrorMessage = message ?? "" };
            LogRejected(_logger, _receiverId, rejected, message ?? "");
        }

        return response;
    }

    public void Refused(string reason, int points)
    {
        GatewayMetrics.RefusedRequests.WithLabels(_receiverId, reason).Inc();
        GatewayMetrics.RefusedPoints.WithLabels(_receiverId, reason).Inc(points);
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "Receiver {Receiver} rejected {Points} data points over its limits: {Reason}")]
    private static partial void LogRejected(ILogger logger, string receiver, int points, string reason);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Receiver {Receiver} refused {Points} data points for now; the client will retry: {Reason}")]
    private static partial void LogRefused(ILogger logger, string receiver, int points, string reason);
}

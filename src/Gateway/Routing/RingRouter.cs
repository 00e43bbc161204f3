using System.Diagnostics;
using Google.Rpc;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Ring;

namespace PgOtelGateway.Gateway.Routing;

/// <summary>
/// The routing stage between a receiver and its pipelines. It splits each request by owner on the ring: this
/// gateway's share goes down its own pipeline, every other share is forwarded to its owner (OTLP Export with the
/// hop header, over a pooled channel). An owner that cannot be reached within <c>forward_timeout</c> is bypassed:
/// its share is processed here and counted as a fallback. The call completes only when every share was accepted
/// somewhere; an owner's own refusal (it is overloaded) is passed back so the client retries.
/// </summary>
internal sealed partial class RingRouter : IMetricsConsumer
{
    private readonly GatewayRing _ring;
    private readonly IMetricsConsumer _local;
    private readonly ILogger _logger;
    private long _lastFallbackLog;

    public RingRouter(GatewayRing ring, IMetricsConsumer local, ILogger<RingRouter> logger)
    {
        _ring = ring;
        _local = local;
        _logger = logger;
    }

    /// <summary>The stage a forwarded request (one with the hop header) goes to: the local pipeline.</summary>
    public IMetricsConsumer Local => _local;

    public async Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        var view = _ring.Membership.Current;
        if (view.Ring.Members.Count == 0)
        {
            // Nobody owns anything (e.g. the whole tier is starting): keep the data rather than refuse it.
            await _local.ConsumeAsync(request, cancellationToken).ConfigureAwait(false);
            return;
        }

        var parts = new List<(int Owner, ExportMetricsServiceRequest Part)>(view.Ring.Members.Count);
        RequestPartitioner.Partition(request, view.Ring, _ring.Options.RoutingKey, parts);
        if (parts.Count == 1)
        {
            await SendAsync(view, parts[0].Owner, parts[0].Part, cancellationToken).ConfigureAwait(false);
            return;
        }

        var tasks = new Task[parts.Count];
        for (var i = 0; i < parts.Count; i++)
        {
            tasks[i] = SendAsync(view, parts[i].Owner, parts[i].Part, cancellationToken);
        }

        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (Exception) when (tasks.Length > 1)
        {
            // Report the first refusal (with its retry hint); other failures become a refusal too.
            foreach (var task in tasks)
            {
                if (task.Exception?.InnerException is PipelineRefusedException refused)
                {
                    throw refused;
                }
            }

            throw;
        }
    }

    private Task SendAsync(RingView view, int owner, ExportMetricsServiceRequest part, CancellationToken cancellationToken) =>
        owner == view.Self || owner < 0 ? _local.ConsumeAsync(part, cancellationToken) : ForwardAsync(view, owner, part, cancellationToken);

    private async Task ForwardAsync(RingView view, int owner, ExportMetricsServiceRequest part, CancellationToken cancellationToken)
    {
        var member = view.Ring.Members[owner];
        var address = view.Addresses[owner];
        var points = MetricsCounting.DataPoints(part);
        var started = Stopwatch.GetTimestamp();
        string reason;
        try
        {
            using var call = _ring.Peers.For(address).ExportAsync(part, _ring.Peers.Headers(_ring.SelfId), DateTime.UtcNow + _ring.Options.ForwardTimeout, cancellationToken);
            await call.ResponseAsync.ConfigureAwait(false);
            GatewayMetrics.ForwardDuration.WithLabels(member, "ok").Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            GatewayMetrics.ForwardedPoints.WithLabels(member).Inc(points);
            return;
        }
        catch (RpcException ex) when (!cancellationToken.IsCancellationRequested && RefusalDelay(ex) is { } retryAfter)
        {
            // The owner is up but cannot take it now: the client retries, as it would against the owner itself.
            GatewayMetrics.ForwardDuration.WithLabels(member, "refused").Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            GatewayMetrics.ForwardRefusedPoints.WithLabels(member).Inc(points);
            throw new PipelineRefusedException(RefusalReason.Unavailable, $"ring owner {member} refused the data for now: {ex.Status.Detail}", retryAfter);
        }
        catch (RpcException ex) when (!cancellationToken.IsCancellationRequested)
        {
            reason = ex.StatusCode + ": " + ex.Status.Detail;
        }
        catch (HttpRequestException ex) when (!cancellationToken.IsCancellationRequested)
        {
            reason = ex.Message;
        }

        GatewayMetrics.ForwardDuration.WithLabels(member, "unreachable").Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        _ring.Membership.ReportUnreachable(member);
        GatewayMetrics.ForwardFallbackPoints.WithLabels(member).Inc(points);
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastFallbackLog);
        if (now - last > 10_000 && Interlocked.CompareExchange(ref _lastFallbackLog, now, last) == last)
        {
            LogFallback(_logger, member, address, points, reason);
        }

        await _local.ConsumeAsync(part, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The owner's retry hint when it answered with a refusal of its own (RetryInfo attached).</summary>
    private static TimeSpan? RefusalDelay(RpcException ex)
    {
        if (ex.StatusCode is not (StatusCode.Unavailable or StatusCode.ResourceExhausted))
        {
            return null;
        }

        var bytes = ex.Trailers.GetValueBytes("grpc-status-details-bin");
        if (bytes is null)
        {
            return null;
        }

        try
        {
            foreach (var detail in Google.Rpc.Status.Parser.ParseFrom(bytes).Details)
            {
                if (detail.TryUnpack<RetryInfo>(out var info))
                {
                    return info.RetryDelay.ToTimeSpan();
                }
            }
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
        }

        return null;
    }

    [LoggerMessage(EventId = 6201, Level = LogLevel.Warning, Message = "Ring owner {Member} at {Address} could not take {Points} points ({Reason}); processing them here instead (logged at most every 10 s).")]
    private static partial void LogFallback(ILogger logger, string member, string address, int points, string reason);
}

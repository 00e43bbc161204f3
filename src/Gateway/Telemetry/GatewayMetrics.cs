using Prometheus;

namespace PgOtelGateway.Gateway.Telemetry;

/// <summary>The gateway's own Prometheus metrics (served on service.telemetry.metrics.address, default :8888).</summary>
internal static class GatewayMetrics
{
    public static readonly Counter AcceptedPoints = Metrics.CreateCounter(
        "pgotel_receiver_accepted_points_total", "Data points accepted by a receiver and passed to the pipeline.",
        new CounterConfiguration { LabelNames = ["receiver", "transport"] });

    public static readonly Counter RefusedPoints = Metrics.CreateCounter(
        "pgotel_receiver_refused_points_total", "Data points refused whole (the client should retry): auth, rate limit, memory, queue full, too large, malformed.",
        new CounterConfiguration { LabelNames = ["receiver", "reason"] });

    public static readonly Counter RefusedRequests = Metrics.CreateCounter(
        "pgotel_receiver_refused_requests_total", "Requests refused whole, by reason (unauthenticated, rate_limited, too_large, malformed, memorylimit, queuefull, …).",
        new CounterConfiguration { LabelNames = ["receiver", "reason"] });

    public static readonly Counter RejectedPoints = Metrics.CreateCounter(
        "pgotel_receiver_rejected_points_total", "Data points rejected by partial success (the client must not retry them), by reason.",
        new CounterConfiguration { LabelNames = ["receiver", "reason"] });

    public static readonly Counter ExporterSentPoints = Metrics.CreateCounter(
        "pgotel_exporter_sent_points_total", "Data points (samples for remote write) an exporter delivered.",
        new CounterConfiguration { LabelNames = ["exporter"] });

    public static readonly Counter ExporterFailedSends = Metrics.CreateCounter(
        "pgotel_exporter_failed_sends_total", "Send attempts that failed and will be retried.",
        new CounterConfiguration { LabelNames = ["exporter"] });

    public static readonly Counter ExporterDroppedPoints = Metrics.CreateCounter(
        "pgotel_exporter_dropped_points_total", "Data points an exporter gave up on, by reason.",
        new CounterConfiguration { LabelNames = ["exporter", "reason"] });

    public static readonly Gauge ExporterQueueSize = Metrics.CreateGauge(
        "pgotel_exporter_queue_size", "Samples waiting in an exporter's send queue.",
        new GaugeConfiguration { LabelNames = ["exporter"] });

    public static readonly Gauge ExporterQueueCapacity = Metrics.CreateGauge(
        "pgotel_exporter_queue_capacity", "The most samples an exporter's send queue holds before the pipeline refuses data.",
        new GaugeConfiguration { LabelNames = ["exporter"] });

    public static readonly Histogram ExporterSendDuration = Metrics.CreateHistogram(
        "pgotel_exporter_send_duration_seconds", "Duration of one send (request and response) by outcome.",
        new HistogramConfiguration
        {
            LabelNames = ["exporter", "outcome"],
            Buckets = Histogram.ExponentialBuckets(0.001, 2, 16),
        });

    public static readonly Counter ForwardedPoints = Metrics.CreateCounter(
        "pgotel_gateway_forwarded_points_total", "Data points forwarded to their owner on the ring and accepted there, by member.",
        new CounterConfiguration { LabelNames = ["member"] });

    public static readonly Counter ForwardFallbackPoints = Metrics.CreateCounter(
        "pgotel_gateway_forward_fallback_points_total", "Data points whose owner could not be reached within gateway.ring.forward_timeout and were processed here instead, by owner.",
        new CounterConfiguration { LabelNames = ["member"] });

    public static readonly Counter ForwardRefusedPoints = Metrics.CreateCounter(
        "pgotel_gateway_forward_refused_points_total", "Data points their owner refused (it was overloaded); the client was told to retry, by owner.",
        new CounterConfiguration { LabelNames = ["member"] });

    public static readonly Counter ForwardedInPoints = Metrics.CreateCounter(
        "pgotel_gateway_forwarded_in_points_total", "Data points another gateway forwarded here (requests with the hop header).");

    public static readonly Histogram ForwardDuration = Metrics.CreateHistogram(
        "pgotel_gateway_forward_duration_seconds", "Duration of one forward to an owner, by member and outcome (ok, refused, unreachable).",
        new HistogramConfiguration
        {
            LabelNames = ["member", "outcome"],
            Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16),
        });

    public static readonly Gauge RingMembers = Metrics.CreateGauge(
        "pgotel_gateway_ring_members", "Ring members this gateway sees, by state (JOINING, ACTIVE, LEAVING).",
        new GaugeConfiguration { LabelNames = ["state"] });

    public static readonly Gauge RingOwnedFraction = Metrics.CreateGauge(
        "pgotel_gateway_ring_owned_fraction", "The share of the hash space this gateway owns (0 unless ACTIVE).");
}

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

    public static readonly Counter DedupPoints = Metrics.CreateCounter(
        "pgotel_gateway_dedup_points_total", "Data points a dedupe processor looked at, by result: passed (new identity), duplicate_local (dropped by the local cache), duplicate_redis (dropped because Redis already held the identity), untracked (no identity keys, passed).",
        new CounterConfiguration { LabelNames = ["processor", "result"] });

    public static readonly Gauge DedupCacheSize = Metrics.CreateGauge(
        "pgotel_gateway_dedup_cache_entries", "Identities in a dedupe processor's local cache.",
        new GaugeConfiguration { LabelNames = ["processor"] });

    public static readonly Counter RedisRoundTrips = Metrics.CreateCounter(
        "pgotel_gateway_dedup_redis_round_trips_total", "Redis round trips of a dedupe or ha_tracker processor (at most one per request).",
        new CounterConfiguration { LabelNames = ["processor"] });

    public static readonly Counter RedisErrors = Metrics.CreateCounter(
        "pgotel_gateway_dedup_redis_errors_total", "Redis calls of a dedupe or ha_tracker processor that failed or could not be made; the request then ran on local state only.",
        new CounterConfiguration { LabelNames = ["processor"] });

    public static readonly Counter HaElections = Metrics.CreateCounter(
        "pgotel_gateway_ha_elections_total", "Replicas this gateway elected for a cluster (first election or failover).",
        new CounterConfiguration { LabelNames = ["processor"] });

    public static readonly Counter HaFailovers = Metrics.CreateCounter(
        "pgotel_gateway_ha_failovers_total", "Elections this gateway moved to another replica because the elected one was not seen for failover_timeout.",
        new CounterConfiguration { LabelNames = ["processor"] });

    public static readonly Counter HaPoints = Metrics.CreateCounter(
        "pgotel_gateway_ha_points_total", "Data points an ha_tracker processor looked at, by result: accepted (elected replica), dropped (another replica), untracked (no cluster or replica attribute, passed).",
        new CounterConfiguration { LabelNames = ["processor", "result"] });
}

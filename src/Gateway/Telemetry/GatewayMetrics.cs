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

    public static readonly Counter DecodeFallbacks = CountDecodeFallbacks(Metrics.CreateCounter(
        "pgotel_receiver_decode_fallbacks_total", "OTLP/protobuf requests (and durable-queue records) decoded by the generic protobuf parser instead of the gateway's caching reader: unknown fields, a field sent twice to be merged, or malformed input."));

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

    public static readonly Counter ExporterResentPoints = Metrics.CreateCounter(
        "pgotel_exporter_resent_points_total",
        "Samples resent after an attempt whose answer was lost and rejected as out of order: that attempt had stored them.",
        new CounterConfiguration { LabelNames = ["exporter"] });

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

    public static readonly Gauge QueueRecords = Metrics.CreateGauge(
        "pgotel_gateway_queue_records", "Records in the durable queue that an exporter has not confirmed yet (its depth).",
        new GaugeConfiguration { LabelNames = ["pipeline", "exporter"] });

    public static readonly Gauge QueueExporterBytes = Metrics.CreateGauge(
        "pgotel_gateway_queue_exporter_bytes", "Bytes of durable-queue records an exporter has not confirmed yet.",
        new GaugeConfiguration { LabelNames = ["pipeline", "exporter"] });

    public static readonly Gauge QueueOldestAge = Metrics.CreateGauge(
        "pgotel_gateway_queue_oldest_age_seconds", "Age of the oldest durable-queue record an exporter has not confirmed (0 when it has confirmed all).",
        new GaugeConfiguration { LabelNames = ["pipeline", "exporter"] });

    public static readonly Gauge QueueBytes = Metrics.CreateGauge(
        "pgotel_gateway_queue_bytes", "Bytes the durable queue holds on disk (segments not yet passed by every exporter, plus appends being written).",
        new GaugeConfiguration { LabelNames = ["pipeline"] });

    public static readonly Gauge QueueCapacityBytes = Metrics.CreateGauge(
        "pgotel_gateway_queue_capacity_bytes", "gateway.queue.max_size: beyond it the queue refuses new data.",
        new GaugeConfiguration { LabelNames = ["pipeline"] });

    public static readonly Gauge QueueSegments = Metrics.CreateGauge(
        "pgotel_gateway_queue_segments", "Segment files of the durable queue on disk.",
        new GaugeConfiguration { LabelNames = ["pipeline"] });

    public static readonly Counter QueueAppendedRecords = Metrics.CreateCounter(
        "pgotel_gateway_queue_appended_records_total", "Records (requests after the processors) made durable in the queue.",
        new CounterConfiguration { LabelNames = ["pipeline"] });

    public static readonly Counter QueueRefusedRequests = Metrics.CreateCounter(
        "pgotel_gateway_queue_refused_requests_total", "Requests the durable queue refused because it was full (the client got UNAVAILABLE / 503 and retries).",
        new CounterConfiguration { LabelNames = ["pipeline"] });

    public static readonly Counter QueueRefusedPoints = Metrics.CreateCounter(
        "pgotel_gateway_queue_refused_points_total", "Data points in the requests the durable queue refused because it was full.",
        new CounterConfiguration { LabelNames = ["pipeline"] });

    public static readonly Counter QueueTornTails = Metrics.CreateCounter(
        "pgotel_gateway_queue_torn_tails_total", "Torn writes found at the end of the log on start and cut off (records never acknowledged).",
        new CounterConfiguration { LabelNames = ["pipeline"] });

    public static readonly Counter QueueDamagedRecords = Metrics.CreateCounter(
        "pgotel_gateway_queue_damaged_segments_total", "Damaged records met while reading (the rest of that segment was skipped; a disk fault).",
        new CounterConfiguration { LabelNames = ["pipeline", "exporter"] });

    public static readonly Counter QueueRedeliveries = Metrics.CreateCounter(
        "pgotel_gateway_queue_redeliveries_total", "Records handed to an exporter again because its previous attempt failed.",
        new CounterConfiguration { LabelNames = ["pipeline", "exporter"] });

    public static readonly Histogram QueueFsyncDuration = Metrics.CreateHistogram(
        "pgotel_gateway_queue_fsync_duration_seconds", "Duration of one fsync of the durable queue (one per group commit).",
        new HistogramConfiguration
        {
            LabelNames = ["pipeline"],
            Buckets = Histogram.ExponentialBuckets(0.0001, 2, 16),
        });
    public static readonly Counter ColdFilesUploaded = Metrics.CreateCounter(
        "pgotel_exporter_s3_files_uploaded_total", "Files the awss3 exporter stored in its target (S3 or a local folder).",
        new CounterConfiguration { LabelNames = ["exporter"] });

    public static readonly Counter ColdUploadedBytes = Metrics.CreateCounter(
        "pgotel_exporter_s3_uploaded_bytes_total", "Bytes of the files the awss3 exporter stored.",
        new CounterConfiguration { LabelNames = ["exporter"] });

    public static readonly Counter ColdUploadFailures = Metrics.CreateCounter(
        "pgotel_exporter_s3_upload_failures_total", "Uploads that failed and will be retried (the file waits in staging).",
        new CounterConfiguration { LabelNames = ["exporter"] });

    public static readonly Gauge ColdStagingBytes = Metrics.CreateGauge(
        "pgotel_exporter_s3_staging_bytes", "Bytes waiting in the awss3 exporter's staging folder (journals and files not uploaded yet).",
        new GaugeConfiguration { LabelNames = ["exporter"] });

    public static readonly Gauge ColdStagingFiles = Metrics.CreateGauge(
        "pgotel_exporter_s3_staging_files", "Journals and files waiting in the awss3 exporter's staging folder.",
        new GaugeConfiguration { LabelNames = ["exporter"] });

    public static readonly Counter ColdStagingRefusals = Metrics.CreateCounter(
        "pgotel_exporter_s3_staging_full_total", "Requests the awss3 exporter refused because its staging folder was full.",
        new CounterConfiguration { LabelNames = ["exporter"] });
    public static readonly Counter DedupPoints = Metrics.CreateCounter(
        "pgotel_gateway_dedup_points_total", "Data points a dedupe processor looked at, by result: passed (new identity), duplicate_local (dropped by the local cache), duplicate_redis (dropped because Redis already held the identity), untracked (no identity keys, passed).",
        new CounterConfiguration { LabelNames = ["processor", "result"] });

    public static readonly Counter DedupPending = Metrics.CreateCounter(
        "pgotel_gateway_dedup_pending_total", "Data points a dedupe processor found held by a claim not yet confirmed, by holder: local (a request in flight on this gateway, waited for), redis (another gateway's pending claim, asked again); counted once per point and request.",
        new CounterConfiguration { LabelNames = ["processor", "holder"] });

    public static readonly Counter DedupRechecks = Metrics.CreateCounter(
        "pgotel_gateway_dedup_pending_rechecks_total", "Redis round trips a dedupe processor made to ask again about points held by another gateway's pending claim (part of pgotel_gateway_dedup_redis_round_trips_total).",
        new CounterConfiguration { LabelNames = ["processor"] });

    public static readonly Counter DedupPendingRefused = Metrics.CreateCounter(
        "pgotel_gateway_dedup_pending_refused_total", "Requests a dedupe processor refused with UNAVAILABLE because some of their points stayed held by an unconfirmed claim for longer than pending_wait.",
        new CounterConfiguration { LabelNames = ["processor"] });

    public static readonly Counter DedupClaims = Metrics.CreateCounter(
        "pgotel_gateway_dedup_claims_total", "Identities a dedupe processor claimed, by how the claim ended: confirmed (the data reached the durable queue), released (refused downstream or by dedupe; deleted so a retry passes), late (confirmed after its pending claim had expired; if another writer took it meanwhile the point passed twice).",
        new CounterConfiguration { LabelNames = ["processor", "result"] });

    public static readonly Gauge DedupCacheSize = Metrics.CreateGauge(
        "pgotel_gateway_dedup_cache_entries", "Identities in a dedupe processor's local cache.",
        new GaugeConfiguration { LabelNames = ["processor"] });

    public static readonly Counter RedisRoundTrips = Metrics.CreateCounter(
        "pgotel_gateway_dedup_redis_round_trips_total", "Redis round trips of a dedupe or ha_tracker processor (ha_tracker: at most one per request; dedupe: a claim and, once the data is queued, a confirm).",
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

    // The reader counts in a static of its own (it lives in Shared); the counter is brought up to it on each scrape.
    private static Counter CountDecodeFallbacks(Counter counter)
    {
        Metrics.DefaultRegistry.AddBeforeCollectCallback(() => counter.IncTo(Shared.Otlp.OtlpRequestReader.Fallbacks));
        return counter;
    }

    public static readonly Gauge RingOwnedFraction = Metrics.CreateGauge(
        "pgotel_gateway_ring_owned_fraction", "The share of the hash space this gateway owns (0 unless ACTIVE).");
}

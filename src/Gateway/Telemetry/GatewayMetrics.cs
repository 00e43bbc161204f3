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
}

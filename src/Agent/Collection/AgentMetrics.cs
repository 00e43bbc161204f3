using Prometheus;

namespace PgOtelGateway.Agent.Collection;

/// <summary>The agent's own Prometheus metrics (served on service.telemetry.metrics.address, default :8888).</summary>
internal static class AgentMetrics
{
    public static readonly Histogram ScrapeDuration = Metrics.CreateHistogram(
        "pgotel_agent_scrape_duration_seconds", "Duration of the per-database part of a scrape.",
        new HistogramConfiguration { LabelNames = ["instance", "database_name"], Buckets = Histogram.ExponentialBuckets(0.005, 2, 12) });

    public static readonly Counter ScrapeErrors = Metrics.CreateCounter(
        "pgotel_agent_scrape_errors_total", "Queries that failed or timed out.",
        new CounterConfiguration { LabelNames = ["instance", "database_name", "query"] });

    public static readonly Counter Scrapes = Metrics.CreateCounter(
        "pgotel_agent_scrapes_total", "Scrapes run, by instance.", new CounterConfiguration { LabelNames = ["instance"] });

    public static readonly Counter SkippedScrapes = Metrics.CreateCounter(
        "pgotel_agent_skipped_scrapes_total", "Intervals skipped because the previous scrape of the instance was still running.",
        new CounterConfiguration { LabelNames = ["instance"] });

    public static readonly Counter SessionsOpened = Metrics.CreateCounter(
        "pgotel_agent_sessions_opened_total", "PostgreSQL sessions the agent opened (steady state: no new ones per scrape).",
        new CounterConfiguration { LabelNames = ["instance"] });

    public static readonly Counter ExportedPoints = Metrics.CreateCounter(
        "pgotel_agent_exported_points_total", "Data points the otlp exporter delivered.", new CounterConfiguration { LabelNames = ["exporter"] });

    public static readonly Counter ExportFailures = Metrics.CreateCounter(
        "pgotel_agent_export_failures_total", "Export attempts that failed, by whether they will be retried.",
        new CounterConfiguration { LabelNames = ["exporter", "retryable"] });

    public static readonly Counter DroppedPoints = Metrics.CreateCounter(
        "pgotel_agent_dropped_points_total", "Data points the exporter gave up on, by reason.",
        new CounterConfiguration { LabelNames = ["exporter", "reason"] });

    public static readonly Counter ReroutedPoints = Metrics.CreateCounter(
        "pgotel_agent_rerouted_points_total", "Data points the otlp exporter's loadbalancing took back from a gateway that left the ring and routed to the live ones.",
        new CounterConfiguration { LabelNames = ["exporter"] });

    public static readonly Counter LoadBalancedPoints = Metrics.CreateCounter(
        "pgotel_agent_loadbalanced_points_total", "Data points the otlp exporter's loadbalancing sent towards each ring owner (member=\"fallback\": no gateway known live, sent to endpoint).",
        new CounterConfiguration { LabelNames = ["exporter", "member"] });

    public static readonly Counter TargetScrapeErrors = Metrics.CreateCounter(
        "pgotel_agent_target_scrape_errors_total", "Scrapes of a prometheus receiver target that failed (up = 0) or skipped unparsable lines.",
        new CounterConfiguration { LabelNames = ["job", "target"] });

    public static readonly Counter HostScrapeErrors = Metrics.CreateCounter(
        "pgotel_agent_hostmetrics_errors_total", "hostmetrics scrapers that could not read their source, by scraper.",
        new CounterConfiguration { LabelNames = ["scraper"] });

    public static readonly Counter SpooledBatches = Metrics.CreateCounter(
        "pgotel_agent_spooled_batches_total", "Batches the otlp exporter wrote to its disk spool because the gateway was away.",
        new CounterConfiguration { LabelNames = ["exporter"] });

    public static readonly Counter SpoolDrainedBatches = Metrics.CreateCounter(
        "pgotel_agent_spool_drained_batches_total", "Batches sent from the disk spool once the gateway was back.",
        new CounterConfiguration { LabelNames = ["exporter"] });

    public static readonly Gauge SpoolBatches = Metrics.CreateGauge(
        "pgotel_agent_spool_batches", "Batches waiting in the disk spool.", new GaugeConfiguration { LabelNames = ["exporter"] });

    public static readonly Gauge SpoolBytes = Metrics.CreateGauge(
        "pgotel_agent_spool_bytes", "Bytes of the disk spool's files.", new GaugeConfiguration { LabelNames = ["exporter"] });

    public static readonly Gauge SpoolOldestAge = Metrics.CreateGauge(
        "pgotel_agent_spool_oldest_age_seconds", "Age of the oldest batch in the disk spool (0 when empty), as of the last spool change.",
        new GaugeConfiguration { LabelNames = ["exporter"] });
}

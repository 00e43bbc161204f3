using OpenTelemetry.Proto.Collector.Metrics.V1;

namespace PgOtelGateway.Shared.Pipeline;

/// <summary>
/// A stage that takes metrics: a processor, an exporter, or the durable queue. Stages are chained; each
/// processor hands its output to the next consumer.
/// </summary>
/// <remarks>
/// The returned task completes only when the data has been accepted by everything downstream that promises
/// durability (for the gateway, the on-disk queue). A receiver acknowledges its client only after that, so a
/// processor that holds data back (batch) must not complete the caller's task before it has passed the data on.
/// A stage that refuses data throws <see cref="PipelineRefusedException"/>.
/// </remarks>
public interface IMetricsConsumer
{
    /// <summary>Takes ownership of <paramref name="request"/>; the caller must not touch it afterwards.</summary>
    Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken);
}

/// <summary>Why a stage refused data; receivers map it to the OTLP status a client retries on.</summary>
public enum RefusalReason
{
    /// <summary>Over the memory limit: UNAVAILABLE / 503, retry after a pause.</summary>
    MemoryLimit,

    /// <summary>The durable queue is full: UNAVAILABLE / 503, retry after a pause.</summary>
    QueueFull,

    /// <summary>A downstream owner or service could not take it: UNAVAILABLE / 503.</summary>
    Unavailable,

    /// <summary>The process is shutting down: UNAVAILABLE / 503.</summary>
    ShuttingDown,
}

/// <summary>Thrown by a stage that refuses data it could take later; nothing of the request was kept.</summary>
public sealed class PipelineRefusedException : Exception
{
    /// <summary>Creates the refusal.</summary>
    public PipelineRefusedException(RefusalReason reason, string message, TimeSpan retryAfter)
        : base(message)
    {
        Reason = reason;
        RetryAfter = retryAfter;
    }

    /// <summary>Creates a refusal with no detail.</summary>
    public PipelineRefusedException()
        : this(RefusalReason.Unavailable, "refused", TimeSpan.FromSeconds(1))
    {
    }

    /// <summary>Creates a refusal with a message.</summary>
    public PipelineRefusedException(string message)
        : this(RefusalReason.Unavailable, message, TimeSpan.FromSeconds(1))
    {
    }

    /// <summary>Creates a refusal with a message and cause.</summary>
    public PipelineRefusedException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = RefusalReason.Unavailable;
        RetryAfter = TimeSpan.FromSeconds(1);
    }

    /// <summary>Why.</summary>
    public RefusalReason Reason { get; }

    /// <summary>How long the client should wait before it retries (RetryInfo / Retry-After).</summary>
    public TimeSpan RetryAfter { get; }
}

using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Export.RemoteWrite;

/// <summary><c>exporters.prometheusremotewrite</c>: the hot tier.</summary>
internal sealed class RemoteWriteOptions : IValidatableOptions
{
    /// <summary>The receiver's write URL, e.g. <c>http://prometheus:9090/api/v1/write</c>. Empty turns the exporter off.</summary>
    public string Endpoint { get; set; } = "";

    /// <summary>Extra request headers (e.g. Authorization); secret.</summary>
    [Secret]
    public Dictionary<string, string> Headers { get; set; } = [];

    /// <summary>TLS towards the receiver.</summary>
    public ClientTlsOptions Tls { get; set; } = new();

    /// <summary>Labels added to every series that does not have them.</summary>
    public Dictionary<string, string> ExternalLabels { get; set; } = [];

    /// <summary>Copy all resource attributes onto every series.</summary>
    public EnabledOption ResourceToTelemetryConversion { get; set; } = new() { Enabled = false };

    /// <summary>Emit a <c>target_info</c> series per resource.</summary>
    public EnabledOption TargetInfo { get; set; } = new() { Enabled = true };

    /// <summary>Resource attributes copied onto every series even without full conversion (e.g. db.cluster).</summary>
    public List<string> CopyResourceAttributes { get; set; } = [];

    /// <summary>Retries of 5xx, 429 and network errors.</summary>
    public RetryOptions RetryOnFailure { get; set; } = new();

    /// <summary>The send queue.</summary>
    public RemoteWriteQueueOptions RemoteWriteQueue { get; set; } = new();

    /// <summary>Largest uncompressed request; remote write receivers commonly refuse 32 MiB and more.</summary>
    public ByteSize MaxBatchSizeBytes { get; set; } = new(3_000_000);

    /// <summary>Timeout of one HTTP request.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most delta streams whose running totals are kept.</summary>
    public int MaxDeltaStreams { get; set; } = 100_000;

    public IEnumerable<string> Validate()
    {
        if (Endpoint.Length > 0 && !Uri.TryCreate(Endpoint, UriKind.Absolute, out _))
        {
            yield return $"endpoint '{Endpoint}' is not an absolute URL";
        }

        if (MaxBatchSizeBytes.Bytes <= 0 || MaxBatchSizeBytes.Bytes >= 32L * 1024 * 1024)
        {
            yield return "max_batch_size_bytes must be above 0 and below 32MiB";
        }

        if (RemoteWriteQueue.NumConsumers < 1)
        {
            yield return "remote_write_queue.num_consumers must be at least 1";
        }

        if (RemoteWriteQueue.QueueSize < 1)
        {
            yield return "remote_write_queue.queue_size must be at least 1";
        }
    }
}

/// <summary>A block that is only switched on or off.</summary>
internal sealed class EnabledOption
{
    public bool Enabled { get; set; }
}

/// <summary><c>remote_write_queue</c>.</summary>
internal sealed class RemoteWriteQueueOptions
{
    /// <summary>Most samples waiting to be sent; beyond it the pipeline refuses data (the client retries).</summary>
    public int QueueSize { get; set; } = 500_000;

    /// <summary>Parallel senders; each series always goes through the same one, so its samples stay in order.</summary>
    public int NumConsumers { get; set; } = 4;

    /// <summary>Most samples in one request.</summary>
    public int MaxSamplesPerSend { get; set; } = 5_000;
}

/// <summary><c>retry_on_failure</c>, the collector's shape.</summary>
internal sealed class RetryOptions
{
    public bool Enabled { get; set; } = true;

    public TimeSpan InitialInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    public TimeSpan MaxInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Give up on a batch after this long; 0 retries for as long as the queue holds (no loss).</summary>
    public TimeSpan MaxElapsedTime { get; set; } = TimeSpan.Zero;

    public double Multiplier { get; set; } = 2;
}

/// <summary>TLS of an outgoing HTTP or gRPC connection.</summary>
internal sealed class ClientTlsOptions
{
    /// <summary>Accept any server certificate (tests only).</summary>
    public bool InsecureSkipVerify { get; set; }

    /// <summary>Also accepted for collector configs; plain HTTP endpoints need no TLS anyway.</summary>
    public bool Insecure { get; set; }

    public string CaFile { get; set; } = "";

    public string CertFile { get; set; } = "";

    public string KeyFile { get; set; } = "";

    public string ServerName { get; set; } = "";
}

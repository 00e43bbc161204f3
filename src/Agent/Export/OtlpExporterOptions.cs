using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Agent.Export;

/// <summary><c>exporters.otlp</c>: OTLP/gRPC to the gateway tier.</summary>
internal sealed class OtlpExporterOptions : IValidatableOptions
{
    /// <summary><c>host:port</c> or <c>http(s)://host:port</c> of a gateway (or its Service).</summary>
    public string Endpoint { get; set; } = "localhost:4317";

    public OtlpCompression Compression { get; set; } = OtlpCompression.Zstd;

    /// <summary>Request metadata, e.g. <c>authorization: Bearer …</c>; secret.</summary>
    [Secret]
    public Dictionary<string, string> Headers { get; set; } = [];

    public OtlpClientTlsOptions Tls { get; set; } = new();

    /// <summary>Deadline of one export call.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public OtlpRetryOptions RetryOnFailure { get; set; } = new();

    public SendingQueueOptions SendingQueue { get; set; } = new();

    /// <summary>Client-side ring routing: each stream straight to its owning gateway (LoadBalancingExporter).</summary>
    public Shared.Ring.LoadBalancingOptions? Loadbalancing { get; set; }

    public IEnumerable<string> Validate()
    {
        if (Endpoint.Length == 0)
        {
            yield return "endpoint is required";
        }

        if (SendingQueue.QueueSize < 1)
        {
            yield return "sending_queue.queue_size must be at least 1";
        }

        if (SendingQueue.StorageDir.Length > 0 && SendingQueue.MaxSize.Bytes < 4096)
        {
            yield return "sending_queue.max_size must be at least 4KiB";
        }
    }
}

internal enum OtlpCompression
{
    None,
    Gzip,
    Zstd,
}

internal sealed class OtlpClientTlsOptions
{
    /// <summary>Plain text (h2c) when the endpoint has no scheme; set false to use TLS.</summary>
    public bool Insecure { get; set; } = true;

    public bool InsecureSkipVerify { get; set; }

    public string CaFile { get; set; } = "";

    public string CertFile { get; set; } = "";

    public string KeyFile { get; set; } = "";

    public string ServerName { get; set; } = "";
}

internal sealed class OtlpRetryOptions
{
    public bool Enabled { get; set; } = true;

    public TimeSpan InitialInterval { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Give up on a batch after this long; 0 keeps retrying while the queue has room.</summary>
    public TimeSpan MaxElapsedTime { get; set; } = TimeSpan.FromMinutes(5);

    public double Multiplier { get; set; } = 1.5;
}

internal sealed class SendingQueueOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>Most batches waiting in memory; when full the oldest is dropped and counted.</summary>
    public int QueueSize { get; set; } = 1000;

    /// <summary>
    /// Where batches wait on disk while the gateway is away (a subdirectory per exporter); empty: no disk spool,
    /// only the memory queue.
    /// </summary>
    public string StorageDir { get; set; } = "";

    /// <summary>Most bytes of the disk spool; when full the oldest batches are dropped and counted.</summary>
    public ByteSize MaxSize { get; set; } = ByteSize.FromMiB(512);
}

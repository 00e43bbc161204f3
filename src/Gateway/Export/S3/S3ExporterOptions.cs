using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Export.S3;

/// <summary>How files are encoded.</summary>
internal enum ColdMarshaler
{
    /// <summary>One row per data point (docs/cold-tier.md).</summary>
    Parquet,

    /// <summary>An OTLP <c>ExportMetricsServiceRequest</c> in protobuf, compressed as a whole.</summary>
    OtlpProto,
}

/// <summary>The codec of a file: Parquet's page codec, or the whole file for <c>otlp_proto</c>.</summary>
internal enum ColdCompression
{
    Zstd,
    Gzip,
    None,
}

/// <summary>How finely object keys are partitioned by time.</summary>
internal enum S3Partition
{
    Minute,
    Hour,
}

/// <summary><c>exporters.awss3</c>: the cold tier.</summary>
internal sealed class S3ExporterOptions : IValidatableOptions
{
    /// <summary>Where files go.</summary>
    public S3UploaderOptions S3uploader { get; set; } = new();

    /// <summary><c>parquet</c> or <c>otlp_proto</c>.</summary>
    public ColdMarshaler Marshaler { get; set; } = ColdMarshaler.Parquet;

    /// <summary><c>zstd</c>, <c>gzip</c> or <c>none</c>.</summary>
    public ColdCompression Compression { get; set; } = ColdCompression.Zstd;

    /// <summary>A file is closed once the OTLP data staged for it reaches this size (its Parquet is much smaller).</summary>
    public ByteSize FileMaxBytes { get; set; } = ByteSize.FromMiB(16);

    /// <summary>A file is closed once its first data is this old.</summary>
    public TimeSpan FileMaxAge { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The local staging area where data waits until it is uploaded.</summary>
    public StagingOptions Staging { get; set; } = new();

    /// <summary>Backoff of failed uploads; uploads are retried for as long as the staging area holds them.</summary>
    public UploadRetryOptions RetryOnFailure { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        var endpoint = S3uploader.Endpoint;
        var local = endpoint.StartsWith("file://", StringComparison.OrdinalIgnoreCase);
        if (!local)
        {
            if (S3uploader.S3Bucket.Length == 0)
            {
                yield return "s3uploader.s3_bucket is required unless s3uploader.endpoint is a file:// folder";
            }

            if (endpoint.Length > 0 && !Uri.TryCreate(endpoint, UriKind.Absolute, out _))
            {
                yield return $"s3uploader.endpoint '{endpoint}' is neither an absolute URL nor file:///path";
            }
        }
        else if (endpoint.Length <= "file://".Length)
        {
            yield return "s3uploader.endpoint 'file://' needs a folder, e.g. file:///var/lib/pgotel/cold";
        }

        if (S3uploader.S3Prefix.Contains('\\', StringComparison.Ordinal))
        {
            yield return "s3uploader.s3_prefix must use '/' as its separator";
        }

        if (FileMaxBytes.Bytes < 1024)
        {
            yield return "file_max_bytes must be at least 1KiB";
        }

        if (FileMaxAge <= TimeSpan.Zero)
        {
            yield return "file_max_age must be above 0";
        }

        if (Staging.MaxSize.Bytes < FileMaxBytes.Bytes)
        {
            yield return "staging.max_size must be at least file_max_bytes";
        }
    }
}

/// <summary><c>s3uploader</c>, the collector's shape, plus keys and a local-folder target.</summary>
internal sealed class S3UploaderOptions
{
    /// <summary>The AWS region (also the signing region of an S3-compatible store).</summary>
    public string Region { get; set; } = "us-east-1";

    [ConfigKey("s3_bucket")]
    public string S3Bucket { get; set; } = "";

    /// <summary>Key prefix (no leading or trailing slash needed).</summary>
    [ConfigKey("s3_prefix")]
    public string S3Prefix { get; set; } = "metrics";

    /// <summary><c>minute</c> or <c>hour</c>: the finest partition of the key.</summary>
    [ConfigKey("s3_partition")]
    public S3Partition S3Partition { get; set; } = S3Partition.Minute;

    /// <summary>An S3-compatible endpoint (MinIO, s3rver…), or <c>file:///path</c> for a local folder; empty: AWS.</summary>
    public string Endpoint { get; set; } = "";

    /// <summary>Path-style addressing (<c>endpoint/bucket/key</c>), needed by most S3-compatible stores.</summary>
    [ConfigKey("s3_force_path_style")]
    public bool S3ForcePathStyle { get; set; }

    /// <summary>The storage class of uploaded objects, e.g. <c>STANDARD_IA</c>; empty: the bucket's default.</summary>
    public string StorageClass { get; set; } = "";

    /// <summary>Access key id; falls back to AWS_ACCESS_KEY_ID, then the SDK's default credential chain.</summary>
    [Secret]
    public string AccessKeyId { get; set; } = "";

    /// <summary>Secret access key; falls back to AWS_SECRET_ACCESS_KEY.</summary>
    [Secret]
    public string SecretAccessKey { get; set; } = "";
}

/// <summary><c>staging</c>: the local folder data waits in.</summary>
internal sealed class StagingOptions
{
    /// <summary>The folder; default <c>./data/staging/{gateway.id}/{exporter id}</c>.</summary>
    public string Directory { get; set; } = "";

    /// <summary>The most bytes waiting (open journal + closed files); beyond it the exporter refuses data.</summary>
    public ByteSize MaxSize { get; set; } = ByteSize.FromMiB(2048);
}

/// <summary><c>retry_on_failure</c> of uploads.</summary>
internal sealed class UploadRetryOptions
{
    public TimeSpan InitialInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan MaxInterval { get; set; } = TimeSpan.FromSeconds(30);

    public double Multiplier { get; set; } = 2;

    /// <summary>Timeout of one upload.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);
}

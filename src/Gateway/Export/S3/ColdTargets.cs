using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace PgOtelGateway.Gateway.Export.S3;

/// <summary>Where closed files are uploaded: an S3 bucket or a local folder.</summary>
internal interface IColdTarget : IDisposable
{
    /// <summary>For logs and the admin API (no credentials).</summary>
    string Description { get; }

    /// <summary>Stores the file at <paramref name="key"/>, replacing what is there. Throws on failure.</summary>
    Task PutAsync(string key, string path, CancellationToken cancellationToken);
}

/// <summary><c>endpoint: file:///path</c>: objects become files below the folder, the key as the relative path.</summary>
internal sealed class LocalFolderTarget : IColdTarget
{
    private readonly string _root;

    public LocalFolderTarget(string root)
    {
        _root = Path.GetFullPath(root);
    }

    public string Description => "file://" + _root;

    public async Task PutAsync(string key, string path, CancellationToken cancellationToken)
    {
        var target = Path.Combine(_root, key.Replace('/', Path.DirectorySeparatorChar));
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var temporary = target + ".tmp";
        await using (var source = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true))
        await using (var destination = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            await source.CopyToAsync(destination, cancellationToken).ConfigureAwait(false);
            destination.Flush(flushToDisk: true);
        }

        // A reader never sees half a file: the object appears whole, or replaces the earlier copy whole.
        File.Move(temporary, target, overwrite: true);
        Shared.Storage.DirectorySync.Flush(Path.GetDirectoryName(target)!);
    }

    public void Dispose()
    {
    }
}

/// <summary>An S3 bucket (AWS or any S3-compatible store) through AWSSDK.S3.</summary>
internal sealed class S3Target : IColdTarget
{
    private readonly AmazonS3Client _client;
    private readonly S3UploaderOptions _options;

    public S3Target(S3UploaderOptions options, TimeSpan timeout)
    {
        _options = options;
        var config = new AmazonS3Config
        {
            ForcePathStyle = options.S3ForcePathStyle,
            Timeout = timeout,

            // Checksums only when an operation needs them: S3-compatible stores (MinIO, s3rver, Ceph) do not all
            // understand the aws-chunked bodies with checksum trailers that AWSSDK v4 sends otherwise.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxErrorRetry = 1,
        };
        if (options.Endpoint.Length > 0)
        {
            config.ServiceURL = options.Endpoint;
            config.AuthenticationRegion = options.Region;
        }
        else
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(options.Region);
        }

        var accessKey = options.AccessKeyId.Length > 0 ? options.AccessKeyId : Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID") ?? "";
        var secretKey = options.SecretAccessKey.Length > 0 ? options.SecretAccessKey : Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY") ?? "";

        // Without keys the SDK's own chain applies (web identity, instance profile, …).
        _client = accessKey.Length > 0
            ? new AmazonS3Client(new BasicAWSCredentials(accessKey, secretKey), config)
            : new AmazonS3Client(config);
    }

    public string Description => $"s3://{_options.S3Bucket}" + (_options.Endpoint.Length > 0 ? $" at {_options.Endpoint}" : $" in {_options.Region}");

    public async Task PutAsync(string key, string path, CancellationToken cancellationToken)
    {
        var request = new PutObjectRequest
        {
            BucketName = _options.S3Bucket,
            Key = key,
            FilePath = path,
            UseChunkEncoding = false,
            ContentType = key.EndsWith(".parquet", StringComparison.Ordinal) ? "application/vnd.apache.parquet" : "application/x-protobuf",
        };
        if (_options.StorageClass.Length > 0)
        {
            request.StorageClass = S3StorageClass.FindValue(_options.StorageClass);
        }

        await _client.PutObjectAsync(request, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _client.Dispose();
}

using System.IO.Compression;
using Amazon.S3.Model;
using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Cold;

/// <summary>
/// The cold tier's other encodings and upload options: <c>otlp_proto</c> with <c>compression: gzip</c> and
/// <c>none</c> writes files that decode back to exactly the sent points, and <c>s3uploader.storage_class</c> reaches
/// S3 (s3rver keeps the header and returns it on HEAD).
/// </summary>
public sealed class ColdTierEncodingTests
{
    private const int Instances = 2;

    [Theory]
    [InlineData("gzip", ".binpb.gz")]
    [InlineData("none", ".binpb")]
    public async Task Export_OtlpProtoWithCompression_FilesDecodeToTheSentPoints(string compression, string extension)
    {
        var u = UniqueName.For();
        using var staging = new TempDirectory("cold-staging");
        using var target = new TempDirectory("cold-target");
        var firstMs = FirstScrapeMs();
        var exporter = $"""
            awss3:
              s3uploader:
                endpoint: file://{target.Path}
                s3_prefix: otlp
              marshaler: otlp_proto
              compression: {compression}
              file_max_age: 1s
              staging:
                directory: {staging.Path}
            """;
        var sent = await SendAsync(exporter, u, firstMs);

        var files = Directory.EnumerateFiles(Path.Combine(target.Path, "otlp"), "*", SearchOption.AllDirectories).ToList();
        Assert.NotEmpty(files);
        var received = new List<string>();
        foreach (var path in files)
        {
            Assert.EndsWith(extension, path, StringComparison.Ordinal);
            var bytes = await File.ReadAllBytesAsync(path);
            received.AddRange(ColdTierTests.Flatten(ExportMetricsServiceRequest.Parser.ParseFrom(Decode(compression, bytes))));
        }

        var expected = sent.SelectMany(ColdTierTests.Flatten).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, received.Order(StringComparer.Ordinal).ToList());
    }

    [Fact]
    public async Task Export_WithStorageClass_ObjectsInS3CarryThatStorageClass()
    {
        var u = UniqueName.For();
        var prefix = "sc-" + u;
        using var staging = new TempDirectory("cold-staging");
        var exporter = ColdGateway.S3Exporter(prefix, staging.Path, "  marshaler: otlp_proto\n");
        exporter = exporter.Replace("    s3_force_path_style: true", "    s3_force_path_style: true\n    storage_class: STANDARD_IA", StringComparison.Ordinal);
        Assert.Contains("storage_class: STANDARD_IA", exporter, StringComparison.Ordinal);
        await SendAsync(exporter, u, FirstScrapeMs());

        using var s3 = TestEnvironment.S3.CreateClient();
        var listed = await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = TestEnvironment.S3.Bucket, Prefix = prefix + "/" }).WaitAsync(TestTimeouts.Short);
        Assert.NotEmpty(listed.S3Objects ?? []);
        foreach (var o in listed.S3Objects!)
        {
            var head = await s3.GetObjectMetadataAsync(TestEnvironment.S3.Bucket, o.Key).WaitAsync(TestTimeouts.Short);
            Assert.Equal("STANDARD_IA", head.StorageClass?.Value);
        }
    }

    private static async Task<List<ExportMetricsServiceRequest>> SendAsync(string exporter, string u, long firstMs)
    {
        var sent = new List<ExportMetricsServiceRequest>();
        await using var gateway = await ColdGateway.StartAsync(exporter, ["awss3"]);
        long points = 0;
        for (var step = 0; step < 3; step++)
        {
            var request = ColdData.Scrape(u, Instances, firstMs + (step * 10_000L), step, firstMs);
            sent.Add(request.Clone());
            points += Shared.Pipeline.MetricsCounting.DataPoints(request);
            var answer = await RawOtlpClient.GrpcAsync(gateway.GrpcPort, request.ToByteArray()).WaitAsync(TestTimeouts.Short);
            Assert.Equal(0, answer.Code);
        }

        await gateway.WaitForSentAsync("awss3", points, TestTimeouts.Pipeline);
        return sent;
    }

    private static byte[] Decode(string compression, byte[] bytes)
    {
        if (compression == "none")
        {
            return bytes;
        }

        using var input = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }

    private static long FirstScrapeMs() => ((DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 180_000) / 10_000) * 10_000;
}

using PgOtelGateway.Shared.Configuration;
using Xunit;

namespace PgOtelGateway.Shared.Tests.Configuration;

public sealed class ValueParsingTests
{
    [Theory]
    [InlineData("10s", 10_000)]
    [InlineData("500ms", 500)]
    [InlineData("1m", 60_000)]
    [InlineData("1m30s", 90_000)]
    [InlineData("2h", 7_200_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("0", 0)]
    public void Duration_TryParse_ReadsGoStyleDurations(string text, double milliseconds)
    {
        Assert.True(Duration.TryParse(text, out var value));
        Assert.Equal(milliseconds, value.TotalMilliseconds);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("s")]
    [InlineData("10 parsecs")]
    [InlineData("-5s")]
    public void Duration_TryParse_RejectsNonsense(string text) => Assert.False(Duration.TryParse(text, out _));

    [Theory]
    [InlineData("64MiB", 64L * 1024 * 1024)]
    [InlineData("64MB", 64_000_000L)]
    [InlineData("512KiB", 512L * 1024)]
    [InlineData("1GiB", 1024L * 1024 * 1024)]
    [InlineData("1.5GiB", 1536L * 1024 * 1024)]
    [InlineData("4096", 4096L)]
    [InlineData("10 mib", 10L * 1024 * 1024)]
    public void ByteSize_TryParse_ReadsSizes(string text, long bytes)
    {
        Assert.True(ByteSize.TryParse(text, out var size));
        Assert.Equal(bytes, size.Bytes);
    }

    [Theory]
    [InlineData("MiB")]
    [InlineData("12 parsecs")]
    [InlineData("")]
    public void ByteSize_TryParse_RejectsNonsense(string text) => Assert.False(ByteSize.TryParse(text, out _));

    [Theory]
    [InlineData(64L * 1024 * 1024, "64MiB")]
    [InlineData(1000L, "1000B")]
    [InlineData(2048L, "2KiB")]
    public void ByteSize_ToString_UsesTheLargestExactUnit(long bytes, string expected) =>
        Assert.Equal(expected, new ByteSize(bytes).ToString());

    [Theory]
    [InlineData("SendBatchMaxSize", "send_batch_max_size")]
    [InlineData("CaFile", "ca_file")]
    [InlineData("TlsCAFile", "tls_ca_file")]
    [InlineData("MaxOpenConns", "max_open_conns")]
    [InlineData("S3Bucket", "s3_bucket")]
    public void SnakeCase_MapsPropertyNamesToKeys(string property, string key) =>
        Assert.Equal(key, ConfigBinder.ToSnakeCase(property));
}

using PgOtelGateway.Gateway.Export.S3;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Export;

public sealed class ObjectKeysTests
{
    // 2026-11-25T09:07:30.123Z
    private const long First = 1_795_597_650_123_000_000;

    [Fact]
    public void Relative_ByMinute_HasEveryLevelAndANumberedName()
    {
        var key = ObjectKeys.Relative(S3Partition.Minute, First, "gw-0", 42, ".parquet");

        Assert.Equal("year=2026/month=11/day=25/hour=09/minute=07/gw-0-1795597650123-00000042.parquet", key);
    }

    [Fact]
    public void Relative_ByHour_StopsAtTheHour()
    {
        var key = ObjectKeys.Relative(S3Partition.Hour, First, "gw-0", 1, ".binpb.zst");

        Assert.Equal("year=2026/month=11/day=25/hour=09/gw-0-1795597650123-00000001.binpb.zst", key);
    }

    [Fact]
    public void Relative_SameInputs_SameKey()
    {
        Assert.Equal(
            ObjectKeys.Relative(S3Partition.Minute, First, "a", 7, ".parquet"),
            ObjectKeys.Relative(S3Partition.Minute, First, "a", 7, ".parquet"));
    }

    [Theory]
    [InlineData("metrics", "metrics/k")]
    [InlineData("/metrics/", "metrics/k")]
    [InlineData("", "k")]
    [InlineData("a/b", "a/b/k")]
    public void Full_JoinsPrefixWithOneSlash(string prefix, string expected) => Assert.Equal(expected, ObjectKeys.Full(prefix, "k"));

    [Theory]
    [InlineData("gw-0-1795597650123-00000042.parquet", 42)]
    [InlineData("gw-1795597650123-00000001.binpb.zst", 1)]
    [InlineData("nonsense", -1)]
    public void SequenceOf_ReadsTheLastNumber(string name, long expected) => Assert.Equal(expected, ObjectKeys.SequenceOf(name));

    [Theory]
    [InlineData("gateway-0.pgotel.svc", "gateway-0_pgotel_svc")]
    [InlineData("host/1", "host_1")]
    [InlineData("", "gateway")]
    public void SafeId_KeepsOnlyKeyFriendlyCharacters(string id, string expected) => Assert.Equal(expected, ObjectKeys.SafeId(id));
}

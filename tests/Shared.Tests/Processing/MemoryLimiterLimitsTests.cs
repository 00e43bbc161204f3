using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Processing;
using Xunit;

namespace PgOtelGateway.Shared.Tests.Processing;

/// <summary>The hard and soft limits <c>memory_limiter</c> computes from its options for a known amount of memory.</summary>
public sealed class MemoryLimiterLimitsTests
{
    private const long MiB = 1024 * 1024;
    private const long Total = 8192 * MiB;

    [Fact]
    public void Limits_FromTheSeedsPercentages_AreThoseShareOfTheTotal()
    {
        var options = Load("""
            check_interval: 1s
            limit_percentage: 75
            spike_limit_percentage: 25
            """);

        var (hard, soft) = MemoryLimiterProcessor.Limits(options, Total);

        Assert.Equal(6144 * MiB, hard);
        Assert.Equal(4096 * MiB, soft);
    }

    [Fact]
    public void Limits_PercentageWithoutSpike_KeepsAFifthOfTheHardLimitAsHeadroom()
    {
        var (hard, soft) = MemoryLimiterProcessor.Limits(Load("limit_percentage: 50"), Total);

        Assert.Equal(4096 * MiB, hard);
        Assert.Equal(4096 * MiB - (4096 * MiB / 5), soft);
    }

    [Fact]
    public void Limits_MibWinsOverPercentage()
    {
        var (hard, soft) = MemoryLimiterProcessor.Limits(Load("""
            limit_mib: 1000
            spike_limit_mib: 200
            limit_percentage: 90
            """), Total);

        Assert.Equal(1000 * MiB, hard);
        Assert.Equal(800 * MiB, soft);
    }

    [Fact]
    public void Limits_SpikeLargerThanTheLimit_RefusesEverythingRatherThanGoingNegative()
    {
        var (hard, soft) = MemoryLimiterProcessor.Limits(Load("""
            limit_percentage: 10
            spike_limit_percentage: 20
            """), Total);

        Assert.Equal(Total / 10, hard);
        Assert.Equal(0, soft);
    }

    [Fact]
    public void TotalMemoryBytes_IsPositive()
    {
        Assert.True(MemoryLimiterProcessor.TotalMemoryBytes() > 0);
    }

    private static MemoryLimiterOptions Load(string body)
    {
        var registry = ProcessorCatalog.Shared().RegisterWith(new ComponentRegistry());
        var indented = string.Join('\n', body.Split('\n').Select(l => "    " + l));
        var config = ConfigLoader.Load("processors:\n  memory_limiter:\n" + indented + "\n", registry);
        return config.Processors["memory_limiter"].OptionsAs<MemoryLimiterOptions>();
    }
}

using PgOtelGateway.Gateway.Dedup;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Dedup;

public sealed class IdentityCacheTests
{
    [Fact]
    public void TryClaim_SameIdentityTwice_SecondIsDuplicate()
    {
        var cache = new IdentityCache(10, ttl: 1000);

        Assert.True(cache.TryClaim(42, now: 0));
        Assert.False(cache.TryClaim(42, now: 1));
        Assert.True(cache.TryClaim(43, now: 1));
        Assert.Equal(2, cache.Count);
    }

    [Fact]
    public void TryClaim_AfterTtl_ClaimsAgain()
    {
        var cache = new IdentityCache(10, ttl: 1000);
        cache.TryClaim(7, now: 0);

        Assert.False(cache.TryClaim(7, now: 999));
        Assert.True(cache.TryClaim(7, now: 1000));
        Assert.False(cache.TryClaim(7, now: 1500));
    }

    [Fact]
    public void TryClaim_OverCapacity_EvictsLeastRecentlyUsed()
    {
        var cache = new IdentityCache(3, ttl: 1_000_000);
        cache.TryClaim(1, 0);
        cache.TryClaim(2, 0);
        cache.TryClaim(3, 0);
        Assert.False(cache.TryClaim(1, 1)); // 1 is now the most recently used; 2 is the oldest

        Assert.True(cache.TryClaim(4, 2));

        Assert.Equal(3, cache.Count);
        Assert.True(cache.Contains(1, 3));
        Assert.False(cache.Contains(2, 3));
        Assert.True(cache.Contains(3, 3));
        Assert.True(cache.Contains(4, 3));
    }

    [Fact]
    public void TryClaim_ExpiredEntriesAtTheTail_AreRemovedSoCountStaysHonest()
    {
        var cache = new IdentityCache(100, ttl: 10);
        for (var i = 0; i < 50; i++)
        {
            cache.TryClaim((UInt128)i, now: 0);
        }

        cache.TryClaim(1000, now: 20);

        Assert.Equal(1, cache.Count);
    }

    [Fact]
    public void Remove_ClaimedIdentity_CanBeClaimedAgainAndSlotIsReused()
    {
        var cache = new IdentityCache(2, ttl: 1000);
        cache.TryClaim(1, 0);
        cache.TryClaim(2, 0);

        cache.Remove(1);

        Assert.Equal(1, cache.Count);
        Assert.True(cache.TryClaim(1, 1));
        Assert.True(cache.TryClaim(3, 1)); // evicts 2, the least recently used
        Assert.True(cache.Contains(1, 2));
        Assert.False(cache.Contains(2, 2));
        Assert.True(cache.Contains(3, 2));
    }

    [Fact]
    public void TryClaim_ManyMoreThanCapacity_NeverHoldsMoreThanCapacity()
    {
        var cache = new IdentityCache(1000, ttl: long.MaxValue / 2);
        var random = new Random(5);
        for (var i = 0; i < 100_000; i++)
        {
            cache.TryClaim((UInt128)(ulong)random.Next(5000), i);
            Assert.True(cache.Count <= 1000);
        }

        Assert.Equal(1000, cache.Count);
    }
}

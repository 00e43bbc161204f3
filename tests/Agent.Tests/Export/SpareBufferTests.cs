using PgOtelGateway.Agent.Export;
using Xunit;

namespace PgOtelGateway.Agent.Tests.Export;

/// <summary><see cref="SpareBuffer"/> keeps the large request buffer from one scrape to the next, whatever thread uses it.</summary>
public sealed class SpareBufferTests
{
    [Fact]
    public async Task Rent_AfterReturn_GivesTheSameArrayBack_OnAnyThread()
    {
        var buffers = new SpareBuffer();
        var first = buffers.Rent(100_000);
        buffers.Return(first);

        // The next scrape is serialized on whichever pool thread is free.
        var again = await Task.Run(() => buffers.Rent(90_000)).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Same(first, again);
    }

    [Fact]
    public void Rent_KeepsOneArray_AndALargerRequestGetsANewOne()
    {
        var buffers = new SpareBuffer();
        var small = buffers.Rent(1000);
        Assert.True(small.Length >= 1000);
        buffers.Return(small);

        var large = buffers.Rent(small.Length + 1);
        Assert.NotSame(small, large);
        Assert.True(large.Length > small.Length);

        // Both come back: the larger one is kept.
        buffers.Return(small);
        buffers.Return(large);
        Assert.Same(large, buffers.Rent(10));
        Assert.NotSame(large, buffers.Rent(10));
    }
}

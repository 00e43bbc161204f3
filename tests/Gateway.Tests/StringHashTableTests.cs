using Xunit;

namespace PgOtelGateway.Gateway.Tests;

public sealed class StringHashTableTests
{
    private static readonly Func<string, ulong> Hash = static text => System.IO.Hashing.XxHash3.HashToUInt64(System.Text.Encoding.UTF8.GetBytes(text));

    [Fact]
    public void Of_MoreStringsThanSlots_EveryOneGetsItsOwnHash_EveryTime()
    {
        StringHashSlot<ulong>[]? table = null;
        var texts = Enumerable.Range(0, 10_000).Select(i => $"postgresql.table.name=t{i:D5}").ToArray();

        for (var round = 0; round < 3; round++)
        {
            foreach (var text in texts)
            {
                Assert.Equal(Hash(text), StringHashTable.Of(ref table, text, Hash));
            }
        }
    }

    [Fact]
    public void Of_SameTextInAnotherStringObject_GivesTheSameHash_AndKnownStringsAllocateNothing()
    {
        StringHashSlot<ulong>[]? table = null;
        var first = new string("db01".AsSpan());
        var second = new string("db01".AsSpan());
        Assert.NotSame(first, second);

        Assert.Equal(StringHashTable.Of(ref table, first, Hash), StringHashTable.Of(ref table, second, Hash));
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1_000; i++)
        {
            StringHashTable.Of(ref table, second, Hash);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}

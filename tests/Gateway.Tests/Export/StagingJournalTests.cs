using PgOtelGateway.Gateway.Export.S3;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Export;

public sealed class StagingJournalTests
{
    [Fact]
    public void ReadAll_AfterATornTail_ReturnsOnlyWholeRecords()
    {
        using var dir = new TempDirectory("journal");
        string path;
        using (var journal = StagingJournal.Create(dir.Path, 1))
        {
            journal.Append([1, 2, 3]);
            journal.Append([4, 5]);
            journal.Append(new byte[100]);
            journal.Sync();
            path = journal.Path;
        }

        // A crash in the middle of the third record.
        using (var file = new FileStream(path, FileMode.Open))
        {
            file.SetLength(file.Length - 40);
        }

        var records = StagingJournal.ReadAll(path, out var discarded);

        Assert.Equal([new byte[] { 1, 2, 3 }, new byte[] { 4, 5 }], records);
        Assert.Equal(68, discarded);
    }

    [Fact]
    public void ReadAll_WithAFlippedByte_StopsAtTheCorruptRecord()
    {
        using var dir = new TempDirectory("journal");
        string path;
        using (var journal = StagingJournal.Create(dir.Path, 2))
        {
            journal.Append([1, 2, 3]);
            journal.Append([4, 5, 6]);
            journal.Sync();
            path = journal.Path;
        }

        var bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(path, bytes);

        var records = StagingJournal.ReadAll(path, out var discarded);

        Assert.Single(records);
        Assert.Equal(11, discarded);
    }
}

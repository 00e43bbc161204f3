using PgOtelGateway.Shared.Storage;
using Xunit;

namespace PgOtelGateway.Shared.Tests.Storage;

public sealed class DirectorySyncTests
{
    [Fact]
    public void Flush_ExistingDirectoryOnLinux_Syncs()
    {
        // A managed file handle cannot be opened on a directory; this must really reach fsync.
        var directory = Directory.CreateTempSubdirectory("dirsync-");
        try
        {
            File.WriteAllText(Path.Combine(directory.FullName, "a"), "x");
            Assert.Equal(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), DirectorySync.Flush(directory.FullName));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void Flush_MissingDirectory_ReturnsFalse()
    {
        Assert.False(DirectorySync.Flush(Path.Combine(Path.GetTempPath(), "no-such-dir-" + Guid.NewGuid().ToString("N"))));
    }
}

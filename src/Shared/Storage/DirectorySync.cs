using System.Runtime.InteropServices;

namespace PgOtelGateway.Shared.Storage;

/// <summary>
/// fsync of a directory. A file created or renamed into place survives a power loss only once its directory entry
/// is on disk, which an fsync of the file alone does not promise on Linux. .NET cannot open a directory as a file
/// handle (it refuses with UnauthorizedAccessException), so this goes to libc.
/// </summary>
public static class DirectorySync
{
    private const int ReadOnly = 0;

    /// <summary>Flushes <paramref name="directory"/>'s entries to disk; false where that is not possible (not Linux or macOS, or refused).</summary>
    public static bool Flush(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return false;
        }

        var fd = NativeMethods.Open(directory, ReadOnly);
        if (fd < 0)
        {
            return false;
        }

        var synced = NativeMethods.Fsync(fd) == 0;
        _ = NativeMethods.Close(fd);
        return synced;
    }

    private static class NativeMethods
    {
        [DllImport("libc", EntryPoint = "open", SetLastError = true)]
        public static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
        public static extern int Fsync(int fd);

        [DllImport("libc", EntryPoint = "close")]
        public static extern int Close(int fd);
    }
}

namespace PgOtelGateway.Tests.Common;

/// <summary>A directory that exists for one test and is removed afterwards.</summary>
public sealed class TempDirectory : IDisposable
{
    /// <summary>Creates the directory under the system temp folder.</summary>
    public TempDirectory(string? prefix = null)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), (prefix ?? "pgotel") + "-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    /// <summary>The full path.</summary>
    public string Path { get; }

    /// <summary>A path inside the directory.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A process under test may still hold a file; the run directory is removed at the end anyway.
        }
    }
}

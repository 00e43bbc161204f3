using System.Diagnostics;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Cli;

/// <summary>`validate --config F` on both real binaries, as an operator runs it.</summary>
public sealed class ValidateCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "pgotel-validate-" + Guid.NewGuid().ToString("N"));

    public ValidateCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("PgOtelGateway.Gateway.dll")]
    [InlineData("PgOtelGateway.Agent.dll")]
    public async Task Validate_WithMisspeltKey_ExitsTwoAndNamesKeyAndLine(string binary)
    {
        var config = Path.Combine(_dir, "bad.yaml");
        await File.WriteAllTextAsync(config, "service:\n  telemetry:\n    logs:\n      levl: debug\n");

        var (exitCode, stdout, stderr) = await RunAsync(binary, "validate", "--config", config);

        Assert.Equal(2, exitCode);
        Assert.Contains("line 4", stderr, StringComparison.Ordinal);
        Assert.Contains("service.telemetry.logs.levl", stderr, StringComparison.Ordinal);
        Assert.Contains("did you mean 'level'", stderr, StringComparison.Ordinal);
        Assert.Equal("", stdout);
    }

    [Theory]
    [InlineData("PgOtelGateway.Gateway.dll")]
    [InlineData("PgOtelGateway.Agent.dll")]
    public async Task Validate_WithEmbeddedDefaults_ExitsZero(string binary)
    {
        var (exitCode, stdout, stderr) = await RunAsync(binary, "validate");

        Assert.True(exitCode == 0, stderr);
        Assert.Contains("embedded defaults: valid", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_WithMissingFile_ExitsTwoAndSaysWhy()
    {
        var (exitCode, _, stderr) = await RunAsync("PgOtelGateway.Gateway.dll", "validate", "--config", Path.Combine(_dir, "nope.yaml"));

        Assert.Equal(2, exitCode);
        Assert.Contains("cannot read config file", stderr, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string binary, params string[] args)
    {
        var path = Path.Combine(AppContext.BaseDirectory, binary);
        Assert.True(File.Exists(path), $"{path} was not built next to the tests");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(path);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}

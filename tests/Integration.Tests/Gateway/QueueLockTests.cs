using System.Diagnostics;
using System.Globalization;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>Two gateway processes never share a queue directory: the second one refuses to start and says why.</summary>
public sealed class QueueLockTests
{
    [Fact]
    public async Task Start_OnADirectoryAnotherGatewayHolds_ExitsOneNamingTheDirectory()
    {
        using var queue = new TempDirectory("pgotel-lock");
        await using var holder = await TestGateway.StartAsync(queueDirectory: queue.Path);

        var config = queue.File("second.yaml");
        await File.WriteAllTextAsync(config, string.Format(CultureInfo.InvariantCulture, """
            receivers:
              otlp:
                protocols:
                  grpc:
                    endpoint: 127.0.0.1:{0}
            exporters:
              debug:
                verbosity: basic
            gateway:
              id: second
              admin:
                endpoint: ""
              queue:
                directory: {1}
            service:
              pipelines:
                metrics:
                  receivers: [otlp]
                  exporters: [debug]
              telemetry:
                metrics:
                  address: ""
            """, FreePort.Get(), queue.Path));

        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "PgOtelGateway.Gateway.dll"));
        info.ArgumentList.Add("--config");
        info.ArgumentList.Add(config);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }

        var error = await stderr.WaitAsync(TestTimeouts.Short);
        Assert.True(process.ExitCode == 1, $"exit code {process.ExitCode}; stderr: {error}; stdout: {await stdout}");
        Assert.Contains("cannot start", error, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(queue.Path, "metrics"), error, StringComparison.Ordinal);
        Assert.Contains("in use by another gateway process", error, StringComparison.Ordinal);
    }
}

using System.Diagnostics;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Admin;

/// <summary>Debian's headless Chromium, run once per page load with a throwaway profile.</summary>
internal static class Chromium
{
    /// <summary>The browser binary: <c>PGOTEL_CHROMIUM</c>, else <c>chromium</c> on the PATH. Missing → the test fails.</summary>
    public static string Binary()
    {
        if (Environment.GetEnvironmentVariable("PGOTEL_CHROMIUM") is { Length: > 0 } configured)
        {
            Assert.True(File.Exists(configured), $"PGOTEL_CHROMIUM={configured} does not exist");
            return configured;
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':'))
        {
            foreach (var name in new[] { "chromium", "chromium-browser" })
            {
                var candidate = Path.Combine(dir, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        Assert.Fail("chromium is not installed: `apt-get install -y chromium` (scripts/test.sh installs it); the status page test needs a real browser");
        return "";
    }

    /// <summary>
    /// Loads <paramref name="url"/>, lets its scripts run (virtual time, so fetches finish before the dump) and
    /// returns the DOM as Chromium serialises it.
    /// </summary>
    public static async Task<string> DumpDomAsync(string url)
    {
        var binary = Binary();
        using var profile = new TempDirectory("pgotel-chromium");
        var info = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--disable-extensions", "--no-default-browser-check",
            "--user-data-dir=" + profile.Path,
            "--virtual-time-budget=15000",
            "--dump-dom", url,
        })
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("chromium did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"chromium did not finish within 120 s; stderr:\n{await stderr}");
        }

        var dom = await stdout;
        Assert.True(process.ExitCode == 0 && dom.Length > 0, $"chromium exited {process.ExitCode}; stderr:\n{await stderr}");
        return dom;
    }
}

using System.Diagnostics;

namespace PgOtelGateway.Tests.Common;

/// <summary>
/// Stops and starts the harness's servers (same port, same data) for fault-injection tests. Tests that use it
/// carry <c>[Trait("Category", ServiceFaultCollection.Category)]</c> and belong to
/// <see cref="ServiceFaultCollection"/>: scripts/test.sh runs them in a pass of their own, after every other
/// test, so nothing else talks to a server while it is down.
/// </summary>
public static class ServiceControl
{
    /// <summary>Stops a service: redis, prometheus, s3rver, postgres-exporter, postgres-primary, postgres-standby.</summary>
    public static Task StopAsync(string service) => RunAsync("stop", service);

    /// <summary>Starts a stopped service and waits until it answers.</summary>
    public static Task StartAsync(string service) => RunAsync("start", service);

    private static async Task RunAsync(string verb, string service)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardError = true, RedirectStandardOutput = true };
        info.ArgumentList.Add(TestEnvironment.ServicesControlScript);
        info.ArgumentList.Add(verb);
        info.ArgumentList.Add(service);
        using var process = Process.Start(info) ?? throw new InvalidOperationException("cannot start bash");
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ctl.sh {verb} {service} failed ({process.ExitCode}): {await stderr.ConfigureAwait(false)}");
        }
    }
}

/// <summary>The xunit collection for tests that stop shared servers: its tests run one at a time.</summary>
[Xunit.CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ServiceFaultCollection
{
    /// <summary>The collection's name, for <c>[Collection(ServiceFaultCollection.Name)]</c>.</summary>
    public const string Name = "service faults";

    /// <summary>The trait value scripts/test.sh selects to run these tests in their own pass.</summary>
    public const string Category = "ServiceFault";
}

using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Ring;

/// <summary>
/// Three gateway processes on loopback forming a ring (static list or Redis heartbeats), exporting to the real
/// Prometheus: each stream goes through its owner exactly once, a killed member is routed around and leaves the
/// ring, and a member that is asked to leave drains and exits.
/// </summary>
public sealed class RingTests(ITestOutputHelper output)
{
    private static DateTimeOffset FirstTimestamp(int ticks, TimeSpan interval) =>
        DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - (long)(interval.TotalSeconds * ticks) - 60);

    private static async Task<List<GatewayProcess>> StartStaticRingAsync(string prefix, TempDirectory dir, string ringExtra = "")
    {
        var gateways = GatewayProcess.Create(prefix, 3, dir.Path);
        var members = $"probe_interval: 500ms\nstatic: {GatewayProcess.StaticMembers(gateways)}";
        await Task.WhenAll(gateways.Select(g => g.StartAsync(members, ringExtra)));
        foreach (var g in gateways)
        {
            await g.WaitForRingAsync([.. gateways]);
        }

        return gateways;
    }

    private async Task DumpAsync(IEnumerable<GatewayProcess> gateways)
    {
        foreach (var g in gateways)
        {
            output.WriteLine($"--- {g.Id} ---\n{g.Output}");
        }

        await Task.CompletedTask;
    }

    [Fact]
    public async Task Export_ToOneGatewayOfThree_EachSampleReachesPrometheusOnceThroughItsOwner()
    {
        var name = UniqueName.For();
        using var dir = new TempDirectory();
        var gateways = await StartStaticRingAsync("gw" + name[^6..], dir);
        try
        {
            const int Ticks = 10;
            var interval = TimeSpan.FromSeconds(5);
            using var sender = new RingSender(name, gateways[0].Address, resources: 4, metrics: 25, attributeSets: 4, FirstTimestamp(Ticks, interval), interval);
            for (var t = 0; t < Ticks; t++)
            {
                await sender.SendAsync(t);
            }

            Assert.Equal(0, sender.Retries);
            var total = sender.Series * Ticks;
            await TestTimeouts.WaitUntilAsync(async () =>
            {
                long sent = 0;
                foreach (var g in gateways)
                {
                    sent += (await g.ExporterAsync()).Sent;
                }

                return sent >= total;
            }, TestTimeouts.Pipeline, $"{total} samples written by the three gateways together");

            using var prometheus = new PrometheusClient();
            string? missing = "not checked";
            await TestTimeouts.WaitUntilAsync(async () => (missing = await sender.MissingAsync(prometheus, Ticks)) is null, TestTimeouts.Pipeline, "every sample in Prometheus");

            // Exactly once: the gateways together wrote each sample one time, and Prometheus refused none.
            long written = 0;
            foreach (var g in gateways)
            {
                var (sent, dropped, _) = await g.ExporterAsync();
                output.WriteLine($"{g.Id}: sent {sent}, dropped {dropped}, forwarded out {await g.MetricAsync("pgotel_gateway_forwarded_points_total")}, forwarded in {await g.MetricAsync("pgotel_gateway_forwarded_in_points_total")}");
                Assert.Equal(0, dropped);
                Assert.True(sent > total / 5, $"{g.Id} wrote only {sent} of {total} samples: it owns about a third");
                written += sent;
            }

            Assert.Equal(total, written);

            // The gateway the sender talks to forwarded to both others, and fell back for nothing.
            Assert.True(await gateways[0].MetricAsync("pgotel_gateway_forwarded_points_total", $"member=\"{gateways[1].Id}\"") > 0);
            Assert.True(await gateways[0].MetricAsync("pgotel_gateway_forwarded_points_total", $"member=\"{gateways[2].Id}\"") > 0);
            Assert.Equal(0, await gateways[0].MetricAsync("pgotel_gateway_forward_fallback_points_total"));
            Assert.True(await gateways[1].MetricAsync("pgotel_gateway_forwarded_in_points_total") > 0);
            Assert.Equal(0, await gateways[1].MetricAsync("pgotel_gateway_forwarded_points_total"));

            // The admin API: three ACTIVE members owning about a third each.
            var ring = await gateways[0].RingAsync();
            Assert.Equal(3, ring.Count);
            Assert.All(ring, m => Assert.InRange(m.Owned, 0.25, 0.42));
            Assert.Equal(gateways[0].Id, Assert.Single(ring, m => m.Self).Id);
            Assert.Equal(3.0, await gateways[0].MetricAsync("pgotel_gateway_ring_members", "state=\"ACTIVE\""));

            // The operator's view: `admin ring` prints the same members.
            var (exit, stdout, stderr) = await RunCliAsync("admin", "ring", "--url", $"http://127.0.0.1:{gateways[1].AdminPort}");
            Assert.True(exit == 0, stderr);
            Assert.All(gateways, g => Assert.Contains(g.Id, stdout, StringComparison.Ordinal));
            Assert.Equal(3, stdout.Split('\n').Count(l => l.Contains("ACTIVE", StringComparison.Ordinal)));

            // And the status page, rendered by a real browser, lists them.
            var dom = await Admin.Chromium.DumpDomAsync($"http://127.0.0.1:{gateways[2].AdminPort}/");
            var table = dom[dom.IndexOf("id=\"ring-members\"", StringComparison.Ordinal)..];
            table = table[..table.IndexOf("</table>", StringComparison.Ordinal)];
            Assert.Contains($"<td>{gateways[2].Id} (self)</td>", table, StringComparison.Ordinal);
            Assert.Contains($"<td>{gateways[0].Id}</td>", table, StringComparison.Ordinal);
            Assert.Contains($"<td>{gateways[1].Id}</td>", table, StringComparison.Ordinal);
            Assert.Contains(gateways[0].Address, table, StringComparison.Ordinal);
        }
        catch
        {
            await DumpAsync(gateways);
            throw;
        }
        finally
        {
            foreach (var g in gateways)
            {
                await g.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task KillNine_OneGatewayOfARedisRingUnderLoad_NoSampleIsMissingAndTheRingDropsItUntilItRestarts()
    {
        var name = UniqueName.For();
        using var dir = new TempDirectory();
        var gateways = GatewayProcess.Create("gw" + name[^6..], 3, dir.Path);
        var members = $"redis:\n  endpoint: {TestEnvironment.Redis}\n  key_prefix: \"{name}:\"\n  heartbeat_interval: 500ms\n  ttl: 3s";
        await Task.WhenAll(gateways.Select(g => g.StartAsync(members)));
        try
        {
            foreach (var g in gateways)
            {
                await g.WaitForRingAsync([.. gateways]);
            }

            var ticks = TestEnvironment.Soak ? 300 : 30;
            const int KillAt = 10;
            var interval = TimeSpan.FromSeconds(1);
            var first = FirstTimestamp(ticks, interval);
            using var a = new RingSender(name + "_a", gateways[0].Address, resources: 3, metrics: 20, attributeSets: 3, first, interval);
            using var b = new RingSender(name + "_b", gateways[2].Address, resources: 3, metrics: 20, attributeSets: 3, first, interval);
            var victim = gateways[1];
            for (var t = 0; t < ticks; t++)
            {
                await Task.WhenAll(a.SendAsync(t), b.SendAsync(t), Task.Delay(250));
                if (t == KillAt)
                {
                    // Between two ticks, once the victim has written what it acknowledged (until the durable queue
                    // lands, acknowledged data of a killed gateway lives only in its memory).
                    await TestTimeouts.WaitUntilAsync(async () => (await victim.ExporterAsync()).Queued == 0, TestTimeouts.Short, "the victim's queue to drain", TimeSpan.FromMilliseconds(20));
                    await victim.KillAsync();
                    output.WriteLine($"killed {victim.Id} after tick {t}");
                }
            }

            output.WriteLine($"retries: a {a.Retries}, b {b.Retries}");
            using var prometheus = new PrometheusClient();
            string? missing = "not checked";
            await TestTimeouts.WaitUntilAsync(async () => (missing = await a.MissingAsync(prometheus, ticks)) is null && (missing = await b.MissingAsync(prometheus, ticks)) is null,
                TestTimeouts.Pipeline, "every sample of both senders in Prometheus (no gap)");

            // Its share was processed by the survivors while it was unreachable, and its heartbeat key expired.
            var fallback = await gateways[0].MetricAsync("pgotel_gateway_forward_fallback_points_total", $"member=\"{victim.Id}\"")
                + await gateways[2].MetricAsync("pgotel_gateway_forward_fallback_points_total", $"member=\"{victim.Id}\"");
            output.WriteLine($"fallback points for {victim.Id}: {fallback}");
            Assert.True(fallback > 0);
            await gateways[0].WaitForRingAsync(gateways[0], gateways[2]);
            await gateways[2].WaitForRingAsync(gateways[0], gateways[2]);
            foreach (var g in new[] { gateways[0], gateways[2] })
            {
                Assert.Equal(0, (await g.ExporterAsync()).Dropped);
            }

            // Restarted (same id, same port), it heartbeats again and takes its share back.
            await victim.StartAsync(members);
            await gateways[0].WaitForRingAsync([.. gateways]);
            await gateways[2].WaitForRingAsync([.. gateways]);
        }
        catch
        {
            await DumpAsync(gateways);
            throw;
        }
        finally
        {
            foreach (var g in gateways)
            {
                await g.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Leave_OnAdminRequestOrSigterm_TurnsLeavingOwnsNothingDrainsAndExits()
    {
        var name = UniqueName.For();
        using var dir = new TempDirectory();
        var gateways = await StartStaticRingAsync("gw" + name[^6..], dir);
        try
        {
            const int Ticks = 16;
            const int LeaveAt = 5;
            var interval = TimeSpan.FromSeconds(1);
            using var sender = new RingSender(name, gateways[0].Address, resources: 3, metrics: 20, attributeSets: 3, FirstTimestamp(Ticks, interval), interval);
            var leaver = gateways[2];
            Task? exited = null;
            for (var t = 0; t < Ticks; t++)
            {
                await Task.WhenAll(sender.SendAsync(t), Task.Delay(300));
                if (t == LeaveAt)
                {
                    // `admin leave` posts /api/v1/ring/leave, as an operator or a pre-stop hook would.
                    var (exit, stdout, stderr) = await RunCliAsync("admin", "leave", "--url", $"http://127.0.0.1:{leaver.AdminPort}");
                    Assert.True(exit == 0, stderr);
                    Assert.Contains($"{leaver.Id} is LEAVING", stdout, StringComparison.Ordinal);

                    // Still up for leave_grace: it says LEAVING and owns nothing; the others own everything.
                    var self = Assert.Single(await leaver.RingAsync(), m => m.Self);
                    Assert.Equal("LEAVING", self.State);
                    Assert.Equal(0, self.Owned);
                    exited = leaver.WaitForExitAsync(TestTimeouts.Pipeline);
                }
            }

            await exited!;
            Assert.Equal(0, leaver.ExitCode);
            Assert.Contains("LEAVING", leaver.Output, StringComparison.Ordinal);
            await gateways[0].WaitForRingAsync(gateways[0], gateways[1]);
            await gateways[1].WaitForRingAsync(gateways[0], gateways[1]);
            var ring = await gateways[0].RingAsync();
            Assert.Equal(1.0, ring.Sum(m => m.Owned), 3);

            // Nothing was lost on the way: what it had taken it wrote before exiting, the rest went to the others.
            using var prometheus = new PrometheusClient();
            string? missing = "not checked";
            await TestTimeouts.WaitUntilAsync(async () => (missing = await sender.MissingAsync(prometheus, Ticks)) is null, TestTimeouts.Pipeline, "every sample in Prometheus");

            // SIGTERM does the same as the admin request.
            await RunAsync("kill", "-TERM", gateways[1].Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await gateways[1].WaitForExitAsync(TestTimeouts.Pipeline);
            Assert.Equal(0, gateways[1].ExitCode);
            Assert.Contains("is LEAVING", gateways[1].Output, StringComparison.Ordinal);
            await gateways[0].WaitForRingAsync(gateways[0]);
        }
        catch
        {
            await DumpAsync(gateways);
            throw;
        }
        finally
        {
            foreach (var g in gateways)
            {
                await g.DisposeAsync();
            }
        }
    }

    private static Task<(int Exit, string Stdout, string Stderr)> RunCliAsync(params string[] args) =>
        RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "PgOtelGateway.Gateway.dll"), .. args]);

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string file, params string[] args)
    {
        var info = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = System.Diagnostics.Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TestTimeouts.Short);
        return (process.ExitCode, await stdout, await stderr);
    }
}

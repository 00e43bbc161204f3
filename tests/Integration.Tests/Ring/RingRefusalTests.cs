using Google.Protobuf;
using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Ring;

/// <summary>
/// A share refused by its owner (overloaded, not unreachable) is not taken over by the forwarding gateway: the
/// client is told to retry, with a delay, and the refusal is counted.
/// </summary>
public sealed class RingRefusalTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Forward_OwnerRefusesItsShare_ClientGetsUnavailableWithRetryInfoAndTheRefusalIsCounted()
    {
        var name = UniqueName.For();
        using var dir = new TempDirectory();
        var gateways = GatewayProcess.Create("gw" + name[^6..], 2, dir.Path);
        var members = $"probe_interval: 500ms\nstatic: {GatewayProcess.StaticMembers(gateways)}";
        await gateways[0].StartAsync(members);

        // The second gateway's memory limiter is always over its 1 MiB limit: it refuses every point it is given.
        await gateways[1].StartAsync(members, processors: "memory_limiter:\n  check_interval: 100ms\n  limit_mib: 1\n  spike_limit_mib: 0", processorList: "memory_limiter, ");
        try
        {
            foreach (var g in gateways)
            {
                await g.WaitForRingAsync([.. gateways]);
            }

            var answer = await RawOtlpClient.GrpcAsync(gateways[0].GrpcPort, RawOtlpClient.Request(name, 20).ToByteArray()).WaitAsync(TestTimeouts.Short);

            Assert.Equal(14, answer.Code);
            Assert.NotNull(answer.RetryAfter);
            Assert.Contains("refused", answer.Message, StringComparison.Ordinal);
            Assert.True(await gateways[0].MetricAsync("pgotel_gateway_forward_refused_points_total") > 0, "the refused share is counted");
            Assert.Equal(0, await gateways[0].MetricAsync("pgotel_gateway_forward_fallback_points_total"));
        }
        catch
        {
            foreach (var g in gateways)
            {
                output.WriteLine($"--- {g.Id} ---\n{g.Output}");
            }

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
}

using System.Globalization;
using System.Net;
using Google.Protobuf;
using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Ring;

/// <summary>
/// The per-client rate limit on a ring: a gateway forwarding many clients' shares to the owner is not throttled as
/// one client (its clients were admitted at its own receiver), while anyone else sending the hop header still is.
/// </summary>
public sealed class RingRateLimitTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Forward_ManyClientsThroughOneMember_OwnerDoesNotRateLimitItsPeerButDoesLimitOthers()
    {
        var name = UniqueName.For();
        using var dir = new TempDirectory();
        var gateways = GatewayProcess.Create("gw" + name[^6..], 2, dir.Path);
        var members = $"probe_interval: 500ms\nstatic: {GatewayProcess.StaticMembers(gateways)}";
        const string Tight = "requests_per_second: 1\nburst: 3";
        await Task.WhenAll(gateways.Select(g => g.StartAsync(members, rateLimiting: Tight)));
        try
        {
            foreach (var g in gateways)
            {
                await g.WaitForRingAsync([.. gateways]);
            }

            // Twenty clients, each on its own loopback address and well within its own limit, send to the first
            // gateway; about half of every request belongs to the second, so the first forwards twenty requests.
            const int Clients = 20;
            for (var c = 0; c < Clients; c++)
            {
                var request = RawOtlpClient.Request(name, 20, (p, i) => p.AsDouble = c);
                var from = IPAddress.Parse("127.0.1." + (c + 1).ToString(CultureInfo.InvariantCulture));
                var answer = await RawOtlpClient.GrpcAsync(gateways[0].GrpcPort, request.ToByteArray(), from: from).WaitAsync(TestTimeouts.Short);
                Assert.True(answer.Code == 0, $"client {c}: {answer}");
            }

            Assert.True(await gateways[0].MetricAsync("pgotel_gateway_forwarded_points_total") >= Clients * 5, "the first gateway forwarded shares");

            // Someone else claiming to be a member gets no pass: the hop header from a non-member is limited.
            var refused = 0;
            for (var r = 0; r < 10; r++)
            {
                var answer = await RawOtlpClient.GrpcAsync(gateways[1].GrpcPort, RawOtlpClient.Request(name + "_x", 2).ToByteArray(),
                    from: IPAddress.Parse("127.0.2.1"), header: ("x-pgotel-forwarded", "intruder")).WaitAsync(TestTimeouts.Short);
                refused += answer.Code == 8 ? 1 : 0;
            }

            Assert.True(refused >= 5, $"only {refused} of 10 requests over the limit were refused");
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

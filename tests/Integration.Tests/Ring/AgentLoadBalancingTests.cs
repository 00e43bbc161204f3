using Microsoft.Extensions.Logging.Abstractions;
using PgOtelGateway.Agent.Export;
using PgOtelGateway.Shared.Ring;
using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Ring;

/// <summary>The agent's <c>otlp</c> exporter with <c>loadbalancing</c> against three gateway processes.</summary>
public sealed class AgentLoadBalancingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Export_WithLoadBalancing_SendsEachStreamStraightToItsOwnerAndRoutesAroundADeadGateway()
    {
        var name = UniqueName.For();
        using var dir = new TempDirectory();
        var gateways = GatewayProcess.Create("gw" + name[^6..], 3, dir.Path);
        var staticList = GatewayProcess.StaticMembers(gateways);
        await Task.WhenAll(gateways.Select(g => g.StartAsync($"probe_interval: 500ms\nstatic: {staticList}")));
        var options = new OtlpExporterOptions
        {
            Endpoint = gateways[0].Address,
            RetryOnFailure = { InitialInterval = TimeSpan.FromMilliseconds(200), MaxInterval = TimeSpan.FromSeconds(1) },
            Loadbalancing = new LoadBalancingOptions
            {
                Members = new RingMembersOptions { ProbeInterval = TimeSpan.FromMilliseconds(500), Static = [.. gateways.Select(g => $"{g.Id}={g.Address}")] },
            },
        };
        using var exporter = new LoadBalancingExporter("otlp", options, NullLoggerFactory.Instance, TimeProvider.System);
        try
        {
            foreach (var g in gateways)
            {
                await g.WaitForRingAsync([.. gateways]);
            }

            await exporter.StartAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
            await TestTimeouts.WaitUntilAsync(() => Task.FromResult(exporter.Ring.Ring.Members.Count == 3), TestTimeouts.Short, "the exporter to see three gateways");

            const int Ticks = 10;
            var interval = TimeSpan.FromSeconds(1);
            using var series = new RingSender(name, gateways[0].Address, resources: 3, metrics: 20, attributeSets: 3,
                DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 90), interval);
            for (var t = 0; t < Ticks / 2; t++)
            {
                await exporter.ConsumeAsync(series.Request(t), CancellationToken.None);
            }

            using var prometheus = new PrometheusClient();
            string? missing = "not checked";
            await TestTimeouts.WaitUntilAsync(async () => (missing = await series.MissingAsync(prometheus, Ticks / 2)) is null, TestTimeouts.Pipeline, "the first ticks in Prometheus");

            // Every gateway wrote its own share and none had to forward: the agent sent each stream to its owner.
            foreach (var g in gateways)
            {
                var forwarded = await g.MetricAsync("pgotel_gateway_forwarded_points_total");
                var sent = (await g.ExporterAsync()).Sent;
                output.WriteLine($"{g.Id}: sent {sent}, forwarded {forwarded}");
                Assert.Equal(0, forwarded);
                Assert.True(sent > 0, $"{g.Id} received nothing");
            }

            // A gateway dies: once the probes notice, its streams go to the next owner among the live ones.
            await gateways[1].KillAsync();
            await TestTimeouts.WaitUntilAsync(() => Task.FromResult(exporter.Ring.Ring.Members.Count == 2), TestTimeouts.Short, "the exporter to drop the dead gateway");
            await gateways[0].WaitForRingAsync(gateways[0], gateways[2]);
            await gateways[2].WaitForRingAsync(gateways[0], gateways[2]);
            for (var t = Ticks / 2; t < Ticks; t++)
            {
                await exporter.ConsumeAsync(series.Request(t), CancellationToken.None);
            }

            await TestTimeouts.WaitUntilAsync(async () => (missing = await series.MissingAsync(prometheus, Ticks)) is null, TestTimeouts.Pipeline, "every tick in Prometheus");
            Assert.Equal(0, await gateways[0].MetricAsync("pgotel_gateway_forwarded_points_total"));
            Assert.Equal(0, await gateways[2].MetricAsync("pgotel_gateway_forwarded_points_total"));
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
            await exporter.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
            foreach (var g in gateways)
            {
                await g.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Export_GatewayDiesWithBatchesWaitingForIt_TheyAreRoutedToTheLiveGatewaysAndArrive()
    {
        var name = UniqueName.For();
        using var dir = new TempDirectory();
        var spool = Path.Combine(dir.Path, "spool");
        var gateways = GatewayProcess.Create("gw" + name[^6..], 3, dir.Path);
        var staticList = GatewayProcess.StaticMembers(gateways);
        await Task.WhenAll(gateways.Select(g => g.StartAsync($"probe_interval: 500ms\nstatic: {staticList}")));
        var options = new OtlpExporterOptions
        {
            Endpoint = gateways[0].Address,
            RetryOnFailure = { InitialInterval = TimeSpan.FromMilliseconds(200), MaxInterval = TimeSpan.FromSeconds(1) },
            SendingQueue = { StorageDir = spool },
            Loadbalancing = new LoadBalancingOptions
            {
                // Slow probes: the agent keeps routing to the dead gateway for a few seconds, as it would in life.
                Members = new RingMembersOptions { ProbeInterval = TimeSpan.FromSeconds(3), Static = [.. gateways.Select(g => $"{g.Id}={g.Address}")] },
            },
        };
        const string Id = "otlp-reroute";
        var rerouted = global::PgOtelGateway.Agent.Collection.AgentMetrics.ReroutedPoints.WithLabels(Id);
        var reroutedBefore = rerouted.Value;
        using var exporter = new LoadBalancingExporter(Id, options, NullLoggerFactory.Instance, TimeProvider.System);
        try
        {
            foreach (var g in gateways)
            {
                await g.WaitForRingAsync([.. gateways]);
            }

            await exporter.StartAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
            await TestTimeouts.WaitUntilAsync(() => Task.FromResult(exporter.Ring.Ring.Members.Count == 3), TestTimeouts.Short, "the exporter to see three gateways");

            const int Ticks = 6;
            using var series = new RingSender(name, gateways[0].Address, resources: 3, metrics: 20, attributeSets: 3,
                DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 90), TimeSpan.FromSeconds(1));
            await exporter.ConsumeAsync(series.Request(0), CancellationToken.None);
            using var prometheus = new PrometheusClient();
            string? missing = "not checked";
            await TestTimeouts.WaitUntilAsync(async () => (missing = await series.MissingAsync(prometheus, 1)) is null, TestTimeouts.Pipeline, "the first tick in Prometheus");

            // Each gateway's sender spools to a folder of its own.
            var folders = Directory.GetDirectories(spool).Select(Path.GetFileName).ToList();
            Assert.Equal(3, folders.Count);

            // A gateway dies, and before the agent notices, its share of the next ticks is sent to it and waits.
            await gateways[1].KillAsync();
            for (var t = 1; t < Ticks; t++)
            {
                await exporter.ConsumeAsync(series.Request(t), CancellationToken.None);
            }

            await TestTimeouts.WaitUntilAsync(() => Task.FromResult(exporter.Ring.Ring.Members.Count == 2), TestTimeouts.Short, "the exporter to drop the dead gateway");
            await gateways[0].WaitForRingAsync(gateways[0], gateways[2]);
            await gateways[2].WaitForRingAsync(gateways[0], gateways[2]);
            await TestTimeouts.WaitUntilAsync(async () => (missing = await series.MissingAsync(prometheus, Ticks)) is null, TestTimeouts.Pipeline, "every tick in Prometheus");

            Assert.True(rerouted.Value > reroutedBefore, "the batches waiting for the dead gateway were routed again");
            var dead = Path.GetFileName(OtlpExporter.SpoolDirectory(spool, Id + "-" + gateways[1].Address));
            Assert.DoesNotContain(dead, Directory.GetDirectories(spool).Select(Path.GetFileName));
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
            await exporter.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
            foreach (var g in gateways)
            {
                await g.DisposeAsync();
            }
        }
    }

    [Fact]
    public void Load_AgentConfigWithLoadBalancing_BindsTheRingOptions()
    {
        var config = Shared.Configuration.ConfigLoader.Load("""
            receivers:
              postgresql:
                endpoint: localhost:5432
            exporters:
              otlp:
                endpoint: pgotel-gateway:4317
                loadbalancing:
                  routing_key: resource
                  members:
                    dns:
                      hostname: pgotel-gateway-headless.monitoring.svc.cluster.local
                      port: 4317
                      interval: 30s
            service:
              pipelines:
                metrics:
                  receivers: [postgresql]
                  exporters: [otlp]
            """, global::PgOtelGateway.Agent.Configuration.AgentComponents.CreateRegistry(), "agent.yaml");
        var balancing = config.Exporters["otlp"].OptionsAs<OtlpExporterOptions>().Loadbalancing!;

        Assert.Equal(RoutingKey.Resource, balancing.RoutingKey);
        Assert.Equal(HashRing.DefaultTokensPerMember, balancing.TokensPerMember);
        Assert.Equal("pgotel-gateway-headless.monitoring.svc.cluster.local", balancing.Members.Dns!.Hostname);
        Assert.Equal(TimeSpan.FromSeconds(30), balancing.Members.Dns.Interval);

        var ex = Assert.Throws<Shared.Configuration.ConfigException>(() => Shared.Configuration.ConfigLoader.Load(
            "exporters:\n  otlp:\n    loadbalancing:\n      members: {}\n", global::PgOtelGateway.Agent.Configuration.AgentComponents.CreateRegistry(), "agent.yaml"));
        Assert.Contains("exporters.otlp.loadbalancing.members: exactly one of static, dns or redis", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_WithDnsMembers_LearnsTheGatewayIdFromItsProbeAndDelivers()
    {
        var name = UniqueName.For();
        using var dir = new TempDirectory();
        await using var gateway = GatewayProcess.Create("gw" + name[^6..], 1, dir.Path)[0];
        await gateway.StartAsync($"probe_interval: 500ms\nstatic: {GatewayProcess.StaticMembers([gateway])}");
        var options = new OtlpExporterOptions
        {
            Endpoint = gateway.Address,
            Loadbalancing = new LoadBalancingOptions
            {
                // localhost resolves to 127.0.0.1 (and maybe ::1, where nothing answers: not a member then).
                Members = new RingMembersOptions { ProbeInterval = TimeSpan.FromMilliseconds(500), Dns = new DnsMembersOptions { Hostname = "localhost", Port = gateway.GrpcPort } },
            },
        };
        using var exporter = new LoadBalancingExporter("otlp", options, NullLoggerFactory.Instance, TimeProvider.System);
        try
        {
            await exporter.StartAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
            await TestTimeouts.WaitUntilAsync(() => Task.FromResult(exporter.Ring.Ring.Members.Count == 1), TestTimeouts.Short, "the exporter to find the gateway by DNS");
            Assert.Equal(gateway.Id, exporter.Ring.Ring.Members[0]);
            Assert.Equal(gateway.Address, exporter.Ring.Addresses[0]);

            using var series = new RingSender(name, gateway.Address, resources: 1, metrics: 5, attributeSets: 2,
                DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60), TimeSpan.FromSeconds(1));
            for (var t = 0; t < 3; t++)
            {
                await exporter.ConsumeAsync(series.Request(t), CancellationToken.None);
            }

            using var prometheus = new PrometheusClient();
            string? missing = "not checked";
            await TestTimeouts.WaitUntilAsync(async () => (missing = await series.MissingAsync(prometheus, 3)) is null, TestTimeouts.Pipeline, "every tick in Prometheus");
        }
        finally
        {
            await exporter.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
        }
    }
}

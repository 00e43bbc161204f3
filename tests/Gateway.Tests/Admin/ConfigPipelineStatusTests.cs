using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Shared.Configuration;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Admin;

public sealed class ConfigPipelineStatusTests
{
    [Fact]
    public void Snapshot_ShowsPipelinesFromConfigAndLiveUptimeAndReadiness()
    {
        var config = ConfigLoader.Load(GatewayComponents.EmbeddedDefaults(), GatewayComponents.CreateRegistry());
        var clock = new ManualTimeProvider();
        var ready = false;
        var status = new ConfigPipelineStatus("gw-7", config, () => ready, clock);

        clock.Advance(TimeSpan.FromSeconds(90));
        ready = true;
        var snapshot = status.Snapshot();

        Assert.Equal("gw-7", snapshot.Id);
        Assert.True(snapshot.Ready);
        Assert.Equal(TimeSpan.FromSeconds(90), snapshot.Uptime);
        Assert.Matches(@"^\d+\.\d+\.\d+", snapshot.Version);
        var pipeline = Assert.Single(snapshot.Pipelines);
        Assert.Equal("metrics", pipeline.Id);
        Assert.Equal(["otlp"], pipeline.Receivers);
        Assert.Equal(config.Service.Pipelines["metrics"].Processors, pipeline.Processors);
        Assert.Equal(config.Service.Pipelines["metrics"].Exporters, pipeline.Exporters);
    }
}

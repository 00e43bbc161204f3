using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Ring;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Routing;

public sealed class RingOptionsTests
{
    private static PipelineConfig Load(string yaml) => ConfigLoader.Load(yaml, GatewayComponents.CreateRegistry(), "test.yaml");

    [Fact]
    public void Load_WithoutRing_LeavesItOff()
    {
        Assert.Null(Load("gateway:\n  id: gw-0\n").Section<GatewayOptions>("gateway").Ring);
    }

    [Fact]
    public void Load_StaticRing_BindsEveryOption()
    {
        var ring = Load("""
            gateway:
              id: gw-0
              ring:
                tokens_per_member: 256
                routing_key: resource
                forward_timeout: 750ms
                advertise_address: 10.0.0.1:4317
                members:
                  static: [gw-0=10.0.0.1:4317, "gw-1=10.0.0.2:4317", 10.0.0.3:4317]
            """).Section<GatewayOptions>("gateway").Ring!;

        Assert.Equal(256, ring.TokensPerMember);
        Assert.Equal(RoutingKey.Resource, ring.RoutingKey);
        Assert.Equal(TimeSpan.FromMilliseconds(750), ring.ForwardTimeout);
        Assert.Equal("", ring.Self);
        Assert.Equal(3, ring.Members.Static.Count);
        Assert.True(MemberAddress.TryParse(ring.Members.Static[2], out var id, out var address));
        Assert.Equal(("10.0.0.3:4317", "10.0.0.3:4317"), (id, address));
    }

    [Fact]
    public void Load_RedisRing_HasDefaultsAndRedactsThePassword()
    {
        var config = Load("""
            gateway:
              ring:
                members:
                  redis:
                    endpoint: redis:6379
                    password: s3cret-ring
            """);
        var ring = config.Section<GatewayOptions>("gateway").Ring!;

        Assert.Equal(HashRing.DefaultTokensPerMember, ring.TokensPerMember);
        Assert.Equal(RoutingKey.Stream, ring.RoutingKey);
        Assert.Equal(TimeSpan.FromSeconds(2), ring.Members.Redis!.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(10), ring.Members.Redis.Ttl);
        Assert.Equal("pgotel:ring:", ring.Members.Redis.KeyPrefix);
        Assert.DoesNotContain("s3cret-ring", config.RedactedYaml, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("members:\n  static: [a=h:1]\n  redis:\n    endpoint: r:6379\n", "gateway.ring.members: exactly one of static, dns or redis")]
    [InlineData("members: {}\n", "exactly one of static, dns or redis")]
    [InlineData("members:\n  static: [\"a=nohost\"]\n", "'a=nohost' is not id=host:port")]
    [InlineData("tokens_per_member: 0\nmembers:\n  static: [a=h:1]\n", "tokens_per_member must be 1–4096")]
    [InlineData("routing_key: series\nmembers:\n  static: [a=h:1]\n", "routing_key")]
    [InlineData("members:\n  redis:\n    heartbeat_interval: 10s\n    ttl: 5s\n", "heartbeat_interval must be above 0 and below ttl")]
    [InlineData("members:\n  dns:\n    port: 4317\n", "hostname")]
    public void Load_InvalidRing_NamesTheKey(string ringYaml, string expected)
    {
        var yaml = "gateway:\n  ring:\n" + string.Join('\n', ringYaml.Split('\n').Select(l => l.Length == 0 ? l : "    " + l));
        var ex = Assert.Throws<ConfigException>(() => Load(yaml));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }
}

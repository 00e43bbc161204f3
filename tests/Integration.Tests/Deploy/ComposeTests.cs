using YamlDotNet.RepresentationModel;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>docker-compose.yml: <c>docker-compose config</c> accepts it, and the stack has what the issue lists.</summary>
public sealed class ComposeTests
{
    [Fact]
    public async Task DockerComposeConfig_OnTheDevelopmentStack_SucceedsWithTheWholeStack()
    {
        var (exit, stdout, stderr) = await ToolRunner.RunAsync(ToolRunner.Require("docker-compose"), ["-f", "docker-compose.yml", "config"]);
        Assert.True(exit == 0, stderr);

        var root = Parse(stdout);
        var services = (YamlMappingNode)root["services"];
        string Image(string service) => DeployFiles.Scalar((YamlMappingNode)services[service], "image") ?? "";
        string Command(string service) => string.Join(' ', ((YamlSequenceNode)((YamlMappingNode)services[service])["command"]).Select(n => ((YamlScalarNode)n).Value));
        var names = services.Children.Keys.Select(k => ((YamlScalarNode)k).Value!).ToHashSet(StringComparer.Ordinal);

        Assert.Equal("postgres:15", Image("postgres"));
        Assert.Contains("shared_preload_libraries=pg_stat_statements", Command("postgres"), StringComparison.Ordinal);
        Assert.StartsWith("redis:", Image("redis"), StringComparison.Ordinal);
        Assert.Contains("--configure-bucket pgotel-metrics", Command("s3"), StringComparison.Ordinal);
        Assert.Contains("--web.enable-remote-write-receiver", Command("prometheus"), StringComparison.Ordinal);
        Assert.StartsWith("grafana/grafana", Image("grafana"), StringComparison.Ordinal);

        // Three gateways, exactly the static ring's members (id=host:4317 with host = the service).
        var gateways = names.Where(n => n.StartsWith("gateway-", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["gateway-1", "gateway-2", "gateway-3"], gateways);
        var gatewayConfig = (YamlMappingNode)DeployFiles.LoadYaml(Path.Combine(DeployFiles.Root, "deploy", "compose", "gateway.yaml"))!;
        var members = ((YamlSequenceNode)((YamlMappingNode)((YamlMappingNode)((YamlMappingNode)gatewayConfig["gateway"])["ring"])["members"])["static"])
            .Select(n => ((YamlScalarNode)n).Value!).ToList();
        Assert.Equal(gateways.Select(g => $"{g}={g}:4317"), members);
        foreach (var g in gateways)
        {
            var env = (YamlMappingNode)((YamlMappingNode)services[g])["environment"];
            Assert.Equal(g, DeployFiles.Scalar(env, "GATEWAY_ID"));
        }

        // One agent per PostgreSQL, pointing at it.
        var postgresServices = names.Where(n => Image(n).StartsWith("postgres:", StringComparison.Ordinal)).ToList();
        var agentTargets = names.Where(n => n.StartsWith("agent-", StringComparison.Ordinal))
            .Select(n => DeployFiles.Scalar((YamlMappingNode)((YamlMappingNode)services[n])["environment"], "POSTGRES_ENDPOINT")!.Split(':')[0])
            .Order(StringComparer.Ordinal).ToList();
        Assert.Equal(postgresServices.Order(StringComparer.Ordinal), agentTargets);

        // Secrets come from files that exist.
        foreach (var (_, secret) in (YamlMappingNode)root["secrets"])
        {
            var file = DeployFiles.Scalar((YamlMappingNode)secret, "file");
            Assert.True(file is not null && File.Exists(file), $"secret file {file} is missing");
        }
    }

    private static YamlMappingNode Parse(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }
}

using Xunit;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>Every example configuration under deploy/ passes the binary's own <c>validate --config</c>.</summary>
public sealed class ExampleConfigTests : IDisposable
{
    private readonly PgOtelGateway.Tests.Common.TempDirectory _secrets = new();

    /// <summary>deploy/**/*.yaml that are agent or gateway configurations (collector-style, with receivers:).</summary>
    public static TheoryData<string> Configs() => [.. ConfigPaths()];

    [Fact]
    public void Configs_CoverExamplesComposeAndKubernetes()
    {
        var all = ConfigPaths();

        foreach (var expected in new[] { "deploy/examples/agent.yaml", "deploy/examples/gateway.yaml", "deploy/compose/agent.yaml", "deploy/compose/gateway.yaml", "deploy/kubernetes/config/agent.yaml", "deploy/kubernetes/config/gateway.yaml" })
        {
            Assert.Contains(expected, all);
        }
    }

    private static List<string> ConfigPaths()
    {
        var data = new List<string>();
        foreach (var file in Directory.GetFiles(Path.Combine(DeployFiles.Root, "deploy"), "*.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(file);
            if ((name.Contains("agent", StringComparison.Ordinal) || name.Contains("gateway", StringComparison.Ordinal)) &&
                DeployFiles.LoadYaml(file) is YamlDotNet.RepresentationModel.YamlMappingNode root && root.Children.ContainsKey("receivers"))
            {
                data.Add(Path.GetRelativePath(DeployFiles.Root, file));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public async Task Validate_OnExampleConfig_ExitsZero(string relativePath)
    {
        var binary = Path.GetFileName(relativePath).Contains("agent", StringComparison.Ordinal) ? "PgOtelGateway.Agent.dll" : "PgOtelGateway.Gateway.dll";
        // The secrets the configs read from files (paths overridable by environment variables, as deployed).
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["POSTGRES_PASSWORD_FILE"] = Secret("pg_monitor_password"),
            ["PGOTEL_TOKEN_FILE"] = Secret("otlp_token"),
            ["ADMIN_TOKEN_FILE"] = Secret("admin_token"),
            ["REDIS_PASSWORD_FILE"] = Secret("redis_password"),
            ["PGOTEL_TOKEN"] = "test-token",
        };

        var (exit, stdout, stderr) = await ToolRunner.RunAsync(
            "dotnet", [Path.Combine(AppContext.BaseDirectory, binary), "validate", "--config", Path.Combine(DeployFiles.Root, relativePath)], environment: environment);

        Assert.True(exit == 0, $"{relativePath} ({binary}):\n{stderr}{stdout}");
        Assert.Contains(": valid (", stdout, StringComparison.Ordinal);
    }

    public void Dispose() => _secrets.Dispose();

    private string Secret(string name)
    {
        var path = _secrets.File(name);
        File.WriteAllText(path, "s3cr3t-" + name + "\n");
        return path;
    }
}

using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Admin;

/// <summary><c>gateway.admin</c> as the loader binds it (the section is wired the way the gateway will wire it).</summary>
public sealed class AdminOptionsTests : IDisposable
{
    private readonly TempDirectory _dir = new("pgotel-admin-options");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Defaults_ListenOn8080WithoutToken()
    {
        var options = new AdminOptions();

        Assert.Equal("0.0.0.0:8080", options.Endpoint);
        Assert.Equal("", options.Token);
        Assert.Equal(TimeSpan.FromHours(1), options.Instances.Retention);
        Assert.Equal(10_000, options.Instances.MaxInstances);
        Assert.Empty(options.Validate());
    }

    [Fact]
    public void TokenFile_FillsTheTokenAndIsRedacted()
    {
        var file = _dir.File("token");
        File.WriteAllText(file, "from-file-token-123\n");

        var config = Load($"""
            gateway:
              admin:
                endpoint: 127.0.0.1:18080
                token_file: {file}
                instances:
                  retention: 30m
                  max_instances: 50
                  series_window: 2m
            """);

        var admin = config.Section<Section>("gateway").Admin;
        Assert.Equal("127.0.0.1:18080", admin.Endpoint);
        Assert.Equal("from-file-token-123", admin.Token);
        Assert.Equal(TimeSpan.FromMinutes(30), admin.Instances.Retention);
        Assert.Equal(50, admin.Instances.MaxInstances);
        Assert.Equal(TimeSpan.FromMinutes(2), admin.Instances.SeriesWindow);
        Assert.DoesNotContain("from-file-token-123", config.RedactedYaml, StringComparison.Ordinal);
    }

    [Fact]
    public void InlineToken_IsRedacted()
    {
        var config = Load("gateway:\n  admin:\n    token: inline-token-456\n");

        Assert.Equal("inline-token-456", config.Section<Section>("gateway").Admin.Token);
        Assert.Contains("token: <redacted>", config.RedactedYaml, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("    endpoint: nonsense\n", "gateway.admin: endpoint: 'nonsense' is not host:port")]
    [InlineData("    endpoint: gateway.example:8080\n", "is not an IP address")]
    [InlineData("    token: \" padded \"\n", "gateway.admin: token: must not have leading or trailing spaces")]
    [InlineData("    instances:\n      retention: 0s\n", "instances.retention must be above 0")]
    [InlineData("    instances:\n      max_instances: 0\n", "instances.max_instances")]
    [InlineData("    tokn: x\n", "did you mean 'token'")]
    public void InvalidSettings_AreNamedWithTheirKey(string yaml, string expected)
    {
        var ex = Assert.Throws<ConfigException>(() => Load("gateway:\n  admin:\n" + yaml));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmptyEndpoint_TurnsTheAdminApiOff()
    {
        var admin = Load("gateway:\n  admin:\n    endpoint: \"\"\n").Section<Section>("gateway").Admin;

        Assert.Empty(admin.Validate());
        Assert.Null(AdminServer.CreateIfEnabled(admin, new AdminSources { Pipeline = new FakePipelineStatus() }, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance));
    }

    private static PipelineConfig Load(string yaml) =>
        ConfigLoader.Load(yaml, GatewayComponents.CreateRegistry().AddSection<Section>("gateway"), "test.yaml");

    /// <summary>Stands in for the gateway section until it carries <c>admin</c>.</summary>
    internal sealed class Section
    {
        public string Id { get; set; } = "gw";

        public AdminOptions Admin { get; set; } = new();
    }
}

using System.Net;
using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Admin;

/// <summary>No secret of the configuration reaches any admin response, whichever way it could leak.</summary>
public sealed class AdminSecretTests : IDisposable
{
    private const string AdminToken = "admin-file-token-M3x9";
    private const string IngestToken = "ingest-token-S3cr3t-1";
    private const string RedisFilePassword = "redis-file-password-K7";
    private const string RedisUrlPassword = "redis-url-pw-Zq9";
    private const string RemoteWriteUrlPassword = "rw-url-password-Xy";
    private const string HeaderToken = "rw-header-token-Q1w2";
    private const string TenantHeader = "tenant-secret-7788";
    private const string InlinePassword = "inline-password-P0o9";

    private static readonly string[] Secrets =
        [AdminToken, IngestToken, RedisFilePassword, RedisUrlPassword, RemoteWriteUrlPassword, HeaderToken, TenantHeader, InlinePassword];

    private readonly TempDirectory _dir = new("pgotel-admin-secrets");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task EveryResponse_WithSecretsInConfigAndErrors_ShowsNoSecret()
    {
        var config = LoadConfig();
        var admin = config.Section<AdminOptions>("admin");
        Assert.Equal(AdminToken, admin.Token);

        // Components that echo secrets into free text: an exporter error quoting its URL and headers, a ring
        // member whose address carries credentials.
        var sources = AdminSources.For(
            config,
            new FakePipelineStatus(),
            exporters:
            [
                new FakeExporter("prometheusremotewrite",
                    $"POST http://rwuser:{RemoteWriteUrlPassword}@127.0.0.1:9/api/v1/write: 401 with Authorization: Bearer {HeaderToken}, X-Scope-OrgID {TenantHeader}"),
                new FakeExporter("parquet", $"redis://:{RedisUrlPassword}@127.0.0.1:6379 refused AUTH {RedisFilePassword} ({InlinePassword}, {IngestToken}, {AdminToken})"),
            ]);
        Assert.True(sources.Scrubber.Count >= 6, $"the scrubber knows {sources.Scrubber.Count} secrets");
        await using var server = await AdminTestServer.StartAsync(sources, admin.Token);

        foreach (var path in new[] { "/", "/api/v1/status", "/api/v1/ring", "/api/v1/ha", "/api/v1/dedup", "/api/v1/exporters", "/api/v1/instances", "/api/v1/config" })
        {
            using var response = await server.SendAsync(HttpMethod.Get, path);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {body}");
            foreach (var secret in Secrets)
            {
                Assert.False(body.Contains(secret, StringComparison.Ordinal), $"{path} shows the secret '{secret}':\n{body}");
                Assert.False(response.Headers.ToString().Contains(secret, StringComparison.Ordinal), $"{path} headers show '{secret}'");
            }
        }

        var exporters = await server.GetJsonAsync("/api/v1/exporters");
        var error = exporters.GetProperty("exporters")[0].GetProperty("last_error").GetString();
        Assert.Equal("POST http://rwuser:<redacted>@127.0.0.1:9/api/v1/write: 401 with Authorization: <redacted>, X-Scope-OrgID <redacted>", error);

        var yaml = (await server.GetJsonAsync("/api/v1/config")).GetProperty("yaml").GetString()!;
        Assert.Contains("bearer_token: <redacted>", yaml, StringComparison.Ordinal);
        Assert.Contains("password: <redacted>", yaml, StringComparison.Ordinal);
        Assert.Contains("Authorization: <redacted>", yaml, StringComparison.Ordinal);
        Assert.Contains("token_file: " + _dir.File("admin-token"), yaml, StringComparison.Ordinal);
        Assert.Contains("http://rwuser:<redacted>@127.0.0.1:9/api/v1/write", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnauthorizedResponses_NeverEchoTheTokenTried()
    {
        var config = LoadConfig();
        await using var server = await AdminTestServer.StartAsync(AdminSources.For(config, new FakePipelineStatus()), AdminToken);

        using var response = await server.SendAsync(HttpMethod.Get, "/api/v1/config", token: AdminToken + "-wrong");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(AdminToken, body, StringComparison.Ordinal);
        Assert.DoesNotContain(AdminToken, response.Headers.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Scrubber_ReplacesLongestSecretFirstAndUrlPasswords()
    {
        var scrubber = new SecretScrubber(["abcd", "abcdefgh", "ab"]);

        Assert.Equal("x <redacted> y <redacted> ab", scrubber.Scrub("x abcdefgh y abcd ab"));
        Assert.Equal("https://me:<redacted>@host/x and redis://:<redacted>@r:6379", scrubber.Scrub("https://me:pw@host/x and redis://:pw2@r:6379"));
        Assert.Equal("no secrets here", scrubber.Scrub("no secrets here"));
    }

    private PipelineConfig LoadConfig()
    {
        File.WriteAllText(_dir.File("admin-token"), AdminToken + "\n");
        File.WriteAllText(_dir.File("redis-password"), RedisFilePassword + "\n");
        var yaml = $"""
            receivers:
              otlp:
                protocols:
                  grpc:
                    endpoint: 127.0.0.1:0
                auth:
                  bearer_token: {IngestToken}
            processors:
              secretive:
                redis:
                  endpoint: redis://:{RedisUrlPassword}@127.0.0.1:6379
                  password_file: {_dir.File("redis-password")}
                password: {InlinePassword}
            exporters:
              prometheusremotewrite:
                endpoint: http://rwuser:{RemoteWriteUrlPassword}@127.0.0.1:9/api/v1/write
                headers:
                  Authorization: Bearer {HeaderToken}
                  X-Scope-OrgID: {TenantHeader}
            admin:
              endpoint: 127.0.0.1:0
              token_file: {_dir.File("admin-token")}
            service:
              pipelines:
                metrics:
                  receivers: [otlp]
                  processors: [secretive]
                  exporters: [prometheusremotewrite]
            """;
        var registry = GatewayComponents.CreateRegistry()
            .AddProcessor<SecretiveProcessorOptions>("secretive")
            .AddSection<AdminOptions>("admin");
        return ConfigLoader.Load(yaml, registry, "test.yaml");
    }

    internal sealed class SecretiveProcessorOptions
    {
        public RedisTestOptions Redis { get; set; } = new();

        [Secret]
        public string Password { get; set; } = "";
    }

    internal sealed class RedisTestOptions
    {
        public string Endpoint { get; set; } = "";

        [Secret]
        public string Password { get; set; } = "";
    }
}

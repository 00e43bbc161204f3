using System.Text.Json;
using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Shared.Cli;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Admin;

/// <summary>`pgotel-gateway admin …` against a running admin server with fake sources.</summary>
public sealed class AdminCliTests : IDisposable
{
    private const string Token = "cli-token-5f3a9c0e7b";

    private readonly TempDirectory _dir = new("pgotel-admin-cli");

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("status", new[] { "ID", "VERSION", "READY", "UPTIME", "gw-test", "1.2.3", "yes", "1h02m", "PIPELINE", "memory_limiter, dedupe, batch" })]
    [InlineData("ring", new[] { "MEMBER", "ADDRESS", "STATE", "LAST HEARTBEAT", "OWNED", "gw-a", "10.0.0.1:4317", "ACTIVE", "JOINING", "50.0%" })]
    [InlineData("ha", new[] { "CLUSTER", "ELECTED REPLICA", "FAILOVERS", "pg-orders", "agent-2", "ha_tracker" })]
    [InlineData("dedup", new[] { "PROCESSOR", "CACHE SIZE", "HITS LOCAL", "HITS REDIS", "MISSES", "REDIS ERRORS", "REDIS ROUND TRIPS", "dedupe", "1200", "5000", "350" })]
    [InlineData("exporters", new[] { "EXPORTER", "QUEUE", "QUEUE BYTES", "OLDEST", "SENT", "FAILED", "DROPPED", "LAST ERROR", "prometheusremotewrite", "345678", "4.3s", "HTTP 503 from" })]
    [InlineData("instances", new[] { "CLUSTER", "INSTANCE", "ROLE", "AGENTS", "LAST SEEN", "SERIES", "POINTS/S", "pg-orders", "10.1.0.5:5432", "primary", "agent-1, agent-2" })]
    [InlineData("config", new[] { "# source: /etc/pgotel/gateway.yaml", "id: gw-test" })]
    public async Task Command_WithToken_PrintsTheTableAndExitsZero(string command, string[] expected)
    {
        await using var server = await StartAsync();

        var (code, stdout, stderr) = await RunAsync("admin", command, "--url", server.Server.LocalUrl.ToString(), "--token-file", TokenFile());

        Assert.True(code == 0, stderr);
        Assert.Equal("", stderr);
        foreach (var text in expected)
        {
            Assert.Contains(text, stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Ring_PrintsColumnsAlignedUnderTheirHeaders()
    {
        await using var server = await StartAsync();

        var (code, stdout, _) = await RunAsync("admin", "ring", "--url", server.Server.LocalUrl.ToString(), "--token-file", TokenFile());

        Assert.Equal(0, code);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("MEMBER", lines[0], StringComparison.Ordinal);
        var addressColumn = lines[0].IndexOf("ADDRESS", StringComparison.Ordinal);
        var stateColumn = lines[0].IndexOf("STATE", StringComparison.Ordinal);
        Assert.Equal(["gw-a", "gw-b", "gw-c"], lines[1..].Select(l => l[..l.IndexOf(' ', StringComparison.Ordinal)]));
        Assert.All(lines[1..], l => Assert.Equal("10.0.0.", l.Substring(addressColumn, 7)));
        Assert.All(lines[1..], l => Assert.Matches("^(ACTIVE|JOINING) ", l[stateColumn..]));
        Assert.All(lines, l => Assert.Equal(l.TrimEnd(), l));
        Assert.EndsWith("*", lines[2], StringComparison.Ordinal);
        Assert.Contains("ago", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Json_PrintsTheApiAnswer()
    {
        await using var server = await StartAsync();

        var (code, stdout, _) = await RunAsync("admin", "ring", "--json", "--url", server.Server.LocalUrl.ToString(), "--token-file", TokenFile());

        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("gw-b", json.RootElement.GetProperty("self_id").GetString());
    }

    [Fact]
    public async Task Leave_PrintsTheNewStateAndExitsZero()
    {
        var ring = new FakeRing();
        await using var server = await StartAsync(AdminTestServer.FullSources(ring: ring));

        var (code, stdout, stderr) = await RunAsync("admin", "leave", $"--url={server.Server.LocalUrl}", $"--token-file={TokenFile()}");

        Assert.True(code == 0, stderr);
        Assert.Contains("gw-b is LEAVING", stdout, StringComparison.Ordinal);
        Assert.Equal(1, ring.LeaveCalls);
    }

    [Theory]
    [InlineData("ring", "no ring is configured")]
    [InlineData("ha", "no ha_tracker processor runs")]
    [InlineData("dedup", "no dedupe processor runs")]
    [InlineData("exporters", "no exporter runs")]
    [InlineData("instances", "no instance tracker runs")]
    public async Task Command_WithComponentAbsent_SaysSoAndExitsZero(string command, string expected)
    {
        await using var server = await StartAsync(AdminTestServer.EmptySources());

        var (code, stdout, _) = await RunAsync("admin", command, "--url", server.Server.LocalUrl.ToString(), "--token-file", TokenFile());

        Assert.Equal(0, code);
        Assert.Contains(expected, stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Command_WithoutToken_ExitsOneNamingUrlAndStatus()
    {
        await using var server = await StartAsync();

        var (code, stdout, stderr) = await RunAsync("admin", "status", "--url", server.Server.LocalUrl.ToString());

        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains($"GET {server.Server.LocalUrl}api/v1/status: 401 Unauthorized", stderr, StringComparison.Ordinal);
        Assert.Contains("--token-file", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Command_WithWrongToken_ExitsOneAndNeverPrintsTheToken()
    {
        await using var server = await StartAsync();
        var wrong = _dir.File("wrong-token");
        await File.WriteAllTextAsync(wrong, "wrong-token-value-123\n");

        var (code, stdout, stderr) = await RunAsync("admin", "ring", "--url", server.Server.LocalUrl.ToString(), "--token-file", wrong);

        Assert.Equal(1, code);
        Assert.Contains("401", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-token-value-123", stderr + stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(Token, stderr + stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Command_WithNothingListening_ExitsOneNamingTheUrl()
    {
        var url = $"http://127.0.0.1:{FreePort.Get()}/";

        var (code, _, stderr) = await RunAsync("admin", "instances", "--url", url, "--token-file", TokenFile());

        Assert.Equal(1, code);
        Assert.Contains($"GET {url}api/v1/instances failed", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(Token, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Url_WithUserInfo_IsNotPrinted()
    {
        var port = FreePort.Get();

        var (code, _, stderr) = await RunAsync("admin", "status", "--url", $"http://someone:pa55word@127.0.0.1:{port}/?token=abc");

        Assert.Equal(1, code);
        Assert.Contains($"http://127.0.0.1:{port}/api/v1/status", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("pa55word", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("token=abc", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("admin")]
    [InlineData("admin", "nodes")]
    [InlineData("admin", "ring", "extra")]
    [InlineData("admin", "ring", "--verbose")]
    [InlineData("admin", "ring", "--url")]
    [InlineData("admin", "ring", "--url", "ftp://gateway:8080")]
    [InlineData("admin", "ring", "--timeout", "soon")]
    [InlineData("admin", "ring", "--token-file", "/nonexistent/token")]
    public async Task Command_WithBadUsage_ExitsTwoWithUsage(params string[] args)
    {
        var (code, stdout, stderr) = await RunAsync(args);

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("admin: ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_PrintsUsageAndExitsZero()
    {
        var (code, stdout, _) = await RunAsync("admin", "--help");

        Assert.Equal(0, code);
        Assert.Contains("usage: pgotel-gateway admin status|ring|ha|dedup|exporters|instances", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0.24, "0.2s")]
    [InlineData(9.96, "10.0s")]
    [InlineData(42, "42s")]
    [InlineData(185, "3m05s")]
    [InlineData(3725.5, "1h02m")]
    [InlineData(3 * 86400 + 4 * 3600 + 99, "3d04h")]
    public void Age_IsShortAndReadable(double seconds, string expected) => Assert.Equal(expected, AdminCli.Age(seconds));

    private string TokenFile()
    {
        var path = _dir.File("token");
        File.WriteAllText(path, Token + "\n");
        return path;
    }

    private static Task<AdminTestServer> StartAsync(AdminSources? sources = null)
    {
        if (sources is null)
        {
            var tracker = new InstanceTracker();
            tracker.Observe(TestRequests.Postgres("pg-orders", "10.1.0.5:5432", "primary", "agent-1", 3, 4));
            tracker.Observe(TestRequests.Postgres("pg-orders", "10.1.0.5:5432", "primary", "agent-2", 3, 4));
            sources = AdminTestServer.FullSources(tracker);
        }

        return AdminTestServer.StartAsync(sources, Token);
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        using var cts = new CancellationTokenSource(TestTimeouts.Short);
        var code = await AdminCli.RunAsync(CommandLine.Parse(args), stdout, stderr, cts.Token).WaitAsync(TestTimeouts.Short);
        return (code, stdout.ToString(), stderr.ToString());
    }
}

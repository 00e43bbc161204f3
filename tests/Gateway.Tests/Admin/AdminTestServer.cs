using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Tests.Common;

namespace PgOtelGateway.Gateway.Tests.Admin;

/// <summary>An <see cref="AdminServer"/> on a loopback port with the given sources, and a client for it.</summary>
internal sealed class AdminTestServer : IAsyncDisposable
{
    private AdminTestServer(AdminServer server, string token)
    {
        Server = server;
        Token = token;
        Client = new HttpClient { BaseAddress = server.LocalUrl, Timeout = TestTimeouts.Short };
    }

    public AdminServer Server { get; }

    public string Token { get; }

    public HttpClient Client { get; }

    public static async Task<AdminTestServer> StartAsync(AdminSources sources, string token = "")
    {
        var server = new AdminServer(new AdminOptions { Endpoint = "127.0.0.1:0", Token = token }, sources, NullLoggerFactory.Instance);
        using var cts = new CancellationTokenSource(TestTimeouts.Short);
        await server.StartAsync(cts.Token);
        return new AdminTestServer(server, token);
    }

    public static AdminSources FullSources(InstanceTracker? instances = null, FakeRing? ring = null) => new()
    {
        Pipeline = new FakePipelineStatus(),
        Ring = ring ?? new FakeRing(),
        Ha = [new FakeHa()],
        Dedup = [new FakeDedup()],
        Exporters = [new FakeExporter("prometheusremotewrite", "HTTP 503 from http://prometheus:9090/api/v1/write"), new FakeExporter("parquet")],
        Instances = instances ?? new InstanceTracker(),
        ConfigSource = "/etc/pgotel/gateway.yaml",
        RedactedConfigYaml = "gateway:\n  id: gw-test\n",
    };

    public static AdminSources EmptySources() => new() { Pipeline = new FakePipelineStatus() };

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? token = null, Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if ((token ?? Token) is { Length: > 0 } t)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", t);
        }

        configure?.Invoke(request);
        using var cts = new CancellationTokenSource(TestTimeouts.Short);
        return await Client.SendAsync(request, cts.Token);
    }

    public async Task<JsonElement> GetJsonAsync(string path)
    {
        using var response = await SendAsync(HttpMethod.Get, path);
        var body = await response.Content.ReadAsStringAsync();
        Xunit.Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
        Xunit.Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(body);
        return document.RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        using var cts = new CancellationTokenSource(TestTimeouts.Short);
        await Server.StopAsync(cts.Token);
        await Server.DisposeAsync();
    }
}

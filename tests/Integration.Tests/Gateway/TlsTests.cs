using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using PgOtelGateway.Shared.Security;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// The receiver's TLS and mTLS (<c>receivers.otlp.tls</c>) with certificates from PEM files, and the agent's
/// <c>otlp</c> exporter towards it: a real agent scraping the real PostgreSQL reaches Prometheus over mTLS; clients
/// without a certificate, with one from another CA, or in plain text get nothing in.
/// </summary>
public sealed class TlsTests
{
    private static PostgresEndpoints Pg => TestEnvironment.Postgres;

    [Fact]
    public async Task Receive_MutualTls_AgentWithClientCertificateDeliversAndOtherClientsAreRefused()
    {
        using var pki = new TestCertificates();
        await using var gateway = await TestGateway.StartAsync(receiverExtra: $"""
            tls:
              cert_file: {pki.ServerCertFile}
              key_file: {pki.ServerKeyFile}
              client_ca_file: {pki.CaFile}
            """);

        // The agent, with the CA to trust and its own certificate, scrapes PostgreSQL into the gateway.
        var cluster = UniqueName.For();
        using var dir = new TempDirectory();
        var config = dir.File("agent.yaml");
        await File.WriteAllTextAsync(config, $"""
            receivers:
              postgresql:
                endpoint: {Pg.Host}:{Pg.Port}
                username: {Pg.MonitorUser}
                password: {Pg.MonitorPassword}
                databases: [postgres]
                collection_interval: 2s
                initial_delay: 0s
                timeout: 1s
                tls:
                  mode: disable
                resource:
                  cluster: {cluster}
            exporters:
              otlp:
                endpoint: 127.0.0.1:{gateway.GrpcPort}
                tls:
                  insecure: false
                  ca_file: {pki.CaFile}
                  cert_file: {pki.ClientCertFile}
                  key_file: {pki.ClientKeyFile}
            service:
              pipelines:
                metrics:
                  receivers: [postgresql]
                  exporters: [otlp]
              telemetry:
                logs:
                  level: warn
                metrics:
                  address: 127.0.0.1:{FreePort.Get()}
            """);
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "PgOtelGateway.Agent.dll"));
        info.ArgumentList.Add("--config");
        info.ArgumentList.Add(config);
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var agent = Process.Start(info)!;
        agent.OutputDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        agent.ErrorDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        agent.BeginOutputReadLine();
        agent.BeginErrorReadLine();
        try
        {
            using var prometheus = new PrometheusClient();
            await prometheus.WaitForAsync($"target_info{{job=\"postgresql\",db_cluster=\"{cluster}\"}}", r => r.Count == 1);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException(ex.Message + "; the agent said:\n" + string.Join('\n', output.TakeLast(20)), ex);
        }
        finally
        {
            agent.Kill(entireProcessTree: true);
            await agent.WaitForExitAsync().WaitAsync(TestTimeouts.Short);
        }

        // OTLP/HTTP on the same terms: the client certificate gets in, nothing else does.
        var metric = UniqueName.For();
        var body = RawOtlpClient.Request(metric, 2).ToByteArray();
        Assert.Equal(HttpStatusCode.OK, await PostAsync(gateway.HttpPort, body, pki.CaFile, pki.ClientCertFile, pki.ClientKeyFile));
        await Assert.ThrowsAsync<HttpRequestException>(() => PostAsync(gateway.HttpPort, body, pki.CaFile, null, null));
        await Assert.ThrowsAsync<HttpRequestException>(() => PostAsync(gateway.HttpPort, body, pki.CaFile, pki.RogueCertFile, pki.RogueKeyFile));
        await Assert.ThrowsAsync<HttpRequestException>(() => RawOtlpClient.HttpAsync(gateway.HttpPort, body));

        using (var prometheus = new PrometheusClient())
        {
            await prometheus.WaitForAsync(metric, r => r.Count == 2);
        }

        var counts = await gateway.ExporterCountsAsync();
        Assert.Equal(0, counts.Dropped);
    }

    [Fact]
    public async Task Receive_ServerTls_ClientsTrustingTheCaGetInOthersFailValidation()
    {
        using var pki = new TestCertificates();
        await using var gateway = await TestGateway.StartAsync(receiverExtra: $"""
            tls:
              cert_file: {pki.ServerCertFile}
              key_file: {pki.ServerKeyFile}
            """);

        var body = RawOtlpClient.Request(UniqueName.For(), 1).ToByteArray();
        Assert.Equal(HttpStatusCode.OK, await PostAsync(gateway.HttpPort, body, pki.CaFile, null, null));

        // A client that trusts only the system's CAs refuses the gateway's certificate.
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => PostAsync(gateway.HttpPort, body, null, null, null));
        Assert.Contains("SSL", refused.ToString(), StringComparison.OrdinalIgnoreCase);
    }

    private static async Task<HttpStatusCode> PostAsync(int port, byte[] body, string? caFile, string? certFile, string? keyFile)
    {
        // The clients' own TLS set-up (no CA file: the system's trust store).
        using var handler = new SocketsHttpHandler();
        TlsClientSetup.Apply(handler.SslOptions, caFile ?? "", certFile ?? "", keyFile ?? "", serverName: "", insecureSkipVerify: false);

        using var http = new HttpClient(handler) { Timeout = TestTimeouts.Short };
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        using var response = await http.PostAsync(new Uri($"https://127.0.0.1:{port}/v1/metrics"), content);
        return response.StatusCode;
    }
}

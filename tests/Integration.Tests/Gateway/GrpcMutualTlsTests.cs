using Grpc.Core;
using Grpc.Net.Client;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Security;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// The receiver's mTLS over OTLP/gRPC with Grpc.Net.Client: the client certificate from the configured CA gets an
/// Export through to Prometheus; no certificate, a certificate from another CA, or plain text gets none.
/// </summary>
public sealed class GrpcMutualTlsTests
{
    [Fact]
    public async Task Export_OverGrpcWithMutualTls_OnlyTheClientCertificateFromTheConfiguredCaSucceeds()
    {
        using var pki = new TestCertificates();
        await using var gateway = await TestGateway.StartAsync(receiverExtra: $"""
            tls:
              cert_file: {pki.ServerCertFile}
              key_file: {pki.ServerKeyFile}
              client_ca_file: {pki.CaFile}
            """);
        var metric = UniqueName.For("grpc_mtls");

        // Refused first, so nothing they sent could be mistaken for the accepted request's points.
        await AssertRefusedAsync(Secure(gateway.GrpcPort, pki.CaFile, null, null), metric);
        await AssertRefusedAsync(Secure(gateway.GrpcPort, pki.CaFile, pki.RogueCertFile, pki.RogueKeyFile), metric);
        await AssertRefusedAsync(GrpcChannel.ForAddress($"http://127.0.0.1:{gateway.GrpcPort}"), metric);

        using (var channel = Secure(gateway.GrpcPort, pki.CaFile, pki.ClientCertFile, pki.ClientKeyFile))
        {
            var client = new MetricsService.MetricsServiceClient(channel);
            var reply = await client.ExportAsync(RawOtlpClient.Request(metric, 2), deadline: DateTime.UtcNow + TestTimeouts.Short);
            Assert.Equal(0, reply.PartialSuccess?.RejectedDataPoints ?? 0);
        }

        using var prometheus = new PrometheusClient();
        var series = await prometheus.WaitForAsync(metric, r => r.Count == 2);
        Assert.Equal(2, series.Count);
        Assert.Equal(0, (await gateway.ExporterCountsAsync()).Dropped);
    }

    private static async Task AssertRefusedAsync(GrpcChannel channel, string metric)
    {
        using (channel)
        {
            var client = new MetricsService.MetricsServiceClient(channel);
            var refused = await Assert.ThrowsAsync<RpcException>(async () =>
                await client.ExportAsync(RawOtlpClient.Request(metric, 5, (p, _) => p.AsDouble = -1), deadline: DateTime.UtcNow + TestTimeouts.Short));
            // The handshake fails (or the plain-text HTTP/2 preface is not TLS): the call never reaches the service.
            Assert.True(refused.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown, refused.ToString());
        }
    }

    private static GrpcChannel Secure(int port, string caFile, string? certFile, string? keyFile)
    {
        // The clients' own TLS set-up (the agent's otlp exporter and the ring use it too).
        var handler = new SocketsHttpHandler();
        TlsClientSetup.Apply(handler.SslOptions, caFile, certFile ?? "", keyFile ?? "", serverName: "", insecureSkipVerify: false);
        return GrpcChannel.ForAddress($"https://127.0.0.1:{port}", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }
}

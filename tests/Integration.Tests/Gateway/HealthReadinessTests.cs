using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Gateway.Hosting;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// <c>extensions.health_check</c>: <c>/health</c> answers as soon as the listeners are up, <c>/ready</c> only once the
/// pipeline runs. A ring member whose first probe of a peer hangs (a socket that accepts and never speaks) holds
/// the start at that point for as long as the test keeps the socket, so "not ready" is observed without racing.
/// </summary>
public sealed class HealthReadinessTests
{
    [Fact]
    public async Task Ready_WhileStartIsHeldOnTheFirstRingRound_Is503AndHealthIs200_ThenReadyIs200()
    {
        using var silentPeer = new TcpListener(IPAddress.Loopback, 0);
        silentPeer.Start();
        var held = new List<Socket>();
        using var accepting = new CancellationTokenSource();
        var acceptLoop = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var socket = await silentPeer.AcceptSocketAsync(accepting.Token);
                    lock (held)
                    {
                        held.Add(socket);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        });

        using var queue = new TempDirectory("pgotel-gw-queue");
        int grpc = FreePort.Get(), http = FreePort.Get(), health = FreePort.Get(), metrics = FreePort.Get();
        var peerPort = ((IPEndPoint)silentPeer.LocalEndpoint).Port;
        var yaml = $"""
            receivers:
              otlp:
                protocols:
                  grpc:
                    endpoint: 127.0.0.1:{grpc}
                  http:
                    endpoint: 127.0.0.1:{http}
            processors:
              batch:
                timeout: 50ms
            exporters:
              prometheusremotewrite:
                endpoint: {new Uri(TestEnvironment.PrometheusUrl, "api/v1/write")}
            extensions:
              health_check:
                endpoint: 127.0.0.1:{health}
            gateway:
              id: ready-a
              shutdown_timeout: 10s
              queue:
                directory: {queue.Path}
              ring:
                self: ready-a
                forward_timeout: 25s
                leave_grace: 0s
                members:
                  static: [ready-a=127.0.0.1:{grpc}, ready-silent=127.0.0.1:{peerPort}]
            service:
              extensions: [health_check]
              pipelines:
                metrics:
                  receivers: [otlp]
                  processors: [batch]
                  exporters: [prometheusremotewrite]
              telemetry:
                logs:
                  level: warn
                metrics:
                  address: 127.0.0.1:{metrics}
            """;
        var host = GatewayHost.Create(ConfigLoader.Load(yaml, GatewayComponents.CreateRegistry()), logging => logging.SetMinimumLevel(LogLevel.Warning));
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var starting = host.StartAsync(CancellationToken.None);
        try
        {
            // The health listener comes up while the first ring round still waits for the silent peer.
            await TestTimeouts.WaitUntilAsync(
                async () => await StatusAsync(client, health, "/health") == HttpStatusCode.OK, TestTimeouts.Short, "/health answers");
            await TestTimeouts.WaitUntilAsync(() => Task.FromResult(Count(held) > 0), TestTimeouts.Short, "the ring probes the silent peer");
            Assert.False(starting.IsCompleted, "the start did not wait for the first ring round");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, await StatusAsync(client, health, "/ready"));
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, health, "/health"));
            Assert.False(host.Ready);

            // Let the probe fail (the peer hangs up): the round ends, the pipeline runs, and the gateway is ready.
            await accepting.CancelAsync();
            silentPeer.Stop();
            lock (held)
            {
                foreach (var socket in held)
                {
                    socket.Close(0);
                }
            }

            await starting.WaitAsync(TestTimeouts.Short);
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, health, "/ready"));
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, health, "/health"));
        }
        finally
        {
            await accepting.CancelAsync();
            await acceptLoop.WaitAsync(TestTimeouts.Short);
            await starting.WaitAsync(TestTimeouts.Short).ContinueWith(_ => { }, TaskScheduler.Default);
            await host.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Pipeline);
            await host.DisposeAsync();
        }
    }

    private static int Count(List<Socket> sockets)
    {
        lock (sockets)
        {
            return sockets.Count;
        }
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient client, int port, string path)
    {
        try
        {
            using var response = await client.GetAsync(new Uri($"http://127.0.0.1:{port}{path}"));
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return 0;
        }
    }
}

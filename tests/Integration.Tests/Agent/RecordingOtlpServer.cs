using System.Net;
using Grpc.Core;
using Grpc.Net.Compression;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Compression;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>
/// A bare OTLP/gRPC metrics server on a chosen loopback port that records every request in arrival order: a
/// stand-in gateway that a test can start late (after an agent has been sending into the void) on the same port.
/// </summary>
internal sealed class RecordingOtlpServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RecordingOtlpServer(WebApplication app, Recorder recorder)
    {
        _app = app;
        Received = recorder;
    }

    public Recorder Received { get; }

    public static async Task<RecordingOtlpServer> StartAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc(o =>
        {
            o.CompressionProviders = [new GzipCompressionProvider(System.IO.Compression.CompressionLevel.Fastest), new ZstdGrpcCompressionProvider()];
            o.MaxReceiveMessageSize = 64 << 20;
        });
        var recorder = new Recorder();
        builder.Services.AddSingleton(recorder);
        var app = builder.Build();
        app.MapGrpcService<RecordingService>();
        await app.StartAsync();
        return new RecordingOtlpServer(app, recorder);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    internal sealed class Recorder
    {
        private readonly List<ExportMetricsServiceRequest> _requests = [];

        public void Add(ExportMetricsServiceRequest request)
        {
            lock (_requests)
            {
                _requests.Add(request);
            }
        }

        public List<ExportMetricsServiceRequest> Snapshot()
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    private sealed class RecordingService(Recorder recorder) : MetricsService.MetricsServiceBase
    {
        public override Task<ExportMetricsServiceResponse> Export(ExportMetricsServiceRequest request, ServerCallContext context)
        {
            recorder.Add(request);
            return Task.FromResult(new ExportMetricsServiceResponse());
        }
    }
}

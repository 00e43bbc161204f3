using System.Net;
using Grpc.Core;
using Grpc.Net.Compression;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
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
        private readonly List<(DateTime At, Metadata Headers, string? Encoding)> _calls = [];

        /// <summary>
        /// What to answer to call number N (from 1); throw an RpcException to fail it. Null: success. Failed calls
        /// are counted in <see cref="Calls"/> but their requests are not recorded.
        /// </summary>
        public Func<int, ExportMetricsServiceResponse?>? Behaviour { get; set; }

        /// <summary>Every call with its arrival time and request headers.</summary>
        public List<(DateTime At, Metadata Headers, string? Encoding)> Calls
        {
            get
            {
                lock (_requests)
                {
                    return [.. _calls];
                }
            }
        }

        public ExportMetricsServiceResponse Handle(ExportMetricsServiceRequest request, ServerCallContext context)
        {
            int call;
            lock (_requests)
            {
                // grpc-encoding is not among the call's metadata; read it from the HTTP/2 request.
                var encoding = context.GetHttpContext().Request.Headers["grpc-encoding"].ToString();
                _calls.Add((DateTime.UtcNow, context.RequestHeaders, encoding.Length > 0 ? encoding : null));
                call = _calls.Count;
            }

            var response = Behaviour?.Invoke(call) ?? new ExportMetricsServiceResponse();
            Add(request);
            return response;
        }

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
            return Task.FromResult(recorder.Handle(request, context));
        }
    }
}

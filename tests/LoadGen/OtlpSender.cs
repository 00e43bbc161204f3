using Grpc.Core;
using Grpc.Net.Client;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Compression;

namespace PgOtelGateway.LoadGen;

/// <summary>OTLP/gRPC <c>MetricsService/Export</c>, zstd or gzip compressed.</summary>
internal sealed class OtlpSender : ILoadSender
{
    private readonly GrpcChannel _channel;
    private readonly MetricsService.MetricsServiceClient _client;
    private readonly Metadata _headers = [];
    private string? _lastError;

    public OtlpSender(LoadOptions o)
    {
        _channel = GrpcChannel.ForAddress(o.Endpoint, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true },
            CompressionProviders = [new ZstdGrpcCompressionProvider(), new Grpc.Net.Compression.GzipCompressionProvider(System.IO.Compression.CompressionLevel.Fastest)],
        });
        _client = new MetricsService.MetricsServiceClient(_channel);
        if (o.Compression != "none")
        {
            _headers.Add("grpc-internal-encoding-request", o.Compression);
        }
    }

    public string? LastError => _lastError;

    public async Task<SendOutcome> SendAsync(ExportMetricsServiceRequest request)
    {
        try
        {
            var response = await _client.ExportAsync(request, _headers, DateTime.UtcNow.AddSeconds(30)).ConfigureAwait(false);
            return new SendOutcome(false, response.PartialSuccess?.RejectedDataPoints ?? 0);
        }
        catch (RpcException e)
        {
            _lastError = $"{e.StatusCode}: {e.Status.Detail}";
            return new SendOutcome(true, 0);
        }
    }

    public void Dispose() => _channel.Dispose();
}

using System.Net.Http.Headers;
using Google.Protobuf;
using PgOtelGateway.Shared.RemoteWrite.Proto;
using PgOtelGateway.Shared.Translation;

namespace PgOtelGateway.LoadGen;

/// <summary>
/// Prometheus remote-write 1.0: the OTLP request the other mode would send, translated with the gateway's own
/// rules (default exporter options: target_info on, no resource attributes copied), protobuf
/// <c>WriteRequest</c>, snappy block format, <c>Content-Encoding: snappy</c>,
/// <c>Content-Type: application/x-protobuf</c>, <c>X-Prometheus-Remote-Write-Version: 0.1.0</c>.
/// Any 2xx is accepted; anything else refuses the whole request.
/// </summary>
internal sealed class RemoteWriteSender : ILoadSender
{
    private static readonly MediaTypeHeaderValue ProtobufType = new("application/x-protobuf");
    private readonly HttpClient _http;
    private readonly Uri _endpoint;
    private readonly TranslationOptions _translation = new();
    private string? _lastError;

    public RemoteWriteSender(LoadOptions o)
    {
        _endpoint = new Uri(o.Endpoint);
        _http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(1, o.Concurrency), PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("pgotel-loadgen/1.0");
        _http.DefaultRequestHeaders.Add("X-Prometheus-Remote-Write-Version", "0.1.0");
    }

    public string? LastError => _lastError;

    /// <summary>The remote-write body for an OTLP request (also what <c>--describe</c> counts).</summary>
    public static WriteRequest ToWriteRequest(OpenTelemetry.Proto.Collector.Metrics.V1.ExportMetricsServiceRequest request, TranslationOptions options)
    {
        var write = new WriteRequest();
        write.Timeseries.AddRange(OtlpToPrometheus.Translate(request, options).Series);
        return write;
    }

    public async Task<SendOutcome> SendAsync(OpenTelemetry.Proto.Collector.Metrics.V1.ExportMetricsServiceRequest request)
    {
        var body = Snappier.Snappy.CompressToArray(ToWriteRequest(request, _translation).ToByteArray());
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = ProtobufType;
        content.Headers.ContentEncoding.Add("snappy");
        try
        {
            using var response = await _http.PostAsync(_endpoint, content).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return new SendOutcome(false, 0);
            }

            var text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
            _lastError = $"HTTP {(int)response.StatusCode}: {text[..Math.Min(200, text.Length)]}";
            return new SendOutcome(true, 0);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            _lastError = e.Message;
            return new SendOutcome(true, 0);
        }
    }

    public void Dispose() => _http.Dispose();
}

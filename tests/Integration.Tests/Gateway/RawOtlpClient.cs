using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Google.Rpc;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>What a gateway answered, normalised across the two transports.</summary>
internal sealed record OtlpAnswer(int Code, string Message, TimeSpan? RetryAfter, long Rejected)
{
    public override string ToString() => $"code {Code}, retry {RetryAfter}, rejected {Rejected}: {Message}";
}

/// <summary>
/// Sends exact bytes to a gateway over OTLP/gRPC (HTTP/2 with gRPC framing, any compression flag) or OTLP/HTTP,
/// so tests can send what a well-behaved client never would.
/// </summary>
internal static class RawOtlpClient
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler()) { Timeout = TimeSpan.FromSeconds(60) };

    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    public static byte[] Zstd(byte[] data)
    {
        using var compressor = new ZstdSharp.Compressor(19);
        return compressor.Wrap(data).ToArray();
    }

    /// <summary>A compressed body of <paramref name="bytes"/> zeros: tiny on the wire, huge once inflated.</summary>
    public static byte[] Bomb(string encoding, int bytes) => encoding == "gzip" ? Gzip(new byte[bytes]) : Zstd(new byte[bytes]);

    /// <summary>
    /// One Export. <paramref name="from"/> binds the client to another loopback address (any of 127.0.0.0/8 works on
    /// Linux), so a test can be several clients; <paramref name="header"/> adds one request header.
    /// </summary>
    public static async Task<OtlpAnswer> GrpcAsync(int port, byte[] message, string? encoding = null, string? token = null,
        IPAddress? from = null, (string Name, string Value)? header = null)
    {
        var frame = new byte[5 + message.Length];
        frame[0] = encoding is null ? (byte)0 : (byte)1;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), message.Length);
        message.CopyTo(frame, 5);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{port}/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(frame),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (encoding is not null)
        {
            request.Headers.TryAddWithoutValidation("grpc-encoding", encoding);
        }

        if (token is not null)
        {
            request.Headers.TryAddWithoutValidation("authorization", "Bearer " + token);
        }

        if (header is { } extra)
        {
            request.Headers.TryAddWithoutValidation(extra.Name, extra.Value);
        }

        using var bound = from is null ? null : BoundClient(from);
        using var response = await (bound ?? Http).SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();
        string? Header(string name) =>
            response.TrailingHeaders.TryGetValues(name, out var t) ? t.First() :
            response.Headers.TryGetValues(name, out var h) ? h.First() : null;

        var code = int.Parse(Header("grpc-status") ?? "-1", System.Globalization.CultureInfo.InvariantCulture);
        var text = Uri.UnescapeDataString(Header("grpc-message") ?? "");
        TimeSpan? retry = null;
        if (Header("grpc-status-details-bin") is { } details)
        {
            retry = RetryDelay(Google.Rpc.Status.Parser.ParseFrom(Convert.FromBase64String(Pad(details))));
        }

        long rejected = 0;
        if (code == 0 && body.Length >= 5)
        {
            var reply = ExportMetricsServiceResponse.Parser.ParseFrom(body.AsSpan(5).ToArray());
            rejected = reply.PartialSuccess?.RejectedDataPoints ?? 0;
            text = reply.PartialSuccess?.ErrorMessage ?? "";
        }

        return new OtlpAnswer(code, text, retry, rejected);
    }

    public static async Task<OtlpAnswer> HttpAsync(int port, byte[] body, string contentType = "application/x-protobuf", string? encoding = null, string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{port}/v1/metrics") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (encoding is not null)
        {
            request.Content.Headers.ContentEncoding.Add(encoding);
        }

        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await Http.SendAsync(request);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        var json = response.Content.Headers.ContentType?.MediaType == "application/json";
        TimeSpan? retry = response.Headers.RetryAfter?.Delta;
        var code = (int)response.StatusCode;
        if (code == 200)
        {
            var reply = json ? PgOtelGateway.Shared.Otlp.OtlpJson.ParseResponse(System.Text.Encoding.UTF8.GetString(bytes)) : ExportMetricsServiceResponse.Parser.ParseFrom(bytes);
            return new OtlpAnswer(code, reply.PartialSuccess?.ErrorMessage ?? "", retry, reply.PartialSuccess?.RejectedDataPoints ?? 0);
        }

        var status = json
            ? new JsonParser(JsonParser.Settings.Default.WithIgnoreUnknownFields(true).WithTypeRegistry(Google.Protobuf.Reflection.TypeRegistry.FromMessages(RetryInfo.Descriptor))).Parse<Google.Rpc.Status>(System.Text.Encoding.UTF8.GetString(bytes))
            : Google.Rpc.Status.Parser.ParseFrom(bytes);
        return new OtlpAnswer(code, status.Message, retry ?? RetryDelay(status), 0);
    }

    private static HttpClient BoundClient(IPAddress from) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(from, 0));
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    }) { Timeout = TimeSpan.FromSeconds(60) };

    private static TimeSpan? RetryDelay(Google.Rpc.Status status)
    {
        foreach (var detail in status.Details)
        {
            if (detail.TryUnpack<RetryInfo>(out var info))
            {
                return info.RetryDelay.ToTimeSpan();
            }
        }

        return null;
    }

    private static string Pad(string base64) => base64.Length % 4 == 0 ? base64 : base64 + new string('=', 4 - (base64.Length % 4));

    /// <summary>A small valid request: <paramref name="points"/> gauge points of one metric.</summary>
    public static ExportMetricsServiceRequest Request(string metric, int points = 3, Action<NumberDataPoint, int>? shape = null)
    {
        var gauge = new Gauge();
        var now = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000;
        for (var i = 0; i < points; i++)
        {
            var p = new NumberDataPoint { AsDouble = i, TimeUnixNano = now };
            p.Attributes.Add(new KeyValue { Key = "i", Value = new AnyValue { StringValue = i.ToString(System.Globalization.CultureInfo.InvariantCulture) } });
            shape?.Invoke(p, i);
            gauge.DataPoints.Add(p);
        }

        var request = new ExportMetricsServiceRequest();
        var rm = new ResourceMetrics { Resource = new Resource() };
        rm.Resource.Attributes.Add(new KeyValue { Key = "service.name", Value = new AnyValue { StringValue = "raw-client" } });
        // Each test's series (target_info too) are its own, whatever other tests write at the same time.
        rm.Resource.Attributes.Add(new KeyValue { Key = "service.instance.id", Value = new AnyValue { StringValue = metric } });
        var sm = new ScopeMetrics();
        sm.Metrics.Add(new Metric { Name = metric, Gauge = gauge });
        rm.ScopeMetrics.Add(sm);
        request.ResourceMetrics.Add(rm);
        return request;
    }
}

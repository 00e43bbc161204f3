using System.IO.Compression;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Compression;
using PgOtelGateway.Shared.Otlp;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Gateway.Ingest;

/// <summary>
/// OTLP/HTTP <c>POST /v1/metrics</c>: protobuf or JSON bodies, gzip or zstd encoded, the size limit applied to the
/// decompressed body. Errors carry a google.rpc.Status in the request's encoding.
/// </summary>
internal static class OtlpHttpEndpoint
{
    private sealed class TooLargeException(long limit) : Exception($"the request is larger than {limit} bytes after decompression");

    public static async Task HandleAsync(HttpContext context, OtlpIngestRegistry registry)
    {
        var ingest = registry.ForHttpPort(context.Connection.LocalPort);
        if (ingest is null && !registry.IsOpen)
        {
            context.Response.Headers.RetryAfter = "1";
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return;
        }

        if (ingest is null)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        var mediaType = (context.Request.ContentType ?? "").Split(';')[0].Trim().ToLowerInvariant();
        var json = mediaType == "application/json";
        if (!json && mediaType != "application/x-protobuf")
        {
            ingest.Refused("unsupported_media_type", 0);
            await WriteStatusAsync(context, StatusCodes.Status415UnsupportedMediaType, json: false,
                StatusCode.InvalidArgument, $"unsupported Content-Type '{context.Request.ContentType}'; use application/x-protobuf or application/json").ConfigureAwait(false);
            return;
        }

        var client = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        switch (ingest.Admit(context.Request.Headers.Authorization, client, out var retryAfter))
        {
            case AdmissionResult.Unauthenticated:
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await WriteStatusAsync(context, StatusCodes.Status401Unauthorized, json, StatusCode.Unauthenticated, "a valid bearer token is required").ConfigureAwait(false);
                return;
            case AdmissionResult.RateLimited:
                context.Response.Headers.RetryAfter = ErrorDetails.RetryAfterSeconds(retryAfter).ToString(System.Globalization.CultureInfo.InvariantCulture);
                await WriteStatusAsync(context, StatusCodes.Status429TooManyRequests, json, StatusCode.ResourceExhausted, "rate limit exceeded for this client", retryAfter).ConfigureAwait(false);
                return;
        }

        byte[] body;
        try
        {
            body = await ReadBodyAsync(context, ingest.MaxRequestBytes).ConfigureAwait(false);
        }
        catch (TooLargeException ex)
        {
            ingest.Refused("too_large", 0);
            await WriteStatusAsync(context, StatusCodes.Status413PayloadTooLarge, json, StatusCode.ResourceExhausted, ex.Message).ConfigureAwait(false);
            return;
        }
        catch (NotSupportedException ex)
        {
            ingest.Refused("unsupported_encoding", 0);
            await WriteStatusAsync(context, StatusCodes.Status415UnsupportedMediaType, json, StatusCode.InvalidArgument, ex.Message).ConfigureAwait(false);
            return;
        }
        catch (Exception ex) when (ex is InvalidDataException or ZstdSharp.ZstdException or IOException && !context.RequestAborted.IsCancellationRequested)
        {
            ingest.Refused("malformed", 0);
            await WriteStatusAsync(context, StatusCodes.Status400BadRequest, json, StatusCode.InvalidArgument, "the body does not decompress: " + ex.Message).ConfigureAwait(false);
            return;
        }

        ExportMetricsServiceRequest request;
        try
        {
            request = json
                ? OtlpJson.ParseRequest(System.Text.Encoding.UTF8.GetString(body))
                : OtlpRequestReader.Parse(body);
        }
        catch (Exception ex) when (ex is FormatException or InvalidProtocolBufferException)
        {
            ingest.Refused("malformed", 0);
            var what = json ? ex.Message : "malformed ExportMetricsServiceRequest: " + ex.Message;
            await WriteStatusAsync(context, StatusCodes.Status400BadRequest, json, StatusCode.InvalidArgument, what).ConfigureAwait(false);
            return;
        }

        try
        {
            var forwarded = context.Request.Headers.ContainsKey(OtlpMetricsServiceBase.HopHeader);
            var response = await ingest.ExportAsync(request, "http", context.RequestAborted, forwarded).ConfigureAwait(false);
            context.Response.StatusCode = StatusCodes.Status200OK;
            await WriteMessageAsync(context, json, response).ConfigureAwait(false);
        }
        catch (PipelineRefusedException ex)
        {
            context.Response.Headers.RetryAfter = ErrorDetails.RetryAfterSeconds(ex.RetryAfter).ToString(System.Globalization.CultureInfo.InvariantCulture);
            await WriteStatusAsync(context, StatusCodes.Status503ServiceUnavailable, json, StatusCode.Unavailable, ex.Message, ex.RetryAfter).ConfigureAwait(false);
        }
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContext context, long limit)
    {
        if (context.Request.ContentLength > limit)
        {
            throw new TooLargeException(limit);
        }

        var encoding = context.Request.Headers.ContentEncoding.ToString().Trim().ToLowerInvariant();
        Stream source = encoding switch
        {
            "" or "identity" or "none" => context.Request.Body,
            "gzip" => new GZipStream(context.Request.Body, CompressionMode.Decompress, leaveOpen: true),
            "zstd" => new ZstdSharp.DecompressionStream(context.Request.Body, leaveOpen: true),
            "deflate" => new ZLibStream(context.Request.Body, CompressionMode.Decompress, leaveOpen: true),
            _ => throw new NotSupportedException($"unsupported Content-Encoding '{encoding}'; use gzip, zstd or none"),
        };

        await using var capped = new CappedStream(source, limit, static l => new TooLargeException(l));
        using var buffer = new MemoryStream();
        await capped.CopyToAsync(buffer, context.RequestAborted).ConfigureAwait(false);
        return buffer.ToArray();
    }

    private static async Task WriteStatusAsync(HttpContext context, int httpStatus, bool json, StatusCode code, string message, TimeSpan? retryAfter = null)
    {
        context.Response.StatusCode = httpStatus;
        await WriteMessageAsync(context, json, ErrorDetails.Status(code, message, retryAfter)).ConfigureAwait(false);
    }

    private static async Task WriteMessageAsync(HttpContext context, bool json, IMessage message)
    {
        if (json)
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(OtlpJson.Format(message), context.RequestAborted).ConfigureAwait(false);
        }
        else
        {
            context.Response.ContentType = "application/x-protobuf";
            await context.Response.Body.WriteAsync(message.ToByteArray(), context.RequestAborted).ConfigureAwait(false);
        }
    }
}

using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;

namespace PgOtelGateway.Gateway.Ingest;

/// <summary>google.rpc.Status bodies and RetryInfo details, as OTLP clients expect them on both transports.</summary>
internal static class ErrorDetails
{
    /// <summary>A status message, with a RetryInfo detail when <paramref name="retryAfter"/> is given.</summary>
    public static Google.Rpc.Status Status(StatusCode code, string message, TimeSpan? retryAfter = null)
    {
        var status = new Google.Rpc.Status { Code = (int)code, Message = message };
        if (retryAfter is { } delay)
        {
            status.Details.Add(Any.Pack(new RetryInfo { RetryDelay = Duration.FromTimeSpan(RoundUp(delay)) }));
        }

        return status;
    }

    /// <summary>An RpcException carrying the status and its details in <c>grpc-status-details-bin</c>.</summary>
    public static RpcException Rpc(StatusCode code, string message, TimeSpan? retryAfter = null)
    {
        var trailers = new Metadata();
        if (retryAfter is not null)
        {
            trailers.Add("grpc-status-details-bin", Status(code, message, retryAfter).ToByteArray());
        }

        return new RpcException(new Grpc.Core.Status(code, message), trailers);
    }

    /// <summary>Whole seconds for Retry-After, at least one.</summary>
    public static int RetryAfterSeconds(TimeSpan delay) => Math.Max(1, (int)Math.Ceiling(delay.TotalSeconds));

    private static TimeSpan RoundUp(TimeSpan delay) => TimeSpan.FromMilliseconds(Math.Max(1, Math.Ceiling(delay.TotalMilliseconds)));
}

using Google.Rpc;
using Grpc.Core;

namespace PgOtelGateway.Agent.Export;

/// <summary>The OTLP/gRPC retry table (DESIGN.md §6) and the server's RetryInfo hint.</summary>
internal static class OtlpRetryPolicy
{
    /// <summary>Whether a failed export may be sent again.</summary>
    public static bool IsRetryable(RpcException ex) => ex.StatusCode switch
    {
        StatusCode.Unavailable or StatusCode.Cancelled or StatusCode.DeadlineExceeded or StatusCode.Aborted
            or StatusCode.OutOfRange or StatusCode.DataLoss => true,

        // Throttling is retryable only when the server says when.
        StatusCode.ResourceExhausted => RetryDelay(ex) is not null,
        _ => false,
    };

    /// <summary>The delay from google.rpc.RetryInfo in grpc-status-details-bin, if the server sent one.</summary>
    public static TimeSpan? RetryDelay(RpcException ex)
    {
        var bytes = ex.Trailers.GetValueBytes("grpc-status-details-bin");
        if (bytes is null)
        {
            return null;
        }

        try
        {
            var status = Google.Rpc.Status.Parser.ParseFrom(bytes);
            foreach (var detail in status.Details)
            {
                if (detail.TryUnpack<RetryInfo>(out var info))
                {
                    return info.RetryDelay.ToTimeSpan();
                }
            }
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
        }

        return null;
    }
}

using Grpc.Core;
using PgOtelGateway.Gateway.Ingest;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Ingest;

/// <summary>
/// The listeners accept connections a moment before the receivers are registered by their bound ports; a request
/// in that moment must be told to retry (the agent retries UNAVAILABLE, not UNIMPLEMENTED), never be lost.
/// </summary>
public sealed class OtlpIngestRegistryTests
{
    [Fact]
    public void ForGrpcPort_BeforeOpen_IsUnavailableWithRetryInfo()
    {
        var registry = new OtlpIngestRegistry();

        var ex = Assert.Throws<RpcException>(() => registry.ForGrpcPort(4317));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Contains(ex.Trailers, t => t.Key == "grpc-status-details-bin");
        Assert.False(registry.IsOpen);
        Assert.Null(registry.ForHttpPort(4318));
    }

    [Fact]
    public void ForGrpcPort_AfterOpenOnAPortWithoutReceiver_IsUnimplemented()
    {
        var registry = new OtlpIngestRegistry();
        registry.Open();

        var ex = Assert.Throws<RpcException>(() => registry.ForGrpcPort(4317));

        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
        Assert.True(registry.IsOpen);
    }
}

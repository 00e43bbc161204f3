using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Agent.Configuration;
using PgOtelGateway.Agent.Export;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>The agent's otlp exporter against a real gRPC server that answers with chosen statuses: the OTLP retry table, RetryInfo, partial success, headers, compression.</summary>
public sealed class AgentOtlpExporterTests
{
    private static OtlpExporterOptions Options(int port, string extra = "") =>
        ConfigLoader.Load($"""
            receivers:
              hostmetrics:
                scrapers:
                  load:
            exporters:
              otlp:
                endpoint: 127.0.0.1:{port}
                timeout: 5s
                retry_on_failure:
                  initial_interval: 50ms
                  max_interval: 200ms
                  max_elapsed_time: 30s
            {extra}
            service:
              pipelines:
                metrics:
                  receivers: [hostmetrics]
                  exporters: [otlp]
            """, AgentComponents.CreateRegistry()).Exporters["otlp"].OptionsAs<OtlpExporterOptions>();

    private static ExportMetricsServiceRequest Batch(int points = 1)
    {
        var metric = new Metric { Name = "exporter.test", Gauge = new Gauge() };
        for (var i = 0; i < points; i++)
        {
            metric.Gauge.DataPoints.Add(new NumberDataPoint { AsInt = i });
        }

        var scope = new ScopeMetrics();
        scope.Metrics.Add(metric);
        var rm = new ResourceMetrics();
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    private static RpcException Failure(StatusCode code, TimeSpan? retryAfter = null)
    {
        var trailers = new Metadata();
        if (retryAfter is { } delay)
        {
            var status = new Google.Rpc.Status { Code = (int)code, Message = "test" };
            status.Details.Add(Any.Pack(new RetryInfo { RetryDelay = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(delay) }));
            trailers.Add("grpc-status-details-bin", status.ToByteArray());
        }

        return new RpcException(new Grpc.Core.Status(code, "test"), trailers);
    }

    [Theory]
    [InlineData(StatusCode.Unavailable, true)]
    [InlineData(StatusCode.Cancelled, true)]
    [InlineData(StatusCode.DeadlineExceeded, true)]
    [InlineData(StatusCode.Aborted, true)]
    [InlineData(StatusCode.OutOfRange, true)]
    [InlineData(StatusCode.DataLoss, true)]
    [InlineData(StatusCode.ResourceExhausted, false)]
    [InlineData(StatusCode.InvalidArgument, false)]
    [InlineData(StatusCode.Unauthenticated, false)]
    [InlineData(StatusCode.PermissionDenied, false)]
    [InlineData(StatusCode.Unimplemented, false)]
    [InlineData(StatusCode.Internal, false)]
    public async Task Export_FailingOnce_IsRetriedOnlyForTheRetryableCodes(StatusCode code, bool retried)
    {
        var port = FreePort.Get();
        await using var server = await RecordingOtlpServer.StartAsync(port);
        server.Received.Behaviour = call => call == 1 ? throw Failure(code) : null;
        var id = "otlp/" + UniqueName.For() + code;
        using var exporter = new OtlpExporter(id, Options(port), new AgentSpoolTests.ListLogger());

        var delivered = await exporter.ExportAsync(Batch(3), CancellationToken.None).WaitAsync(TestTimeouts.Short);

        Assert.Equal(retried, delivered);
        Assert.Equal(retried ? 2 : 1, server.Received.Calls.Count);
        Assert.Equal(retried ? 0 : 3, AgentMetrics.DroppedPoints.WithLabels(id, "not_retryable").Value);
    }

    [Fact]
    public async Task Export_ResourceExhaustedWithRetryInfo_WaitsTheServersDelay()
    {
        var port = FreePort.Get();
        await using var server = await RecordingOtlpServer.StartAsync(port);
        server.Received.Behaviour = call => call == 1 ? throw Failure(StatusCode.ResourceExhausted, TimeSpan.FromMilliseconds(1500)) : null;
        using var exporter = new OtlpExporter("otlp/" + UniqueName.For(), Options(port), new AgentSpoolTests.ListLogger());

        Assert.True(await exporter.ExportAsync(Batch(), CancellationToken.None).WaitAsync(TestTimeouts.Short));
        var calls = server.Received.Calls;
        Assert.Equal(2, calls.Count);

        // The backoff alone would have retried after ~50 ms; the server asked for 1.5 s.
        Assert.True(calls[1].At - calls[0].At >= TimeSpan.FromMilliseconds(1400), $"retried after {(calls[1].At - calls[0].At).TotalMilliseconds} ms");
    }

    [Fact]
    public async Task Export_PartialSuccess_IsLoggedCountedAndNotRetried()
    {
        var port = FreePort.Get();
        await using var server = await RecordingOtlpServer.StartAsync(port);
        server.Received.Behaviour = _ => new ExportMetricsServiceResponse
        {
            PartialSuccess = new ExportMetricsPartialSuccess { RejectedDataPoints = 2, ErrorMessage = "two points were bad" },
        };
        var id = "otlp/" + UniqueName.For();
        var logger = new AgentSpoolTests.ListLogger();
        using var exporter = new OtlpExporter(id, Options(port), logger);

        Assert.True(await exporter.ExportAsync(Batch(5), CancellationToken.None).WaitAsync(TestTimeouts.Short));
        Assert.Single(server.Received.Calls);
        Assert.Equal(2, AgentMetrics.DroppedPoints.WithLabels(id, "rejected").Value);
        Assert.Equal(3, AgentMetrics.ExportedPoints.WithLabels(id).Value);
        Assert.Contains(logger.Messages, m => m.Contains("rejected 2 points", StringComparison.Ordinal) && m.Contains("two points were bad", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("gzip", "gzip")]
    [InlineData("zstd", "zstd")]
    [InlineData("none", null)]
    public async Task Export_HeadersAndCompression_ReachTheServer(string compression, string? encoding)
    {
        var port = FreePort.Get();
        await using var server = await RecordingOtlpServer.StartAsync(port);
        using var exporter = new OtlpExporter("otlp/" + UniqueName.For(), Options(port, $"""
                compression: {compression}
                headers:
                  Authorization: Bearer s3cret
                  x-tenant: fleet-a
            """), new AgentSpoolTests.ListLogger());

        Assert.True(await exporter.ExportAsync(Batch(1000), CancellationToken.None).WaitAsync(TestTimeouts.Short));
        var call = Assert.Single(server.Received.Calls);
        Assert.Equal("Bearer s3cret", call.Headers.GetValue("authorization"));
        Assert.Equal("fleet-a", call.Headers.GetValue("x-tenant"));
        Assert.Equal(encoding, call.Encoding);
        Assert.Equal(1000, Assert.Single(server.Received.Snapshot()).ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Gauge.DataPoints.Count);
    }
}

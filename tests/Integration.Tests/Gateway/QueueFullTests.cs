using Google.Protobuf;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// A durable queue at its <c>max_size</c> (the hot tier unreachable, so nothing drains) refuses new data over the
/// wire with a retry hint, counts the refusal, and shows its size in /metrics.
/// </summary>
public sealed class QueueFullTests
{
    private const int Ok = 0, Unavailable = 14;

    [Theory]
    [InlineData("grpc")]
    [InlineData("http")]
    public async Task Export_IntoAFullQueue_IsRefusedWithARetryHint_AndCounted(string transport)
    {
        // Nothing listens on this port: the remote-write exporter cannot confirm anything, so the queue only grows.
        var nowhere = new Uri($"http://127.0.0.1:{FreePort.Get()}/api/v1/write");
        await using var gateway = await TestGateway.StartAsync(writeUrl: nowhere, shutdownTimeout: "2s", queueExtra: "max_size: 1MiB\nsegment_size: 64KiB");

        OtlpAnswer? refused = null;
        var accepted = 0;
        for (var i = 0; i < 200 && refused is null; i++)
        {
            var body = RawOtlpClient.Request(UniqueName.For("queue_full"), 2_000).ToByteArray();
            var answer = transport == "grpc" ? await RawOtlpClient.GrpcAsync(gateway.GrpcPort, body) : await RawOtlpClient.HttpAsync(gateway.HttpPort, body);
            if (answer.Code is Ok or 200)
            {
                accepted++;
            }
            else
            {
                refused = answer;
            }
        }

        Assert.True(refused is not null, $"{accepted} requests accepted into a 1 MiB queue and none refused");
        Assert.True(accepted > 0, "the queue refused the first request");
        Assert.Equal(transport == "grpc" ? Unavailable : 503, refused.Code);
        Assert.True(refused.RetryAfter > TimeSpan.Zero, $"no retry hint: {refused}");

        // Self-metrics are one registry per process, shared with other tests' gateways: counters are lower bounds, and
        // a gauge holds whichever gateway set it last, so only its presence is checked there; this gateway's own
        // queue figures come from its admin API below.
        var metrics = await gateway.SelfMetricsAsync();
        Assert.True(MetricsText.Sum(metrics, "pgotel_gateway_queue_refused_requests_total") >= 1, "the refusal is not counted");
        Assert.True(MetricsText.Sum(metrics, "pgotel_receiver_refused_requests_total") >= 1, "the receiver does not count the refusal");
        foreach (var gauge in new[] { "pgotel_gateway_queue_bytes", "pgotel_gateway_queue_records", "pgotel_gateway_queue_oldest_age_seconds", "pgotel_gateway_queue_capacity_bytes" })
        {
            Assert.Contains("\n" + gauge + "{", metrics, StringComparison.Ordinal);
        }

        // What was accepted is still held for the exporter.
        var (records, bytes, _) = await gateway.QueueOfAsync();
        Assert.True(records > 0 && bytes > 0, $"{records} records, {bytes} bytes queued after {accepted} accepted requests");
    }

}

using Google.Protobuf;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>What a gateway acknowledged is on disk: a gateway that could not deliver it stops, and its successor on the same directory delivers it.</summary>
public sealed class DurableQueueReplayTests
{
    [Fact]
    public async Task Restart_OnTheSameQueueDirectory_DeliversWhatTheStoppedGatewayAcknowledged()
    {
        using var queue = new TempDirectory("pgotel-replay");
        var metric = UniqueName.For();
        const int Points = 20;
        var started = DateTimeOffset.UtcNow;

        // First gateway: its remote-write endpoint is a closed port, so everything it acknowledges waits in the queue.
        var nowhere = new Uri($"http://127.0.0.1:{FreePort.Get()}/api/v1/write");
        await using (var first = await TestGateway.StartAsync(queueDirectory: queue.Path, writeUrl: nowhere, shutdownTimeout: "2s"))
        {
            var baseMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            for (var i = 0; i < Points; i++)
            {
                var value = i;
                var request = RawOtlpClient.Request(metric, 1, (p, _) =>
                {
                    p.AsDouble = value;
                    p.TimeUnixNano = (ulong)(baseMs + value * 100) * 1_000_000UL;
                    p.Attributes.Clear();
                });
                var answer = await RawOtlpClient.GrpcAsync(first.GrpcPort, request.ToByteArray()).WaitAsync(TestTimeouts.Short);
                Assert.True(answer.Code == 0, $"point {i} was not accepted: {answer}");
            }

            // The admin API shows the records waiting in the durable queue, and how long the oldest has waited.
            await TestTimeouts.WaitUntilAsync(async () => (await first.QueueOfAsync()).Records >= 1, TestTimeouts.Short, "records in the durable queue");
            var (records, bytes, oldest) = await first.QueueOfAsync();
            Assert.True(bytes > 0, $"{records} records, {bytes} bytes");
            Assert.NotNull(oldest);
            var metrics = await first.SelfMetricsAsync();
            Assert.Contains("pgotel_gateway_queue_records{pipeline=\"metrics\",exporter=\"prometheusremotewrite\"}", metrics, StringComparison.Ordinal);
            Assert.Contains("pgotel_gateway_queue_oldest_age_seconds", metrics, StringComparison.Ordinal);
        }

        // Its successor on the same directory, with the real Prometheus: the acknowledged points arrive, once each.
        await using var second = await TestGateway.StartAsync(queueDirectory: queue.Path);
        using var prometheus = new PrometheusClient();
        IReadOnlyList<PromSeries> series = [];
        await TestTimeouts.WaitUntilAsync(async () =>
        {
            series = await prometheus.RawSamplesAsync(metric, DateTimeOffset.UtcNow - started + TimeSpan.FromMinutes(1));
            return series.Count == 1 && series[0].Samples.Count >= Points;
        }, TestTimeouts.Pipeline, $"all {Points} samples of {metric}");

        Assert.Equal(Enumerable.Range(0, Points).Select(i => (double)i), series[0].Samples.Select(s => s.Value));
        await TestTimeouts.WaitUntilAsync(async () => (await second.QueueOfAsync()).Records == 0, TestTimeouts.Short, "the durable queue drained");
        Assert.Null((await second.QueueOfAsync()).OldestSeconds);
    }
}

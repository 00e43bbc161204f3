using System.Globalization;
using Google.Protobuf;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>The hot tier is lossless across a Prometheus outage: data waits, then arrives in order, once.</summary>
[Collection(ServiceFaultCollection.Name)]
[Trait("Category", ServiceFaultCollection.Category)]
public sealed class PrometheusOutageTests
{
    [Fact]
    public async Task Export_WhilePrometheusIsDownForAMinute_ArrivesCompleteInOrderAndOnce()
    {
        var outage = TimeSpan.FromSeconds(TestEnvironment.Soak ? 600 : 60);
        await using var gateway = await TestGateway.StartAsync();
        var metric = UniqueName.For();
        var sent = 0;
        var started = DateTimeOffset.UtcNow;

        async Task SendFor(TimeSpan duration)
        {
            var until = DateTime.UtcNow + duration;
            while (DateTime.UtcNow < until)
            {
                var value = sent;
                var request = RawOtlpClient.Request(metric, 1, (p, _) =>
                {
                    p.AsDouble = value;
                    p.Attributes.Clear();
                });
                var answer = await RawOtlpClient.GrpcAsync(gateway.GrpcPort, request.ToByteArray()).WaitAsync(TestTimeouts.Short);
                Assert.True(answer.Code == 0, $"point {value} was not accepted: {answer}");
                sent++;
                await Task.Delay(250);
            }
        }

        await SendFor(TimeSpan.FromSeconds(5));
        await ServiceControl.StopAsync("prometheus");
        try
        {
            await SendFor(outage);
        }
        finally
        {
            await ServiceControl.StartAsync("prometheus");
        }

        await SendFor(TimeSpan.FromSeconds(5));

        using var prometheus = new PrometheusClient();
        var window = DateTimeOffset.UtcNow - started + TimeSpan.FromMinutes(1);
        IReadOnlyList<PromSeries> series = [];
        await TestTimeouts.WaitUntilAsync(async () =>
        {
            series = await prometheus.RawSamplesAsync(metric, window);
            return series.Count == 1 && series[0].Samples.Count >= sent;
        }, TimeSpan.FromMinutes(3), $"all {sent} samples of {metric}");

        var values = series[0].Samples.Select(s => s.Value).ToList();
        var times = series[0].Samples.Select(s => s.Time).ToList();
        Assert.Equal(Enumerable.Range(0, sent).Select(i => (double)i), values);
        Assert.Equal(times.Distinct().Count(), times.Count);

        // Nothing was dropped, and the outage was really seen as failed sends that were retried.
        var counts = await gateway.ExporterCountsAsync();
        Assert.Equal(0, counts.Dropped);
        Assert.True(counts.Failed > 0);
        Assert.Contains("pgotel_exporter_failed_sends_total", await gateway.SelfMetricsAsync(), StringComparison.Ordinal);
    }
}

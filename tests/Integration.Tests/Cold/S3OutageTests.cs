using System.Globalization;
using Google.Protobuf;
using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Cold;

/// <summary>
/// Both tiers are lossless across an outage of both stores under load: cold files wait in staging, hot samples in
/// the remote write queue; when s3rver and Prometheus are back every point arrives, in order, once.
/// </summary>
[Collection(ServiceFaultCollection.Name)]
[Trait("Category", ServiceFaultCollection.Category)]
public sealed class S3OutageTests
{
    [Fact]
    public async Task Export_WhileS3AndPrometheusAreDownForAMinute_EveryPointArrivesOnceInBoth()
    {
        var outage = TimeSpan.FromSeconds(TestEnvironment.Soak ? 600 : 60);
        var u = UniqueName.For();
        var prefix = "cold-it/" + u;
        using var staging = new TempDirectory("cold-staging");
        using var download = new TempDirectory("cold-download");
        var sent = 0;
        var started = DateTimeOffset.UtcNow;
        await using (var gateway = await ColdGateway.StartAsync(
            ColdGateway.RemoteWriteExporter() + "\n" + ColdGateway.S3Exporter(prefix, staging.Path), ["prometheusremotewrite", "awss3"]))
        {
            async Task SendFor(TimeSpan duration)
            {
                var until = DateTime.UtcNow + duration;
                while (DateTime.UtcNow < until)
                {
                    // Numbered points, ten series per request, one request every 100 ms.
                    var number = sent;
                    var request = RawOtlpClient.Request(u, 10, (p, i) =>
                    {
                        p.AsInt = number;
                        p.TimeUnixNano = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000;
                    });
                    var answer = await RawOtlpClient.GrpcAsync(gateway.GrpcPort, request.ToByteArray()).WaitAsync(TestTimeouts.Short);
                    Assert.True(answer.Code == 0, $"request {number} was not accepted: {answer}");
                    sent++;
                    await Task.Delay(100);
                }
            }

            await SendFor(TimeSpan.FromSeconds(5));
            await ServiceControl.StopAsync("s3rver");
            ExporterRow during;
            try
            {
                await ServiceControl.StopAsync("prometheus");
                try
                {
                    await SendFor(outage);
                    during = await gateway.ExporterAsync("awss3");
                }
                finally
                {
                    await ServiceControl.StartAsync("prometheus");
                }
            }
            finally
            {
                await ServiceControl.StartAsync("s3rver");
            }

            // While S3 was away the files waited in staging, and the admin API said so.
            Assert.True(during.QueueRecords > 0 && during.QueueBytes > 0 && during.OldestAgeSeconds > 0, $"staging during the outage: {during}");
            Assert.True(during.Failed > 0, "uploads failed during the outage");
            Assert.False(string.IsNullOrEmpty(during.LastError));

            await SendFor(TimeSpan.FromSeconds(5));
            await gateway.WaitForSentAsync("awss3", sent * 10L, TimeSpan.FromMinutes(TestEnvironment.Soak ? 10 : 3));
            Assert.Equal(0, (await gateway.ExporterAsync("awss3")).Dropped);

            // The hot tier: every sample of the ten series, in order (nothing rejected as out of order), once.
            using var prometheus = new PrometheusClient();
            var window = DateTimeOffset.UtcNow - started + TimeSpan.FromMinutes(1);
            IReadOnlyList<PromSeries> series = [];
            await TestTimeouts.WaitUntilAsync(async () =>
            {
                series = await prometheus.RawSamplesAsync(u, window);
                return series.Count == 10 && series.All(s => s.Samples.Count >= sent);
            }, TimeSpan.FromMinutes(TestEnvironment.Soak ? 10 : 3), $"{sent} samples of each of the 10 series of {u} in Prometheus");
            Assert.All(series, s => Assert.Equal(Enumerable.Range(0, sent).Select(i => (double)i), s.Samples.Select(x => x.Value)));
            var hot = await gateway.ExporterAsync("prometheusremotewrite");
            Assert.Equal(0, hot.Dropped);
            Assert.True(hot.Failed > 0, "remote write failed during the outage");
        }

        await ColdData.DownloadAsync(prefix, download.Path);
        var glob = ColdData.Literal(Path.Combine(download.Path, "cold-it", "**", "*.parquet"));
        var counts = ColdData.Query($"""
            select count(*), count(distinct (value_int, attributes['i'])), min(value_int), max(value_int)
            from read_parquet({glob}, hive_partitioning=true) where metric_name = '{u}'
            """)[0].Select(v => Convert.ToInt64(v, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal([sent * 10L, sent * 10L, 0, sent - 1], counts);
    }
}

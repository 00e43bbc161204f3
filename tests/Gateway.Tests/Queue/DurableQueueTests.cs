using Microsoft.Extensions.Logging.Abstractions;
using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Gateway.Queue;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Queue;

public sealed class DurableQueueTests : IDisposable
{
    private readonly TempDirectory _dir = new("pgotel-queue");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Consume_TwoExporters_EachGetsEveryRecordInOrder()
    {
        var hot = new RecordingExporter();
        var cold = new RecordingExporter();
        using var queue = Create(("hot", hot), ("cold", cold));
        await queue.StartAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);

        for (var i = 0; i < 20; i++)
        {
            await queue.ConsumeAsync(QueueTestKit.Request("m" + i), CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
        }

        var expected = Enumerable.Range(0, 20).Select(i => "m" + i).ToList();
        await WaitUntil(() => hot.Names.Count == 20 && cold.Names.Count == 20, "both exporters got 20 records");
        Assert.Equal(expected, hot.Names);
        Assert.Equal(expected, cold.Names);
        await WaitUntil(() => queue.Readers.All(r => r.DepthRecords == 0), "both cursors at the end");
        await queue.StopAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
    }

    [Fact]
    public async Task Restart_ExporterThatHadNotConfirmed_GetsTheRecordsAgainAndTheOtherDoesNot()
    {
        var hot = new RecordingExporter();
        var cold = new RecordingExporter();
        cold.Hold();
        using (var queue = Create(("hot", hot), ("cold", cold)))
        {
            await queue.StartAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
            for (var i = 0; i < 5; i++)
            {
                await queue.ConsumeAsync(QueueTestKit.Request("m" + i), CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
            }

            await WaitUntil(() => hot.Names.Count == 5 && cold.Names.Count == 5, "both exporters were handed 5 records");
            await WaitUntil(() => queue.Readers.Single(r => r.ExporterId == "hot").PersistedCursor.Seq == 5, "hot's cursor persisted");
            var status = new QueuedExporterStatus("cold", cold, [queue]).Snapshot();
            Assert.Equal(5, status.QueueRecords);
            Assert.True(status.QueueBytes > 0);
            Assert.NotNull(status.OldestItemAge);

            // cold never confirms: stopping gives up on its in-flight records within the deadline.
            using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            await queue.StopAsync(deadline.Token).WaitAsync(QueueTestKit.Timeout);
        }

        var hot2 = new RecordingExporter();
        var cold2 = new RecordingExporter();
        using var restarted = Create(("hot", hot2), ("cold", cold2));
        await restarted.StartAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
        await WaitUntil(() => cold2.Names.Count == 5, "cold got the 5 records again");
        Assert.Equal(Enumerable.Range(0, 5).Select(i => "m" + i), cold2.Names);
        Assert.Empty(hot2.Names);
        await restarted.StopAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
    }

    [Fact]
    public async Task Consume_ExportersThatChangeTheirRequests_EachGetsTheRecordAsAppended_AndOneSkipsTheDecode()
    {
        var hot = new RecordingExporter { Scribble = true };
        var cold = new RecordingExporter { Scribble = true };
        using var queue = Create(("hot", hot), ("cold", cold));
        await queue.StartAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);

        var appended = new List<OpenTelemetry.Proto.Collector.Metrics.V1.ExportMetricsServiceRequest>();
        for (var i = 0; i < 20; i++)
        {
            var request = QueueTestKit.Request("m" + i, points: 10);
            appended.Add(request);
            await queue.ConsumeAsync(request, CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
        }

        var expected = Enumerable.Range(0, 20).Select(i => "m" + i).ToList();
        await WaitUntil(() => hot.Names.Count == 20 && cold.Names.Count == 20, "both exporters got 20 records");
        Assert.Equal(expected, hot.Names);
        Assert.Equal(expected, cold.Names);

        // The appended object itself reaches at most one exporter (the other decodes its own copy), and the readers,
        // waiting for each record, take it for most records instead of decoding the bytes just written.
        var handedOver = appended.Select(a => hot.Requests.Concat(cold.Requests).Count(r => ReferenceEquals(r, a))).ToList();
        Assert.All(handedOver, n => Assert.True(n <= 1));
        Assert.True(handedOver.Sum() >= 1, "no record was handed over in memory");
        await queue.StopAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
    }

    [Fact]
    public async Task Reader_ExporterRefusesTwice_HandsTheSameRecordOverAgainInOrder()
    {
        // The exporter changes what it is handed before refusing: each attempt still gets the record as appended.
        var exporter = new RecordingExporter { FailNext = 2, Scribble = true };
        using var queue = Create(("hot", exporter));
        await queue.StartAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);

        await queue.ConsumeAsync(QueueTestKit.Request("first"), CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
        await queue.ConsumeAsync(QueueTestKit.Request("second"), CancellationToken.None).WaitAsync(QueueTestKit.Timeout);

        await WaitUntil(() => exporter.Names.Count == 2, "both records delivered");
        Assert.Equal(["first", "second"], exporter.Names);
        Assert.True(exporter.Calls >= 4);
        await queue.StopAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
    }

    [Fact]
    public async Task Reader_RecordDecodedFromItsBytesThenRefused_IsReadAgainFromTheLog()
    {
        // Two exporters: only one can take a record's in-memory form, so the other decodes the bytes, and gives the
        // buffer back right after. Its retries must read the record again, not reuse a buffer others now write to.
        var hot = new RecordingExporter { FailNext = 2, Scribble = true };
        var cold = new RecordingExporter { FailNext = 2, Scribble = true };
        using var queue = Create(("hot", hot), ("cold", cold));
        await queue.StartAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);

        for (var i = 0; i < 10; i++)
        {
            await queue.ConsumeAsync(QueueTestKit.Request("m" + i, points: 50), CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
        }

        var expected = Enumerable.Range(0, 10).Select(i => "m" + i).ToList();
        await WaitUntil(() => hot.Names.Count == 10 && cold.Names.Count == 10, "both exporters got 10 records");
        Assert.Equal(expected, hot.Names);
        Assert.Equal(expected, cold.Names);
        Assert.All(hot.Requests.Concat(cold.Requests), r => Assert.Equal(
            Enumerable.Range(0, 50).Select(i => (double)i), r.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Gauge.DataPoints.Select(p => p.AsDouble)));
        await queue.StopAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
    }

    [Fact]
    public async Task Segments_PassedByEveryExporter_AreDeletedButNotWhileOneLags()
    {
        var fast = new RecordingExporter();
        var slow = new RecordingExporter();
        slow.Hold();
        using var queue = Create(("fast", fast), ("slow", slow));
        await queue.StartAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
        for (var i = 0; i < 30; i++)
        {
            await queue.ConsumeAsync(QueueTestKit.Request("m" + i, points: 500), CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
        }

        await WaitUntil(() => fast.Names.Count == 30, "fast got everything");
        await Task.Delay(200);
        var retained = queue.Log.SegmentCount;
        Assert.True(retained >= 4, $"{retained} segments retained while slow lags");

        slow.Release();
        await WaitUntil(() => queue.Log.SegmentCount == 1, "consumed segments deleted");
        Assert.Equal(30, slow.Names.Count);
        await queue.StopAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
    }

    [Fact]
    public async Task Consume_WhenFull_RefusesWithQueueFull()
    {
        var slow = new RecordingExporter();
        slow.Hold();
        var options = QueueTestKit.Options(maxSize: 1 << 20, segmentSize: 128 << 10);
        using var queue = new DurableQueue("metrics", _dir.Path, options, [("slow", slow)], NullLoggerFactory.Instance);
        await queue.StartAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);

        var error = await Assert.ThrowsAsync<PipelineRefusedException>(async () =>
        {
            for (var i = 0; i < 200; i++)
            {
                await queue.ConsumeAsync(QueueTestKit.Request("m" + i, points: 2000), CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
            }
        });

        Assert.Equal(RefusalReason.QueueFull, error.Reason);
        Assert.Contains("pgotel_gateway_queue_refused_requests_total", await ScrapeAsync(), StringComparison.Ordinal);
        slow.Release();
        await queue.StopAsync(CancellationToken.None).WaitAsync(QueueTestKit.Timeout);
    }

    private DurableQueue Create(params (string Id, IMetricsConsumer Exporter)[] exporters) =>
        new("metrics", _dir.Path, QueueTestKit.Options(), exporters, NullLoggerFactory.Instance);

    private static async Task<string> ScrapeAsync()
    {
        using var stream = new MemoryStream();
        await Prometheus.Metrics.DefaultRegistry.CollectAndExportAsTextAsync(stream);
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static Task WaitUntil(Func<bool> condition, string what) =>
        TestTimeouts.WaitUntilAsync(() => Task.FromResult(condition()), QueueTestKit.Timeout, what, TimeSpan.FromMilliseconds(20));
}

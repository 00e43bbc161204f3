using System.Net;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.RemoteWrite.Proto;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Export;

/// <summary>
/// The remote-write exporter under the durable queue: a request's task completes only when its series left the
/// gateway, and one rejected sample does not take its batch with it. The receiver here is a scripted handler;
/// the integration tests run the same paths against a real Prometheus.
/// </summary>
public sealed class RemoteWriteCompletionTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Consume_WhileTheReceiverAnswers503_CompletesOnlyAfterDelivery()
    {
        var receiver = new ScriptedReceiver { Status = HttpStatusCode.ServiceUnavailable };
        using var exporter = RemoteWriteTestKit.Create(receiver);
        await exporter.StartAsync(CancellationToken.None);

        var task = exporter.ConsumeAsync(RemoteWriteTestKit.Request("up", 3), CancellationToken.None);
        await receiver.WaitForCallsAsync(2);
        Assert.False(task.IsCompleted);

        receiver.Status = HttpStatusCode.NoContent;
        await task.WaitAsync(Timeout);
        Assert.Equal(3, receiver.DeliveredSeries.Count(s => s.StartsWith("up", StringComparison.Ordinal)));
        await exporter.StopAsync(CancellationToken.None).WaitAsync(Timeout);
    }

    [Fact]
    public async Task Consume_BatchWithOneRejectedSeries_DropsOnlyThatSeriesAndDeliversTheRestInOrder()
    {
        var receiver = new ScriptedReceiver { RejectSeries = "bad" };
        using var exporter = RemoteWriteTestKit.Create(receiver, maxSamplesPerSend: 1000);
        await exporter.StartAsync(CancellationToken.None);

        var request = RemoteWriteTestKit.Request("good", 10);
        request.ResourceMetrics[0].ScopeMetrics[0].Metrics.Add(RemoteWriteTestKit.Request("bad", 1).ResourceMetrics[0].ScopeMetrics[0].Metrics[0]);
        request.ResourceMetrics[0].ScopeMetrics[0].Metrics.Add(RemoteWriteTestKit.Request("late", 5).ResourceMetrics[0].ScopeMetrics[0].Metrics[0]);
        await exporter.ConsumeAsync(request, CancellationToken.None).WaitAsync(Timeout);

        var snapshot = exporter.Snapshot();
        Assert.Equal(1, snapshot.DroppedPoints);
        Assert.Equal(15, receiver.DeliveredSeries.Count(s => s.StartsWith("good", StringComparison.Ordinal) || s.StartsWith("late", StringComparison.Ordinal)));
        Assert.DoesNotContain(receiver.DeliveredSeries, s => s.StartsWith("bad", StringComparison.Ordinal));
        await exporter.StopAsync(CancellationToken.None).WaitAsync(Timeout);
    }

    [Fact]
    public async Task Consume_AnswerLostAfterTheReceiverStoredTheBatch_ResendRejectedAsOutOfOrderCountsAsDeliveredNotDropped()
    {
        // Prometheus going down mid-request: it commits the batch, the answer never comes. The retry carries
        // samples older than what the series now holds, which Prometheus rejects as out of order.
        var receiver = new TsdbReceiver { LoseNextAnswer = HttpRequestError.ResponseEnded };
        using var exporter = RemoteWriteTestKit.Create(receiver, maxSamplesPerSend: 1000);
        await exporter.StartAsync(CancellationToken.None);

        await exporter.ConsumeAsync(Requests("up", 3, samples: 4), CancellationToken.None).WaitAsync(Timeout);

        var snapshot = exporter.Snapshot();
        Assert.Equal(0, snapshot.DroppedPoints);
        Assert.Equal(12, snapshot.SentPoints);
        Assert.Equal(12, receiver.Stored);
    }

    [Fact]
    public async Task Consume_ConnectionRefusedThenOutOfOrder_StillCountsTheRejectedSampleAsDropped()
    {
        // A refused connection stored nothing, so a later out-of-order answer is a real rejection.
        var receiver = new TsdbReceiver { LoseNextAnswer = HttpRequestError.ConnectionError, LatestBefore = ("up", 2, long.MaxValue) };
        using var exporter = RemoteWriteTestKit.Create(receiver, maxSamplesPerSend: 1000);
        await exporter.StartAsync(CancellationToken.None);

        await exporter.ConsumeAsync(Requests("up", 3, samples: 1), CancellationToken.None).WaitAsync(Timeout);

        var snapshot = exporter.Snapshot();
        Assert.Equal(1, snapshot.DroppedPoints);
        Assert.Equal(2, snapshot.SentPoints);
    }

    /// <summary><paramref name="samples"/> gauge points per series, one second apart, in one request.</summary>
    private static ExportMetricsServiceRequest Requests(string metric, int series, int samples)
    {
        var request = RemoteWriteTestKit.Request(metric, series);
        var gauge = request.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Gauge;
        var first = gauge.DataPoints.ToList();
        for (var k = 1; k < samples; k++)
        {
            foreach (var point in first)
            {
                var later = point.Clone();
                later.TimeUnixNano += (ulong)k * 1_000_000_000UL;
                gauge.DataPoints.Add(later);
            }
        }

        return request;
    }

    /// <summary>
    /// Appends like Prometheus's TSDB: per series, a sample older than the newest stored one is out of order and
    /// rolls the whole request back (400); an identical newest sample is ignored.
    /// </summary>
    private sealed class TsdbReceiver : HttpMessageHandler
    {
        private readonly Dictionary<string, long> _newest = [];
        private readonly Lock _gate = new();

        /// <summary>The next call fails this way; with <c>ResponseEnded</c> it stores the batch first.</summary>
        public HttpRequestError? LoseNextAnswer { get; set; }

        /// <summary>A series (metric, attribute i) that already holds a sample at this time.</summary>
        public (string Metric, int I, long Time)? LatestBefore { get; init; }

        public int Stored { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var write = WriteRequest.Parser.ParseFrom(Snappier.Snappy.DecompressToArray(await request.Content!.ReadAsByteArrayAsync(cancellationToken)));
            lock (_gate)
            {
                if (LatestBefore is { } seeded && _newest.Count == 0)
                {
                    _newest[seeded.Metric + "/" + seeded.I.ToString(System.Globalization.CultureInfo.InvariantCulture)] = seeded.Time;
                }

                var lose = LoseNextAnswer;
                LoseNextAnswer = null;
                if (lose == HttpRequestError.ConnectionError)
                {
                    throw new HttpRequestException(lose.Value, "Connection refused");
                }

                var staged = new Dictionary<string, long>(_newest);
                var stored = 0;
                foreach (var series in write.Timeseries)
                {
                    var key = series.Labels.First(l => l.Name == "__name__").Value + "/" + series.Labels.First(l => l.Name == "i").Value;
                    foreach (var sample in series.Samples)
                    {
                        var newest = staged.GetValueOrDefault(key, long.MinValue);
                        if (sample.Timestamp < newest)
                        {
                            return new HttpResponseMessage(HttpStatusCode.BadRequest) { Content = new StringContent("out of order sample") };
                        }

                        stored += sample.Timestamp > newest ? 1 : 0;
                        staged[key] = sample.Timestamp;
                    }
                }

                foreach (var (key, time) in staged)
                {
                    _newest[key] = time;
                }

                Stored += stored;
                if (lose is { } error)
                {
                    throw new HttpRequestException(error, "The response ended prematurely.");
                }
            }

            return new HttpResponseMessage(HttpStatusCode.NoContent);
        }
    }

    /// <summary>Answers remote-write requests with a status; with <see cref="RejectSeries"/>, 400 for any request holding that metric.</summary>
    private sealed class ScriptedReceiver : HttpMessageHandler
    {
        private readonly List<string> _delivered = [];
        private int _calls;

        public volatile HttpStatusCode Status = HttpStatusCode.NoContent;

        public string? RejectSeries { get; init; }

        public List<string> DeliveredSeries
        {
            get
            {
                lock (_delivered)
                {
                    return [.. _delivered];
                }
            }
        }

        public async Task WaitForCallsAsync(int calls)
        {
            var deadline = DateTime.UtcNow + Timeout;
            while (Volatile.Read(ref _calls) < calls)
            {
                Assert.True(DateTime.UtcNow < deadline, $"only {_calls} calls");
                await Task.Delay(10);
            }
        }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            var body = Snappier.Snappy.DecompressToArray(await request.Content!.ReadAsByteArrayAsync(cancellationToken));
            var write = WriteRequest.Parser.ParseFrom(body);
            var names = write.Timeseries.Select(ts => ts.Labels.First(l => l.Name == "__name__").Value + "/" + string.Join(',', ts.Labels.Select(l => l.Value))).ToList();
            if (RejectSeries is { } bad && names.Any(n => n.StartsWith(bad, StringComparison.Ordinal)))
            {
                return new HttpResponseMessage(HttpStatusCode.BadRequest) { Content = new StringContent("out of order sample") };
            }

            var status = Status;
            if ((int)status < 300)
            {
                lock (_delivered)
                {
                    _delivered.AddRange(names);
                }
            }

            return new HttpResponseMessage(status);
        }
    }
}

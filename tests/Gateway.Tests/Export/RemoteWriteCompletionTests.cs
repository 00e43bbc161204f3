using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Gateway.Export.RemoteWrite;
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
        using var exporter = Create(receiver);
        await exporter.StartAsync(CancellationToken.None);

        var task = exporter.ConsumeAsync(Request("up", 3), CancellationToken.None);
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
        using var exporter = Create(receiver, maxSamplesPerSend: 1000);
        await exporter.StartAsync(CancellationToken.None);

        var request = Request("good", 10);
        request.ResourceMetrics[0].ScopeMetrics[0].Metrics.Add(Request("bad", 1).ResourceMetrics[0].ScopeMetrics[0].Metrics[0]);
        request.ResourceMetrics[0].ScopeMetrics[0].Metrics.Add(Request("late", 5).ResourceMetrics[0].ScopeMetrics[0].Metrics[0]);
        await exporter.ConsumeAsync(request, CancellationToken.None).WaitAsync(Timeout);

        var snapshot = exporter.Snapshot();
        Assert.Equal(1, snapshot.DroppedPoints);
        Assert.Equal(15, receiver.DeliveredSeries.Count(s => s.StartsWith("good", StringComparison.Ordinal) || s.StartsWith("late", StringComparison.Ordinal)));
        Assert.DoesNotContain(receiver.DeliveredSeries, s => s.StartsWith("bad", StringComparison.Ordinal));
        await exporter.StopAsync(CancellationToken.None).WaitAsync(Timeout);
    }

    private static RemoteWriteExporter Create(ScriptedReceiver receiver, int maxSamplesPerSend = 5000) => new(
        "prometheusremotewrite",
        new RemoteWriteOptions
        {
            Endpoint = "http://receiver.invalid/api/v1/write",
            TargetInfo = new EnabledOption { Enabled = false },
            RetryOnFailure = new RetryOptions { InitialInterval = TimeSpan.FromMilliseconds(10), MaxInterval = TimeSpan.FromMilliseconds(50) },
            RemoteWriteQueue = new RemoteWriteQueueOptions { NumConsumers = 1, MaxSamplesPerSend = maxSamplesPerSend },
        },
        NullLogger<RemoteWriteExporter>.Instance,
        receiver);

    private static ExportMetricsServiceRequest Request(string metric, int series)
    {
        var gauge = new Gauge();
        for (var i = 0; i < series; i++)
        {
            var point = new NumberDataPoint { AsDouble = i, TimeUnixNano = 1_700_000_000_000_000_000UL };
            point.Attributes.Add(new KeyValue { Key = "i", Value = new AnyValue { IntValue = i } });
            gauge.DataPoints.Add(point);
        }

        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(new ResourceMetrics
        {
            Resource = new Resource(),
            ScopeMetrics = { new ScopeMetrics { Metrics = { new Metric { Name = metric, Gauge = gauge } } } },
        });
        return request;
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

using System.Diagnostics;
using System.Net;
using PgOtelGateway.Gateway.Telemetry;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Export;

/// <summary>
/// How the remote-write exporter treats the receiver's refusals: a 429 is retried no sooner than its Retry-After
/// asks, any other 4xx is dropped and counted without a retry. The receiver is a scripted handler.
/// </summary>
public sealed class RemoteWriteRetryPolicyTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Consume_429WithRetryAfter2_RetriesNoSoonerThanTheServerAsked()
    {
        // The exporter's own backoff (10–50 ms here) is far below the 2 s the receiver asks for, so only
        // honouring Retry-After (less at most 20 % jitter) makes the second attempt wait 1.6 s or more.
        var receiver = new ScriptedReceiver(_ => Answer(HttpStatusCode.TooManyRequests, retryAfterSeconds: 2), HttpStatusCode.NoContent);
        using var exporter = RemoteWriteTestKit.Create(receiver, "rw-retry-after");
        await exporter.StartAsync(CancellationToken.None);

        await exporter.ConsumeAsync(RemoteWriteTestKit.Request("throttled", 2), CancellationToken.None).WaitAsync(Timeout);

        var calls = receiver.CallTimes;
        Assert.Equal(2, calls.Count);
        var gap = calls[1] - calls[0];
        Assert.True(gap >= TimeSpan.FromSeconds(1.5), $"the retry came {gap.TotalMilliseconds:0} ms after the 429 that asked for 2 s");
        var snapshot = exporter.Snapshot();
        Assert.Equal(2, snapshot.SentPoints);
        Assert.Equal(0, snapshot.DroppedPoints);
        await exporter.StopAsync(CancellationToken.None).WaitAsync(Timeout);
    }

    [Theory]
    [InlineData(HttpStatusCode.BadRequest)]
    [InlineData(HttpStatusCode.Forbidden)]
    [InlineData(HttpStatusCode.RequestEntityTooLarge)]
    public async Task Consume_4xxOtherThan429_DropsAndCountsWithoutRetrying(HttpStatusCode status)
    {
        var id = "rw-drop-" + (int)status;
        var droppedBefore = GatewayMetrics.ExporterDroppedPoints.WithLabels(id, "rejected").Value;
        var receiver = new ScriptedReceiver(_ => Answer(status), status);
        using var exporter = RemoteWriteTestKit.Create(receiver, id);
        await exporter.StartAsync(CancellationToken.None);

        // One series: nothing to split, so a single attempt decides.
        await exporter.ConsumeAsync(RemoteWriteTestKit.Request("refused", 1), CancellationToken.None).WaitAsync(Timeout);

        Assert.Single(receiver.CallTimes);
        var snapshot = exporter.Snapshot();
        Assert.Equal(1, snapshot.DroppedPoints);
        Assert.Equal(0, snapshot.SentPoints);
        Assert.Contains(((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture), snapshot.LastError, StringComparison.Ordinal);
        Assert.Equal(1, GatewayMetrics.ExporterDroppedPoints.WithLabels(id, "rejected").Value - droppedBefore);

        // The exporter is not stuck: the next request goes through once the receiver takes it.
        receiver.Then = HttpStatusCode.NoContent;
        receiver.First = null;
        await exporter.ConsumeAsync(RemoteWriteTestKit.Request("accepted", 1), CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(1, exporter.Snapshot().SentPoints);
        await exporter.StopAsync(CancellationToken.None).WaitAsync(Timeout);
    }

    private static HttpResponseMessage Answer(HttpStatusCode status, int? retryAfterSeconds = null)
    {
        var response = new HttpResponseMessage(status) { Content = new StringContent("scripted " + (int)status) };
        if (retryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(seconds));
        }

        return response;
    }

    /// <summary>Answers the first call with <see cref="First"/>, every later one with <see cref="Then"/>, and records when each came.</summary>
    private sealed class ScriptedReceiver(Func<int, HttpResponseMessage>? first, HttpStatusCode then) : HttpMessageHandler
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly List<TimeSpan> _calls = [];

        public Func<int, HttpResponseMessage>? First { get; set; } = first;

        public HttpStatusCode Then { get; set; } = then;

        public IReadOnlyList<TimeSpan> CallTimes
        {
            get
            {
                lock (_calls)
                {
                    return [.. _calls];
                }
            }
        }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            int call;
            lock (_calls)
            {
                _calls.Add(_clock.Elapsed);
                call = _calls.Count;
            }

            return Task.FromResult(call == 1 && First is { } answer ? answer(call) : Answer(Then));
        }
    }
}

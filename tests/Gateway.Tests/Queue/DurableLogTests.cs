using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using Google.Protobuf;
using PgOtelGateway.Gateway.Queue;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Queue;

public sealed class DurableLogTests : IDisposable
{
    private readonly TempDirectory _dir = new("pgotel-queue");

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("always")]
    [InlineData("group")]
    [InlineData("never")]
    public async Task Append_ConcurrentRequests_AreReadBackInCommitOrderWithIncreasingSequence(string fsync)
    {
        using var log = QueueTestKit.OpenLog(_dir.Path, QueueTestKit.Options(Enum.Parse<FsyncPolicy>(fsync, ignoreCase: true)));

        var tasks = Enumerable.Range(0, 50).Select(i => Task.Run(() => log.AppendAsync(QueueTestKit.Request("m" + i).ToByteArray()))).ToArray();
        await Task.WhenAll(tasks).WaitAsync(QueueTestKit.Timeout);

        var records = QueueTestKit.ReadAll(log, new LogPosition(0, 0));
        Assert.Equal(50, records.Count);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i), records.Select(r => r.Position.Seq));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => "m" + i).Order(), records.Select(r => QueueTestKit.NameOf(r.Payload)).Order());
        Assert.Equal(log.CommittedOffset, records[^1].Next.Offset);
    }

    [Fact]
    public async Task Read_TakingDecoded_GetsTheNewestRecordsInMemoryOnceAndOlderOnesFromDisk()
    {
        using var log = QueueTestKit.OpenLog(_dir.Path);
        var requests = Enumerable.Range(0, 6).Select(i => QueueTestKit.Request("m" + i, points: 3)).ToList();
        foreach (var request in requests)
        {
            var bytes = request.ToByteArray();
            await log.AppendAsync(bytes, bytes.Length, pooled: false, decoded: request).WaitAsync(QueueTestKit.Timeout);
        }

        using var reader = log.OpenReader();
        var at = new LogPosition(0, 0);
        var records = new List<LogRecord>();
        while (reader.Read(at, pooled: false, takeDecoded: true) is { } record)
        {
            records.Add(record);
            at = record.Next;
        }

        // Only the newest four are kept in memory: the first two are read from disk, the rest come as the objects appended.
        Assert.Equal(6, records.Count);
        Assert.All(records.Take(2), r => Assert.Null(r.Decoded));
        Assert.Equal(["m0", "m1"], records.Take(2).Select(r => QueueTestKit.NameOf(r.Payload)));
        Assert.All(records.Skip(2).Select((r, i) => (r, i)), x => Assert.Same(requests[x.i + 2], x.r.Decoded));
        Assert.Equal(log.CommittedOffset, records[^1].Next.Offset);

        // A second reader (another exporter) gets every record from disk: an object goes to one reader only.
        var again = QueueTestKit.ReadAll(log, new LogPosition(0, 0));
        Assert.Equal(requests.Select(r => r.ToByteArray()), again.Select(r => r.Payload));
        Assert.All(again, r => Assert.Null(r.Decoded));
    }

    [Fact]
    public async Task Open_AfterRestart_KeepsRecordsAndContinuesTheSequence()
    {
        using (var log = QueueTestKit.OpenLog(_dir.Path))
        {
            await log.AppendAsync(QueueTestKit.Request("a").ToByteArray()).WaitAsync(QueueTestKit.Timeout);
            await log.AppendAsync(QueueTestKit.Request("b").ToByteArray()).WaitAsync(QueueTestKit.Timeout);
            await log.StopWritingAsync().WaitAsync(QueueTestKit.Timeout);
        }

        using var reopened = QueueTestKit.OpenLog(_dir.Path);
        await reopened.AppendAsync(QueueTestKit.Request("c").ToByteArray()).WaitAsync(QueueTestKit.Timeout);

        var records = QueueTestKit.ReadAll(reopened, new LogPosition(0, 0));
        Assert.Equal(["a", "b", "c"], records.Select(r => QueueTestKit.NameOf(r.Payload)));
        Assert.Equal([0L, 1L, 2L], records.Select(r => r.Position.Seq));
    }

    [Fact]
    public async Task Append_PastSegmentSize_RollsSegmentsAndDeletesOnlyThosePassed()
    {
        using var log = QueueTestKit.OpenLog(_dir.Path, QueueTestKit.Options(segmentSize: 64 << 10));
        for (var i = 0; i < 40; i++)
        {
            // About 10 KiB each: a new segment every 7 records or so.
            await log.AppendAsync(QueueTestKit.Request("m" + i, points: 500).ToByteArray()).WaitAsync(QueueTestKit.Timeout);
        }

        var segments = log.SegmentCount;
        Assert.True(segments >= 4, $"{segments} segments");
        var records = QueueTestKit.ReadAll(log, new LogPosition(0, 0));
        Assert.Equal(40, records.Count);

        // A cursor in the middle: only the segments wholly before it go.
        var middle = records[20].Position;
        log.DeleteSegmentsBefore(middle.Offset);
        Assert.True(log.SegmentCount < segments && log.SegmentCount > 1);
        Assert.True(log.FirstOffset <= middle.Offset);
        Assert.Equal(20, QueueTestKit.ReadAll(log, middle).Count);

        // Every record consumed: all but the segment being written are deleted.
        log.DeleteSegmentsBefore(log.CommittedOffset);
        Assert.Equal(1, log.SegmentCount);
        Assert.Equal(log.CommittedOffset - log.FirstOffset, log.SizeBytes);
    }

    [Theory]
    [InlineData("half a header")]
    [InlineData("half a payload")]
    [InlineData("flipped payload byte")]
    [InlineData("zeros after the last record")]
    public async Task Open_WithTornTail_CutsItOffLogsItAndKeepsTheWholeRecords(string damage)
    {
        using (var log = QueueTestKit.OpenLog(_dir.Path))
        {
            for (var i = 0; i < 3; i++)
            {
                await log.AppendAsync(QueueTestKit.Request("m" + i, points: 10).ToByteArray()).WaitAsync(QueueTestKit.Timeout);
            }

            await log.StopWritingAsync().WaitAsync(QueueTestKit.Timeout);
        }

        var segment = Directory.GetFiles(_dir.Path, "*.seg").Single();
        var bytes = await File.ReadAllBytesAsync(segment);
        var lastStart = QueueTestKit.ReadAllOffsets(bytes)[^1];
        byte[] damaged = damage switch
        {
            // A fourth record that was being written when the process died.
            "half a header" => [.. bytes, .. bytes.AsSpan((int)lastStart, 10).ToArray()],
            "half a payload" => bytes[..(int)(lastStart + DurableLog.HeaderSize + 5)],
            "flipped payload byte" => Flip(bytes, bytes.Length - 3),
            _ => [.. bytes, .. new byte[4096]],
        };
        await File.WriteAllBytesAsync(segment, damaged);
        var expected = damage is "half a payload" or "flipped payload byte" ? 2 : 3;

        var logger = new ListLogger();
        using var reopened = QueueTestKit.OpenLog(_dir.Path, logger: logger);

        var records = QueueTestKit.ReadAll(reopened, new LogPosition(0, 0));
        Assert.Equal(Enumerable.Range(0, expected).Select(i => "m" + i), records.Select(r => QueueTestKit.NameOf(r.Payload)));
        Assert.Equal(records[^1].Next.Offset, new FileInfo(segment).Length);
        Assert.Contains(logger.Messages, m => m.Contains("torn write", StringComparison.Ordinal));

        // The log goes on from the cut: the next record gets the next sequence number and reads back.
        await reopened.AppendAsync(QueueTestKit.Request("after").ToByteArray()).WaitAsync(QueueTestKit.Timeout);
        var after = QueueTestKit.ReadAll(reopened, records[^1].Next);
        Assert.Equal("after", QueueTestKit.NameOf(Assert.Single(after).Payload));
        Assert.Equal(expected, after[0].Position.Seq);
    }

    [Fact]
    public void Open_WhileAnotherHolderHasTheDirectory_FailsNamingTheDirectory()
    {
        using var first = QueueTestKit.OpenLog(_dir.Path);
        using var second = new DurableLog("test", _dir.Path, QueueTestKit.Options(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

        var error = Assert.Throws<IOException>(second.Open);

        Assert.Contains(_dir.Path, error.Message, StringComparison.Ordinal);
        Assert.Contains("in use by another gateway process", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Open_AfterTheHolderClosed_Succeeds()
    {
        using (var first = QueueTestKit.OpenLog(_dir.Path))
        {
            await first.StopWritingAsync().WaitAsync(QueueTestKit.Timeout);
        }

        using var second = QueueTestKit.OpenLog(_dir.Path);
        Assert.Equal(0, second.CommittedOffset);
    }

    [Theory]
    [InlineData(256 << 10)]
    [InlineData(64 << 20)] // larger than max_size: capped, or the segment being written could fill the queue for good
    public async Task Append_BeyondMaxSize_RefusesAsQueueFullWithRetryAfter(long segmentSize)
    {
        using var log = QueueTestKit.OpenLog(_dir.Path, QueueTestKit.Options(maxSize: 1 << 20, segmentSize: segmentSize));
        var payload = QueueTestKit.Request("big", points: 5000).ToByteArray();
        PipelineRefusedException? refusal = null;
        for (var i = 0; i < 100 && refusal is null; i++)
        {
            try
            {
                await log.AppendAsync(payload).WaitAsync(QueueTestKit.Timeout);
            }
            catch (PipelineRefusedException ex)
            {
                refusal = ex;
            }
        }

        Assert.NotNull(refusal);
        Assert.Equal(RefusalReason.QueueFull, refusal.Reason);
        Assert.True(refusal.RetryAfter > TimeSpan.Zero);
        Assert.True(log.SizeBytes <= 1 << 20);

        // Once an exporter has passed the data, there is room again.
        log.DeleteSegmentsBefore(log.CommittedOffset);
        await log.AppendAsync(payload).WaitAsync(QueueTestKit.Timeout);
    }

    [Fact]
    public async Task Cursor_SavedAndLoaded_RoundTripsAndIsClampedToRetainedRecords()
    {
        using var log = QueueTestKit.OpenLog(_dir.Path);
        Assert.Equal(new LogPosition(0, 0), log.LoadCursor("prometheusremotewrite/hot"));
        await log.AppendAsync(QueueTestKit.Request("a").ToByteArray()).WaitAsync(QueueTestKit.Timeout);
        var end = new LogPosition(log.CommittedOffset, log.CommittedSeq);

        log.SaveCursor("prometheusremotewrite/hot", end);
        Assert.Equal(end, log.LoadCursor("prometheusremotewrite/hot"));

        log.SaveCursor("other", new LogPosition(end.Offset + 1000, 99));
        Assert.Equal(end, log.LoadCursor("other"));
    }

    private static byte[] Flip(byte[] bytes, int at)
    {
        var copy = bytes.ToArray();
        copy[at] ^= 0xFF;
        return copy;
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Messages)
            {
                Messages.Add(formatter(state, exception));
            }
        }
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Agent.Export;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Agent.Tests.Export;

public sealed class DiskSpoolTests
{
    private static ExportMetricsServiceRequest Batch(int sequence)
    {
        var metric = new Metric { Name = "seq", Gauge = new Gauge() };
        metric.Gauge.DataPoints.Add(new NumberDataPoint { AsInt = sequence });
        var scope = new ScopeMetrics();
        scope.Metrics.Add(metric);
        var rm = new ResourceMetrics();
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    private static long Value(ExportMetricsServiceRequest r) => r.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Gauge.DataPoints[0].AsInt;

    private static List<long> Drain(DiskSpool spool)
    {
        var seen = new List<long>();
        while (spool.TryPeekOldest(out var sequence, out var request, out _))
        {
            seen.Add(Value(request));
            spool.Remove(sequence);
        }

        return seen;
    }

    [Fact]
    public void Reopen_AfterAppends_ReplaysInOrder()
    {
        using var dir = new TempDirectory();
        using (var spool = new DiskSpool(dir.Path, 1 << 20, "t-order", NullLogger.Instance))
        {
            for (var i = 0; i < 5; i++)
            {
                spool.Append(Batch(i));
            }
        }

        using var reopened = new DiskSpool(dir.Path, 1 << 20, "t-order", NullLogger.Instance);
        Assert.Equal(5, reopened.Count);
        Assert.Equal([0L, 1, 2, 3, 4], Drain(reopened));
        Assert.Equal(0, reopened.Bytes);

        // Sequence numbers continue after a restart, so new batches sort behind replayed ones.
        reopened.Append(Batch(9));
        Assert.Equal([9L], Drain(reopened));
    }

    [Fact]
    public void Reopen_WithACorruptAndATornFile_SkipsThemCountsAndKeepsTheRest()
    {
        using var dir = new TempDirectory();
        var id = "t-corrupt-" + Guid.NewGuid().ToString("N");
        using (var spool = new DiskSpool(dir.Path, 1 << 20, id, NullLogger.Instance))
        {
            for (var i = 0; i < 4; i++)
            {
                spool.Append(Batch(i));
            }
        }

        var files = Directory.GetFiles(dir.Path, "*.spool").Order(StringComparer.Ordinal).ToArray();
        var bytes = File.ReadAllBytes(files[1]);
        bytes[^1] ^= 0xFF; // A flipped bit in the payload: the checksum catches it.
        File.WriteAllBytes(files[1], bytes);
        File.WriteAllBytes(files[2], File.ReadAllBytes(files[2])[..^3]); // A torn write: the length catches it.
        File.WriteAllBytes(Path.Combine(dir.Path, "0000000000000099.spool.tmp"), [1, 2, 3]);

        using var reopened = new DiskSpool(dir.Path, 1 << 20, id, NullLogger.Instance);
        Assert.Equal([0L, 3], Drain(reopened));
        Assert.Equal(2, AgentMetrics.DroppedPoints.WithLabels(id, "spool_corrupt").Value);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void Append_OverMaxSize_DropsTheOldest()
    {
        using var dir = new TempDirectory();
        var id = "t-full-" + Guid.NewGuid().ToString("N");
        using var spool = new DiskSpool(dir.Path, 4096, id, NullLogger.Instance);
        for (var i = 0; i < 200; i++)
        {
            spool.Append(Batch(i));
        }

        Assert.True(spool.Bytes <= 4096);
        var kept = Drain(spool);
        Assert.Equal(Enumerable.Range(200 - kept.Count, kept.Count).Select(i => (long)i), kept);
        Assert.Equal(200 - kept.Count, AgentMetrics.DroppedPoints.WithLabels(id, "spool_full").Value);
    }

    [Fact]
    public void Open_ASecondTimeOnTheSameDirectory_FailsNamingTheLock()
    {
        using var dir = new TempDirectory();
        using var spool = new DiskSpool(dir.Path, 1 << 20, "t-lock", NullLogger.Instance);
        var ex = Assert.Throws<IOException>(() => new DiskSpool(dir.Path, 1 << 20, "t-lock", NullLogger.Instance));
        Assert.Contains(".lock", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Crc32C_KnownVector_Matches()
    {
        // RFC 3720 B.4: CRC-32C of "123456789" is 0xE3069283.
        Assert.Equal(0xE3069283u, Crc32C.Append(0, "123456789"u8));
    }
}

using System.Buffers.Binary;
using System.IO.Hashing;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Gateway.Export.S3;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Export;

/// <summary>The exporter's staging on a real disk, with a local folder (or a target that always fails).</summary>
public sealed class S3ExporterTests
{
    private static ExportMetricsServiceRequest Request(int points, long value)
    {
        var gauge = new Gauge();
        var now = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000;
        for (var i = 0; i < points; i++)
        {
            gauge.DataPoints.Add(new NumberDataPoint { TimeUnixNano = now, AsInt = value, Attributes = { new KeyValue { Key = "i", Value = new AnyValue { IntValue = i } } } });
        }

        var rm = new ResourceMetrics { Resource = new Resource { Attributes = { new KeyValue { Key = "service.name", Value = new AnyValue { StringValue = "unit" } } } } };
        rm.ScopeMetrics.Add(new ScopeMetrics { Metrics = { new Metric { Name = "unit_test", Gauge = gauge } } });
        return new ExportMetricsServiceRequest { ResourceMetrics = { rm } };
    }

    private static S3ExporterOptions Options(string target, string staging) => new()
    {
        S3uploader = new S3UploaderOptions { Endpoint = "file://" + target },
        FileMaxAge = TimeSpan.FromMilliseconds(200),
        Staging = new StagingOptions { Directory = staging },
        RetryOnFailure = new UploadRetryOptions { InitialInterval = TimeSpan.FromMilliseconds(50), MaxInterval = TimeSpan.FromMilliseconds(200) },
    };

    [Fact]
    public async Task ConsumeAsync_ThenStop_EveryPointIsInTheTargetAndStagingIsEmpty()
    {
        using var target = new TempDirectory("cold-target");
        using var staging = new TempDirectory("cold-staging");
        using var exporter = new S3Exporter("awss3", "unit", Options(target.Path, staging.Path), NullLogger<S3Exporter>.Instance);
        await exporter.StartAsync(CancellationToken.None);
        for (var i = 0; i < 20; i++)
        {
            await exporter.ConsumeAsync(Request(50, i), CancellationToken.None).WaitAsync(TestTimeouts.Short);
        }

        await exporter.StopAsync(new CancellationTokenSource(TestTimeouts.Short).Token);

        var rows = 0L;
        foreach (var file in Directory.EnumerateFiles(target.Path, "*.parquet", SearchOption.AllDirectories))
        {
            await using var reader = await global::Parquet.ParquetReader.CreateAsync(file);
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                rows += group.RowCount;
            }
        }

        Assert.Equal(1000, rows);
        Assert.Equal(1000, exporter.Snapshot().SentPoints);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(staging.Path, "journal")));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(staging.Path, "ready"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task ConsumeAsync_WhenStagingIsFull_RefusesWithQueueFull()
    {
        using var staging = new TempDirectory("cold-staging");
        var options = Options("/unused", staging.Path);
        // Journals of realistic proportion: a Parquet file of a few requests is smaller than their OTLP, so files
        // made from acknowledged journals never take staging past its size (tiny files would, by their footers).
        options.FileMaxBytes = ByteSize.FromKiB(64);
        options.Staging.MaxSize = ByteSize.FromKiB(256);
        using var exporter = new S3Exporter("awss3", "unit", options, NullLogger<S3Exporter>.Instance, new FailingTarget());
        await exporter.StartAsync(CancellationToken.None);

        PipelineRefusedException? refused = null;
        for (var i = 0; i < 200 && refused is null; i++)
        {
            try
            {
                await exporter.ConsumeAsync(Request(500, i), CancellationToken.None).WaitAsync(TestTimeouts.Short);
            }
            catch (PipelineRefusedException ex)
            {
                refused = ex;
            }
        }

        Assert.NotNull(refused);
        Assert.Equal(RefusalReason.QueueFull, refused.Reason);
        var snapshot = exporter.Snapshot();
        Assert.True(snapshot.QueueBytes <= 256 * 1024, $"staging holds {snapshot.QueueBytes} bytes");
        Assert.Equal(0, snapshot.SentPoints);
        Assert.Equal(0, snapshot.DroppedPoints);
        await exporter.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(2)).Token);
    }

    [Fact]
    public async Task Start_WithAJournalThatCannotBeRead_SetsItAsideAndGoesOn()
    {
        using var target = new TempDirectory("cold-target");
        using var staging = new TempDirectory("cold-staging");
        Directory.CreateDirectory(Path.Combine(staging.Path, "journal"));

        // A record whose checksum is right but whose bytes are not OTLP.
        byte[] garbage = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        var record = new byte[8 + garbage.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)garbage.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), Crc32.HashToUInt32(garbage));
        garbage.CopyTo(record, 8);
        await File.WriteAllBytesAsync(StagingJournal.PathOf(Path.Combine(staging.Path, "journal"), 7), record);

        using var exporter = new S3Exporter("awss3", "unit", Options(target.Path, staging.Path), NullLogger<S3Exporter>.Instance);
        await exporter.StartAsync(CancellationToken.None);
        await exporter.ConsumeAsync(Request(5, 1), CancellationToken.None).WaitAsync(TestTimeouts.Short);
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(exporter.Snapshot().SentPoints == 5), TestTimeouts.Short, "the good data behind the bad journal");
        await exporter.StopAsync(new CancellationTokenSource(TestTimeouts.Short).Token);

        Assert.True(File.Exists(Path.Combine(staging.Path, "failed", "0000000007.journal")));
        Assert.Contains("0000000007.journal", exporter.Snapshot().LastError, StringComparison.Ordinal);
        Assert.Single(Directory.EnumerateFiles(target.Path, "*.parquet", SearchOption.AllDirectories));
    }

    private sealed class FailingTarget : IColdTarget
    {
        public string Description => "nowhere";

        public Task PutAsync(string key, string path, CancellationToken cancellationToken) => throw new IOException("the target is down");

        public void Dispose()
        {
        }
    }
}

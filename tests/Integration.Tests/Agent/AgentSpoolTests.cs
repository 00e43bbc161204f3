using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Agent.Configuration;
using PgOtelGateway.Agent.Export;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>
/// The otlp exporter's disk spool (sending_queue.storage_dir) with the gateway away: a real gRPC server is
/// started later on the port the exporter has been failing to reach.
/// </summary>
public sealed class AgentSpoolTests
{
    private static OtlpExporterOptions Options(int port, string storage, string maxSize = "64MiB") =>
        ConfigLoader.Load($"""
            receivers:
              hostmetrics:
                scrapers:
                  load:
            exporters:
              otlp:
                endpoint: 127.0.0.1:{port}
                compression: zstd
                timeout: 5s
                retry_on_failure:
                  initial_interval: 100ms
                  max_interval: 500ms
                sending_queue:
                  storage_dir: {storage}
                  max_size: {maxSize}
            service:
              pipelines:
                metrics:
                  receivers: [hostmetrics]
                  exporters: [otlp]
            """, AgentComponents.CreateRegistry()).Exporters["otlp"].OptionsAs<OtlpExporterOptions>();

    /// <summary>One batch: a gauge whose value is its sequence number (plus optional incompressible padding).</summary>
    private static ExportMetricsServiceRequest Batch(string test, int sequence, int padding = 0)
    {
        var resource = new Resource();
        resource.Attributes.Add(new KeyValue { Key = "test.id", Value = new AnyValue { StringValue = test } });
        var metric = new Metric { Name = "spool.sequence", Gauge = new Gauge() };
        var point = new NumberDataPoint { AsInt = sequence, TimeUnixNano = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000 };
        if (padding > 0)
        {
            point.Attributes.Add(new KeyValue { Key = "padding", Value = new AnyValue { StringValue = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(padding / 2)) } });
        }

        metric.Gauge.DataPoints.Add(point);
        var scope = new ScopeMetrics();
        scope.Metrics.Add(metric);
        var rm = new ResourceMetrics { Resource = resource };
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    private static List<long> Sequences(RecordingOtlpServer server) =>
        server.Received.Snapshot().SelectMany(r => r.ResourceMetrics).SelectMany(rm => rm.ScopeMetrics).SelectMany(s => s.Metrics)
            .SelectMany(m => m.Gauge.DataPoints).Select(p => p.AsInt).ToList();

    private static OtlpExporter Exporter(string id, OtlpExporterOptions options, ListLogger? logger = null) =>
        new(id, options, logger ?? new ListLogger());

    [Fact]
    public async Task Spool_GatewayAwayThenBack_EveryBatchArrivesInOrder()
    {
        using var dir = new TempDirectory();
        var port = FreePort.Get();
        var id = "otlp/" + UniqueName.For();
        using var exporter = Exporter(id, Options(port, dir.Path));
        await exporter.StartAsync(CancellationToken.None);

        // The gateway is away: every batch goes to disk, oldest first.
        for (var i = 0; i < 20; i++)
        {
            await exporter.ConsumeAsync(Batch(id, i), CancellationToken.None);
            await Task.Delay(20);
        }

        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(exporter.Spool!.Count == 20), TestTimeouts.Short, "20 batches in the spool");
        Assert.Equal(20, AgentMetrics.SpooledBatches.WithLabels(id).Value);
        Assert.NotEmpty(Directory.GetFiles(dir.Path, "*.spool", SearchOption.AllDirectories));

        // The gateway comes back while new batches keep coming: they queue behind the spooled ones.
        await using var server = await RecordingOtlpServer.StartAsync(port);
        for (var i = 20; i < 40; i++)
        {
            await exporter.ConsumeAsync(Batch(id, i), CancellationToken.None);
            await Task.Delay(10);
        }

        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(Sequences(server).Count >= 40), TestTimeouts.Pipeline, "40 batches at the gateway");
        Assert.Equal(Enumerable.Range(0, 40).Select(i => (long)i), Sequences(server));
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(exporter.Spool!.Count == 0), TestTimeouts.Short, "an empty spool");
        Assert.Empty(Directory.GetFiles(dir.Path, "*.spool", SearchOption.AllDirectories));
        Assert.InRange(AgentMetrics.SpoolDrainedBatches.WithLabels(id).Value, 20, 40);
        Assert.Equal(0, AgentMetrics.DroppedPoints.WithLabels(id, "spool_full").Value);
        await exporter.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
    }

    [Fact]
    public async Task Spool_Full_DropsTheOldestCountsAndLogsIt()
    {
        using var dir = new TempDirectory();
        var port = FreePort.Get();
        var id = "otlp/" + UniqueName.For();
        var logger = new ListLogger();
        using var exporter = Exporter(id, Options(port, dir.Path, maxSize: "8KiB"), logger);
        await exporter.StartAsync(CancellationToken.None);
        const int sent = 30;
        for (var i = 0; i < sent; i++)
        {
            await exporter.ConsumeAsync(Batch(id, i, padding: 1500), CancellationToken.None);
        }

        // Every batch is either on disk or dropped as oldest.
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(AgentMetrics.SpooledBatches.WithLabels(id).Value == sent), TestTimeouts.Short, "every batch through the spool");
        var kept = exporter.Spool!.Count;
        var dropped = AgentMetrics.DroppedPoints.WithLabels(id, "spool_full").Value;
        Assert.InRange(kept, 2, 12);
        Assert.Equal(sent - kept, dropped);
        Assert.True(exporter.Spool.Bytes <= 8 * 1024);
        Assert.Contains(logger.Messages, m => m.Contains("spool is full", StringComparison.Ordinal) && m.Contains("oldest", StringComparison.Ordinal));

        await using var server = await RecordingOtlpServer.StartAsync(port);
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(Sequences(server).Count >= kept), TestTimeouts.Pipeline, "the kept batches at the gateway");
        Assert.Equal(Enumerable.Range(sent - kept, kept).Select(i => (long)i), Sequences(server));
        await exporter.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
    }

    [Fact]
    public async Task Spool_AgentRestart_ReplaysTheSpoolFirst()
    {
        using var dir = new TempDirectory();
        var port = FreePort.Get();
        var id = "otlp/" + UniqueName.For();
        var options = Options(port, dir.Path);
        using (var first = Exporter(id, options))
        {
            await first.StartAsync(CancellationToken.None);
            for (var i = 0; i < 10; i++)
            {
                await first.ConsumeAsync(Batch(id, i), CancellationToken.None);
            }

            await TestTimeouts.WaitUntilAsync(() => Task.FromResult(first.Spool!.Count == 10), TestTimeouts.Short, "10 batches in the spool");

            // A second agent process on the same spool is refused.
            using var rival = Exporter(id, options);
            var ex = await Assert.ThrowsAsync<IOException>(() => rival.StartAsync(CancellationToken.None));
            Assert.Contains("in use by another agent process", ex.Message, StringComparison.Ordinal);

            // Shutdown with the gateway away keeps everything on disk (batches still in memory included).
            await first.ConsumeAsync(Batch(id, 10), CancellationToken.None);
            await first.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
        }

        await using var server = await RecordingOtlpServer.StartAsync(port);
        var logger = new ListLogger();
        using var second = Exporter(id, options, logger);
        await second.StartAsync(CancellationToken.None);
        Assert.Contains(logger.Messages, m => m.Contains("11 batches", StringComparison.Ordinal) && m.Contains("from before the restart", StringComparison.Ordinal));
        await second.ConsumeAsync(Batch(id, 11), CancellationToken.None);
        await TestTimeouts.WaitUntilAsync(() => Task.FromResult(Sequences(server).Count >= 12), TestTimeouts.Pipeline, "12 batches at the gateway");
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (long)i), Sequences(server));
        await second.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
    }

    /// <summary>Collects formatted log messages.</summary>
    internal sealed class ListLogger : ILogger<OtlpExporter>
    {
        private readonly List<string> _messages = [];

        public List<string> Messages
        {
            get
            {
                lock (_messages)
                {
                    return [.. _messages];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_messages)
            {
                _messages.Add(formatter(state, exception));
            }
        }
    }
}

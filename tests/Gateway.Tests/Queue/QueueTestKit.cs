using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Gateway.Queue;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Gateway.Tests.Queue;

/// <summary>Requests, options and a recording exporter for the durable-queue tests.</summary>
internal static class QueueTestKit
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static QueueOptions Options(FsyncPolicy fsync = FsyncPolicy.Group, long maxSize = 64 << 20, long segmentSize = 64 << 10) => new()
    {
        Fsync = fsync,
        MaxSize = new ByteSize(maxSize),
        SegmentSize = new ByteSize(segmentSize),
        CursorSyncInterval = TimeSpan.FromMilliseconds(20),
    };

    /// <summary>A request with one gauge named <paramref name="name"/> and <paramref name="points"/> points (bigger payloads with more).</summary>
    public static ExportMetricsServiceRequest Request(string name, int points = 1)
    {
        var gauge = new Gauge();
        for (var i = 0; i < points; i++)
        {
            gauge.DataPoints.Add(new NumberDataPoint { AsDouble = i, TimeUnixNano = (ulong)(i + 1) * 1_000_000_000UL });
        }

        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(new ResourceMetrics { ScopeMetrics = { new ScopeMetrics { Metrics = { new Metric { Name = name, Gauge = gauge } } } } });
        return request;
    }

    public static string NameOf(byte[] payload) => ExportMetricsServiceRequest.Parser.ParseFrom(payload).ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Name;

    public static DurableLog OpenLog(string directory, QueueOptions? options = null, ILogger? logger = null)
    {
        var log = new DurableLog("test", directory, options ?? Options(), logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        log.Open();
        return log;
    }

    /// <summary>Where each record of a segment file starts (walks the length fields).</summary>
    public static List<long> ReadAllOffsets(byte[] segment)
    {
        var offsets = new List<long>();
        long at = 0;
        while (at + DurableLog.HeaderSize <= segment.Length)
        {
            offsets.Add(at);
            at += DurableLog.HeaderSize + System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(segment.AsSpan((int)at));
        }

        return offsets;
    }

    /// <summary>Every record from <paramref name="from"/> to the committed end.</summary>
    public static List<LogRecord> ReadAll(DurableLog log, LogPosition from)
    {
        using var reader = log.OpenReader();
        var records = new List<LogRecord>();
        var at = from;
        while (reader.Read(at) is { } record)
        {
            records.Add(record);
            at = record.Next;
        }

        return records;
    }
}

/// <summary>An exporter that records the metric names it was given; it can be held (tasks stay pending) or made to fail.</summary>
internal sealed class RecordingExporter : IMetricsConsumer
{
    private readonly ConcurrentQueue<string> _names = new();
    private TaskCompletionSource? _gate;

    public List<string> Names => [.. _names];

    /// <summary>Fail this many calls before accepting.</summary>
    public int FailNext { get; set; }

    /// <summary>Calls made, failed ones included.</summary>
    public int Calls;

    /// <summary>Change every request handed over (as an exporter converting deltas in place does), failed calls included.</summary>
    public bool Scribble { get; set; }

    /// <summary>The request objects handed over, in order.</summary>
    public ConcurrentQueue<ExportMetricsServiceRequest> Requests { get; } = new();

    /// <summary>From now on, tasks complete only when <see cref="Release"/> is called.</summary>
    public void Hold() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release() => _gate?.TrySetResult();

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Calls);
        Requests.Enqueue(request);
        var metric = request.ResourceMetrics[0].ScopeMetrics[0].Metrics[0];
        var name = metric.Name;
        if (Scribble)
        {
            metric.Name = "scribbled";
        }

        if (FailNext > 0)
        {
            FailNext--;
            throw new PipelineRefusedException(RefusalReason.QueueFull, "full", TimeSpan.FromMilliseconds(10));
        }

        _names.Enqueue(name);
        return _gate?.Task.WaitAsync(cancellationToken) ?? Task.CompletedTask;
    }
}

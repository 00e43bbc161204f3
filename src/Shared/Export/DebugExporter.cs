using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Otlp;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Shared.Export;

/// <summary><c>exporters.debug</c>: what passes through, for people looking at a pipeline.</summary>
public sealed class DebugExporterOptions
{
    /// <summary>Basic: one line per request; <c>detailed</c>: the whole request as OTLP/JSON.</summary>
    public DebugVerbosity Verbosity { get; set; } = DebugVerbosity.Basic;
}

public enum DebugVerbosity
{
    Basic,
    Normal,
    Detailed,
}

/// <summary>
/// Writes a summary (or the data as OTLP/JSON) of every request to the log, or to <paramref name="output"/> when
/// one is given (the agent prints to stdout; its logs go to stderr).
/// </summary>
public sealed partial class DebugExporter(string id, DebugExporterOptions options, ILogger<DebugExporter> logger, TextWriter? output = null) : IMetricsConsumer
{
    /// <summary>Requests seen, for people and tests.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    private long _requests;

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        var metrics = 0;
        foreach (var rm in request.ResourceMetrics)
        {
            foreach (var sm in rm.ScopeMetrics)
            {
                metrics += sm.Metrics.Count;
            }
        }

        Interlocked.Increment(ref _requests);
        if (output is not null)
        {
            var text = options.Verbosity == DebugVerbosity.Detailed
                ? OtlpJson.Format(request)
                : $"{id}: {request.ResourceMetrics.Count} resources, {metrics} metrics, {MetricsCounting.DataPoints(request)} data points";
            lock (output)
            {
                output.WriteLine(text);
                output.Flush();
            }

            return Task.CompletedTask;
        }

        LogSummary(logger, id, request.ResourceMetrics.Count, metrics, MetricsCounting.DataPoints(request));
        if (options.Verbosity == DebugVerbosity.Detailed)
        {
            LogDetail(logger, id, OtlpJson.Format(request));
        }

        return Task.CompletedTask;
    }

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Exporter {Exporter}: {Resources} resources, {Metrics} metrics, {Points} data points.")]
    private static partial void LogSummary(ILogger logger, string exporter, int resources, int metrics, int points);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Information, Message = "Exporter {Exporter} data: {Json}")]
    private static partial void LogDetail(ILogger logger, string exporter, string json);
}

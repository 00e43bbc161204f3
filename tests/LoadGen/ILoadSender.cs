using OpenTelemetry.Proto.Collector.Metrics.V1;

namespace PgOtelGateway.LoadGen;

/// <summary>What one request came back with.</summary>
/// <param name="Refused">The whole request was refused (an error status).</param>
/// <param name="RejectedPoints">Points the receiver rejected in an otherwise accepted request (OTLP partial success).</param>
internal readonly record struct SendOutcome(bool Refused, long RejectedPoints);

/// <summary>Sends one request of the simulated agents' output over one protocol.</summary>
internal interface ILoadSender : IDisposable
{
    /// <summary>The last error seen, for the report.</summary>
    string? LastError { get; }

    Task<SendOutcome> SendAsync(ExportMetricsServiceRequest request);
}

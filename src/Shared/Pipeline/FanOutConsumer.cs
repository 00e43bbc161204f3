using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;


namespace PgOtelGateway.Shared.Pipeline;

/// <summary>
/// Hands a request to several consumers (exporters of one pipeline, or pipelines sharing a receiver). Each gets
/// its own copy, because consumers own and may change what they are given; the data counts as accepted only
/// when all of them accepted it.
/// </summary>
public sealed class FanOutConsumer(IReadOnlyList<IMetricsConsumer> consumers) : IMetricsConsumer
{
    /// <inheritdoc />
    public async Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        if (consumers.Count == 1)
        {
            await consumers[0].ConsumeAsync(request, cancellationToken).ConfigureAwait(false);
            return;
        }

        var tasks = new Task[consumers.Count];
        for (var i = 0; i < consumers.Count; i++)
        {
            var copy = i == consumers.Count - 1 ? request : request.Clone();
            tasks[i] = consumers[i].ConsumeAsync(copy, cancellationToken);
        }

        await Task.WhenAll(tasks).ConfigureAwait(false);
    }
}

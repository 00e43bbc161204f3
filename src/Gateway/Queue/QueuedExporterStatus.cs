using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Gateway.Queue;

/// <summary>
/// An exporter as the admin API shows it behind the durable queue: its own delivery counters, with the queue
/// columns (records, bytes, oldest age) taken from its readers of the durable queue (one per pipeline it is in), plus
/// what a self-persisting exporter still holds. The queues' readers exist once the gateway has started.
/// </summary>
internal sealed class QueuedExporterStatus(string id, IMetricsConsumer exporter, IReadOnlyList<DurableQueue> queues) : IExporterStatus
{
    public ExporterSnapshot Snapshot()
    {
        var own = (exporter as IExporterStatus)?.Snapshot() ?? new ExporterSnapshot(id, 0, 0, null, 0, 0, 0, null, null);
        long records = 0, bytes = 0;
        TimeSpan? oldest = null;
        foreach (var queue in queues)
        {
            foreach (var reader in queue.Readers)
            {
                if (reader.ExporterId != id)
                {
                    continue;
                }

                records += reader.DepthRecords;
                bytes += reader.DepthBytes;
                if (reader.OldestAge is { } age && (oldest is null || age > oldest))
                {
                    oldest = age;
                }
            }
        }

        if (exporter is ISelfPersistingExporter && own.QueueRecords > 0)
        {
            // Staged data was confirmed to the queue but still waits for its target.
            records += own.QueueRecords;
            bytes += own.QueueBytes;
            if (own.OldestItemAge is { } staged && (oldest is null || staged > oldest))
            {
                oldest = staged;
            }
        }

        return own with { QueueRecords = records, QueueBytes = bytes, OldestItemAge = oldest };
    }
}

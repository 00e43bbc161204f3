namespace PgOtelGateway.Gateway.Admin;

// The read-only views the admin API shows. Each component implements (or is adapted to) one of these; the admin
// layer only reads snapshots and never holds a lock of the component. Snapshots are plain records so they
// serialize straight to the JSON the API returns (snake_case keys, times as ISO-8601 UTC).

/// <summary>Where a ring member stands.</summary>
internal enum RingMemberState
{
    /// <summary>Known but not ready yet: owns nothing.</summary>
    Joining,

    /// <summary>Ready and owning its share of streams.</summary>
    Active,

    /// <summary>Draining before it exits: owns nothing any more.</summary>
    Leaving,
}

/// <summary>One member of the consistent-hash ring as this gateway sees it.</summary>
/// <param name="Id">The member id (<c>gateway.ring.self</c> of that member).</param>
/// <param name="Address">Where its OTLP/gRPC receiver is reached (<c>host:port</c>).</param>
/// <param name="State">JOINING, ACTIVE or LEAVING.</param>
/// <param name="LastHeartbeat">When it was last seen alive (heartbeat, DNS answer); null for a static member never checked.</param>
/// <param name="OwnedFraction">The share of the hash space it owns, 0–1 (0 unless ACTIVE).</param>
internal sealed record RingMemberSnapshot(string Id, string Address, RingMemberState State, DateTimeOffset? LastHeartbeat, double OwnedFraction);

/// <summary>The ring as this gateway sees it.</summary>
/// <param name="SelfId">This gateway's member id.</param>
/// <param name="Members">Every member, this one included.</param>
internal sealed record RingSnapshot(string SelfId, IReadOnlyList<RingMemberSnapshot> Members);

/// <summary>The consistent-hash ring (<c>gateway.ring</c>).</summary>
internal interface IRingStatus
{
    /// <summary>The members now.</summary>
    RingSnapshot Snapshot();

    /// <summary>
    /// Turns this member LEAVING: it stops owning streams and starts to drain, then the process exits. Completes
    /// once the state change is in effect (published to the other members), not when the drain ends; calling it
    /// again while leaving does nothing.
    /// </summary>
    Task LeaveAsync(CancellationToken cancellationToken);
}

/// <summary>The replica an <c>ha_tracker</c> accepts for one cluster.</summary>
/// <param name="Cluster">The cluster (<c>db.cluster</c> or the configured attribute).</param>
/// <param name="ElectedReplica">The replica whose data is accepted (<c>agent.id</c> or the configured attribute).</param>
/// <param name="Since">When that replica was elected.</param>
/// <param name="Failovers">How many times the election moved to another replica since this gateway started.</param>
internal sealed record HaClusterSnapshot(string Cluster, string ElectedReplica, DateTimeOffset Since, long Failovers);

/// <summary>One <c>ha_tracker</c> processor's elections.</summary>
/// <param name="Processor">The processor id, e.g. <c>ha_tracker</c>.</param>
/// <param name="Clusters">One row per cluster seen.</param>
internal sealed record HaSnapshot(string Processor, IReadOnlyList<HaClusterSnapshot> Clusters);

/// <summary>An <c>ha_tracker</c> processor.</summary>
internal interface IHaStatus
{
    /// <summary>The elections now.</summary>
    HaSnapshot Snapshot();
}

/// <summary>One <c>dedupe</c> processor's counters (cumulative since start, except the cache size).</summary>
/// <param name="Processor">The processor id, e.g. <c>dedupe</c>.</param>
/// <param name="CacheSize">Identities in the local cache now.</param>
/// <param name="HitsLocal">Points dropped as duplicates by the local cache.</param>
/// <param name="HitsRedis">Points dropped as duplicates because Redis already held their identity.</param>
/// <param name="Misses">Points that were new and passed on.</param>
/// <param name="RedisErrors">Redis calls that failed (the request then ran on local-only dedup).</param>
/// <param name="RedisRoundTrips">Redis round trips made (one per request at most).</param>
internal sealed record DedupSnapshot(string Processor, long CacheSize, long HitsLocal, long HitsRedis, long Misses, long RedisErrors, long RedisRoundTrips);

/// <summary>A <c>dedupe</c> processor.</summary>
internal interface IDedupStatus
{
    /// <summary>The counters now.</summary>
    DedupSnapshot Snapshot();
}

/// <summary>One exporter's queue and delivery counters (cumulative since start, except the queue).</summary>
/// <param name="Name">The exporter id, e.g. <c>prometheusremotewrite</c>.</param>
/// <param name="QueueRecords">Records (requests or batches) waiting for this exporter.</param>
/// <param name="QueueBytes">Their size in bytes (0 when the exporter cannot tell).</param>
/// <param name="OldestItemAge">How long the oldest waiting record has waited; null when the queue is empty.</param>
/// <param name="SentPoints">Points delivered.</param>
/// <param name="FailedPoints">Points whose send failed and is retried.</param>
/// <param name="DroppedPoints">Points given up on (not retryable, or too old).</param>
/// <param name="LastError">The last send error; it must not hold credentials (the admin layer scrubs known secrets anyway).</param>
/// <param name="LastErrorTime">When it happened.</param>
internal sealed record ExporterSnapshot(
    string Name,
    long QueueRecords,
    long QueueBytes,
    TimeSpan? OldestItemAge,
    long SentPoints,
    long FailedPoints,
    long DroppedPoints,
    string? LastError,
    DateTimeOffset? LastErrorTime);

/// <summary>An exporter, with its queue.</summary>
internal interface IExporterStatus
{
    /// <summary>The queue and counters now.</summary>
    ExporterSnapshot Snapshot();
}

/// <summary>
/// An exporter that takes data over by persisting it itself (awss3's staging folder): what it holds waits in addition
/// to the durable queue's records, so the admin API adds its queue to the durable queue's.
/// </summary>
internal interface ISelfPersistingExporter : IExporterStatus
{
}

/// <summary>One pipeline of the configuration: the component ids it runs, in order.</summary>
internal sealed record PipelineSummary(string Id, IReadOnlyList<string> Receivers, IReadOnlyList<string> Processors, IReadOnlyList<string> Exporters);

/// <summary>The process as a whole.</summary>
/// <param name="Id">The gateway id (<c>gateway.id</c>).</param>
/// <param name="Version">The build version.</param>
/// <param name="StartedAt">When the process started.</param>
/// <param name="Uptime">How long it has run.</param>
/// <param name="Ready">Whether it takes traffic (what <c>/ready</c> says).</param>
/// <param name="Pipelines">The configured pipelines.</param>
internal sealed record PipelineStatusSnapshot(
    string Id,
    string Version,
    DateTimeOffset StartedAt,
    TimeSpan Uptime,
    bool Ready,
    IReadOnlyList<PipelineSummary> Pipelines);

/// <summary>The gateway process: id, version, uptime, readiness, pipelines.</summary>
internal interface IPipelineStatus
{
    /// <summary>The state now.</summary>
    PipelineStatusSnapshot Snapshot();
}

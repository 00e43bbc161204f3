namespace PgOtelGateway.Agent.Catalog;

/// <summary>How a catalog metric is exposed in OTLP.</summary>
internal enum MetricKind
{
    /// <summary>A level (size, count now): OTLP Gauge.</summary>
    Gauge,

    /// <summary>A running total since the server started: OTLP monotonic cumulative Sum with a start time.</summary>
    Counter,
}

/// <summary>One metric of the catalog: its name, kind, UCUM unit and description.</summary>
internal sealed record MetricDefinition(string Name, MetricKind Kind, string Unit, string Description);

/// <summary>
/// Every metric the postgresql receiver can emit (docs/metrics.md lists them with their attributes, source
/// views and versions). Names and attribute names follow the reference catalog.
/// </summary>
internal static class MetricCatalog
{
    public static readonly MetricDefinition Up = G("postgresql.up", "", "1 when the instance answered this scrape, 0 when it did not.");
    public static readonly MetricDefinition MaxConnections = G("postgresql.settings.max_connections", "{connection}", "The server's max_connections setting.");
    public static readonly MetricDefinition DatabaseSize = G("postgresql.database.size", "By", "Total size of the database.");
    public static readonly MetricDefinition DatabaseConnections = G("postgresql.database.connections", "{connection}", "Backends connected to the database, by connection_state (active, idle, idle_in_transaction, other; they add up to numbackends).");
    public static readonly MetricDefinition DatabaseTransactions = C("postgresql.database.transactions", "{transaction}", "Transactions committed or rolled back, by transaction_type.");
    public static readonly MetricDefinition DatabaseCommits = C("postgresql.database.commits", "{transaction}", "Transactions committed.");
    public static readonly MetricDefinition DatabaseRollbacks = C("postgresql.database.rollbacks", "{transaction}", "Transactions rolled back.");
    public static readonly MetricDefinition DatabaseBlocks = C("postgresql.database.blocks", "{block}", "Disk blocks read from disk or found in shared buffers, by block_type.");
    public static readonly MetricDefinition DatabaseTuples = C("postgresql.database.tuples", "{tuple}", "Rows returned, fetched, inserted, updated and deleted, by operation.");
    public static readonly MetricDefinition DatabaseConflicts = C("postgresql.database.conflicts", "{query}", "Queries cancelled on a standby by recovery conflicts, by conflict_type.");
    public static readonly MetricDefinition DatabaseDeadlocks = C("postgresql.database.deadlocks", "{deadlock}", "Deadlocks detected.");
    public static readonly MetricDefinition DatabaseChecksumFailures = C("postgresql.database.checksum_failures", "{failure}", "Data page checksum failures.");
    public static readonly MetricDefinition DatabaseTempBytes = C("postgresql.database.temp_bytes", "By", "Bytes written to temporary files.");
    public static readonly MetricDefinition DatabaseSessions = C("postgresql.database.sessions", "{session}", "Sessions established (PostgreSQL 14+).");
    public static readonly MetricDefinition DatabaseAge = G("postgresql.database.age", "{transaction}", "Age of the database's oldest unfrozen transaction id (wraparound risk past 2^31).");
    public static readonly MetricDefinition CacheHitRatio = G("postgresql.cache_hit_ratio", "1", "Share of block reads served from shared buffers.");
    public static readonly MetricDefinition TransactionRate = G("postgresql.transaction_rate", "{transaction}/s", "Transactions per second averaged since statistics were last reset.");
    public static readonly MetricDefinition ConnectionsActive = G("postgresql.connections.active", "{connection}", "Backends running a query, by database_name, user_name, application_name.");
    public static readonly MetricDefinition ConnectionsIdle = G("postgresql.connections.idle", "{connection}", "Idle backends, by database_name, user_name, application_name.");
    public static readonly MetricDefinition ConnectionsIdleInTransaction = G("postgresql.connections.idle_in_transaction", "{connection}", "Backends idle inside a transaction.");
    public static readonly MetricDefinition ConnectionsWaiting = G("postgresql.connections.waiting", "{connection}", "Backends waiting, by database_name, wait_event_type, wait_event.");
    public static readonly MetricDefinition Locks = G("postgresql.locks", "{lock}", "Locks held or awaited, by mode and granted.");
    public static readonly MetricDefinition LongRunningQueries = G("postgresql.queries.long_running", "{query}", "Non-idle queries running longer than the threshold, by database_name and state.");
    public static readonly MetricDefinition LongestQuery = G("postgresql.queries.max_duration", "s", "Duration of the longest-running non-idle query, by database_name.");
    public static readonly MetricDefinition LongestTransaction = G("postgresql.transactions.max_duration", "s", "Age of the oldest open transaction, by database_name.");
    public static readonly MetricDefinition ReplicationLag = G("postgresql.replication.lag", "By", "WAL not yet flushed by each standby, by application_name, client_addr, state.");
    public static readonly MetricDefinition ReplicationReplayLag = G("postgresql.replication.replay_lag", "s", "Replay lag each standby reports, by application_name.");
    public static readonly MetricDefinition ReplicationLagSeconds = G("postgresql.replication.lag_seconds", "s", "On a standby: time since the last replayed transaction, by replica_name (cluster_name, else the instance).");
    public static readonly MetricDefinition Replicas = G("postgresql.replication.replicas", "{replica}", "Standbys streaming from this primary.");
    public static readonly MetricDefinition SlotLag = G("postgresql.replication_slot.lag_bytes", "By", "WAL retained for each replication slot, by slot_name, slot_type, active.");
    public static readonly MetricDefinition WalBytes = C("postgresql.wal.bytes", "By", "WAL generated since the cluster was created (current LSN).");
    public static readonly MetricDefinition WalFiles = G("postgresql.wal.files", "{file}", "WAL segment files in pg_wal.");
    public static readonly MetricDefinition WalSize = G("postgresql.wal.size", "By", "Total size of pg_wal.");
    public static readonly MetricDefinition Checkpoints = C("postgresql.bgwriter.checkpoints", "{checkpoint}", "Checkpoints performed, by checkpoint_type (timed, requested).");
    public static readonly MetricDefinition CheckpointTime = C("postgresql.checkpoint_time", "ms", "Time spent in checkpoints, by checkpoint_type (write, sync).");
    public static readonly MetricDefinition BuffersWritten = C("postgresql.bgwriter.buffers_written", "{buffer}", "Buffers written, by source (checkpoint, bgwriter, backend).");
    public static readonly MetricDefinition BuffersAllocated = C("postgresql.bgwriter.buffers_allocated", "{buffer}", "Buffers allocated.");
    public static readonly MetricDefinition BgwriterMaxWritten = C("postgresql.bgwriter.maxwritten", "{stop}", "Times the background writer stopped a cleaning scan for writing too many buffers.");
    public static readonly MetricDefinition TableSize = G("postgresql.table.size", "By", "Size of the table including indexes and TOAST.");
    public static readonly MetricDefinition TableRows = G("postgresql.table.rows", "{row}", "Estimated live rows.");
    public static readonly MetricDefinition TableDeadRows = G("postgresql.table.dead_rows", "{row}", "Estimated dead rows.");
    public static readonly MetricDefinition TableBloatRatio = G("postgresql.table.bloat_ratio", "1", "Dead rows as a share of all rows (n_dead / (n_live + n_dead)).");
    public static readonly MetricDefinition TableModifications = C("postgresql.table.modifications", "{row}", "Rows inserted, updated, HOT-updated and deleted, by operation.");
    public static readonly MetricDefinition TableVacuum = C("postgresql.table.vacuum", "{vacuum}", "Vacuums, by vacuum_type (manual, auto).");
    public static readonly MetricDefinition TableAnalyze = C("postgresql.table.analyze", "{analyze}", "Analyzes, by analyze_type (manual, auto).");
    public static readonly MetricDefinition TableScans = C("postgresql.table.scans", "{scan}", "Scans, by scan_type (sequential, index).");
    public static readonly MetricDefinition TableBlocks = C("postgresql.table.blocks", "{block}", "Blocks of the table's heap and TOAST table read from disk (read) or found in shared buffers (hit), by source (heap, toast) and block_type.");
    public static readonly MetricDefinition TableLastVacuumAge = G("postgresql.table.vacuum_age", "s", "Seconds since the last vacuum of either kind.");
    public static readonly MetricDefinition IndexSize = G("postgresql.index.size", "By", "Size of the index.");
    public static readonly MetricDefinition IndexScans = C("postgresql.index.scans", "{scan}", "Index scans.");
    public static readonly MetricDefinition IndexTuples = C("postgresql.index.tuples", "{tuple}", "Index entries returned (read) and live rows fetched (fetch), by operation.");
    public static readonly MetricDefinition IndexBlocks = C("postgresql.index.blocks", "{block}", "Blocks of the index read from disk (read) or found in shared buffers (hit), by block_type.");
    public static readonly MetricDefinition StatementCalls = C("postgresql.statements.calls", "{call}", "Calls of the top statements by total time, by queryid, database_name, user_name.");
    public static readonly MetricDefinition StatementTime = C("postgresql.statements.time", "ms", "Execution time of the top statements.");
    public static readonly MetricDefinition StatementRows = C("postgresql.statements.rows", "{row}", "Rows returned or affected by the top statements.");
    public static readonly MetricDefinition IoOperations = C("postgresql.io.operations", "{operation}", "I/O operations by backend_type, object, context and operation (PostgreSQL 16+).");
    public static readonly MetricDefinition ScrapeErrors = C("postgresql.scrape.errors", "{error}", "Queries of this agent that failed or timed out, by database_name and query.");
    public static readonly MetricDefinition ScrapeDuration = G("postgresql.scrape.duration", "s", "How long this scrape took, by database_name.");

    public static readonly IReadOnlyList<MetricDefinition> All = typeof(MetricCatalog)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(f => f.FieldType == typeof(MetricDefinition))
        .Select(f => (MetricDefinition)f.GetValue(null)!)
        .ToList();

    private static readonly HashSet<string> Names = new(All.Select(m => m.Name), StringComparer.Ordinal);

    public static bool IsKnown(string name) => Names.Contains(name);

    private static MetricDefinition G(string name, string unit, string description) => new(name, MetricKind.Gauge, unit, description);

    private static MetricDefinition C(string name, string unit, string description) => new(name, MetricKind.Counter, unit, description);
}

using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Agent.Catalog;

namespace PgOtelGateway.Agent.Collection;

/// <summary>
/// Scrapes one PostgreSQL instance: cluster-wide statistics in one database, per-database statistics (tables,
/// indexes) in each database with bounded parallelism, then the custom queries. A view that does not exist in
/// this version costs one log line and its metrics; a query that fails or times out is counted in
/// <c>postgresql.scrape.errors</c> and the rest of the scrape still arrives.
/// </summary>
internal sealed partial class PostgresqlScraper : IAsyncDisposable
{
    private readonly PostgresqlReceiverOptions _options;
    private readonly PgConnectionFactory _connections;
    private readonly ConnectionBroker _broker;
    private readonly ILogger _logger;
    private readonly string _configuredRole;
    private readonly HashSet<string> _reportedMissing = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DatabaseState> _databaseStates = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Database, string Query), long> _errors = [];
    private readonly string _agentId;
    private readonly string _hostName;
    private string _lastRole = "";
    private string _lastVersion = "";

    /// <summary>Database sizes by name as last measured (see <see cref="ScrapeClusterAsync"/>).</summary>
    private Dictionary<string, long> _databaseSizes = new(StringComparer.Ordinal);

    /// <summary>The size period of the last database size measurement.</summary>
    private long _databaseSizesBucket = long.MinValue;

    public PostgresqlScraper(string endpoint, string configuredRole, PostgresqlReceiverOptions options, ILogger logger, TimeProvider time)
    {
        _options = options;
        _configuredRole = configuredRole;
        _connections = new PgConnectionFactory(endpoint, options);
        _broker = new ConnectionBroker(_connections.DataSource, options.ConnectionPool, time);
        _logger = logger;
        _agentId = options.Resource.AgentId.Length > 0 ? options.Resource.AgentId : Environment.MachineName.ToLowerInvariant();
        _hostName = options.Resource.HostName.Length > 0 ? options.Resource.HostName : Environment.MachineName.ToLowerInvariant();
    }

    /// <summary><c>db.instance</c> of this scraper.</summary>
    public string Instance => _connections.Instance;

    /// <summary>Why the last scrape could not reach the instance, or null when it could.</summary>
    public string? LastError { get; private set; }

    /// <summary>Sessions this scraper opened since it started (steady state: none per scrape).</summary>
    public long SessionsOpened => _broker.Opened;

    /// <summary>Sessions closed, by reason (for diagnosis).</summary>
    public IReadOnlyDictionary<string, long> SessionsClosed => _broker.ClosedByReason;

    /// <summary>Scrapes once; <paramref name="time"/> is the interval boundary every point is stamped with.</summary>
    public async Task<ResourceMetrics> ScrapeAsync(DateTimeOffset time, CancellationToken cancellationToken)
    {
        var started = Stopwatch.StartNew();
        var set = new MetricSet((ulong)time.ToUnixTimeMilliseconds() * 1_000_000, 0, name => !_options.Metrics.TryGetValue(name, out var s) || s.Enabled);
        var resource = new ResourceInfo { Role = _configuredRole };
        var up = 0;
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            // One scrape never runs into the next interval.
            deadline.CancelAfter(_options.CollectionInterval - TimeSpan.FromMilliseconds(250));
            resource.Time = time;
            var databases = await ScrapeClusterAsync(set, resource, deadline.Token).ConfigureAwait(false);
            up = 1;
            LastError = null;
            if (Runs(_options.QueryConfig.ReadOnlyStats, resource, time))
            {
                await ScrapeDatabasesAsync(set, databases, time, deadline.Token).ConfigureAwait(false);
            }

            await RunCustomQueriesAsync(set, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or OperationCanceledException or TimeoutException or InvalidOperationException && !cancellationToken.IsCancellationRequested)
        {
            var reason = TlsOrMessage(ex);
            LastError = reason;
            CountError(_connections.DefaultDatabase, "connect");
            LogInstanceDown(_logger, Instance, reason);
        }

        // A scrape that could not read the role and version keeps the last ones seen, so the instance's resource (and
        // target_info downstream) stays one series while it is down or slow instead of splitting into two.
        if (resource.Version.Length > 0)
        {
            _lastRole = resource.Role;
            _lastVersion = resource.Version;
        }
        else
        {
            resource.Role = resource.Role.Length > 0 ? resource.Role : _lastRole;
            resource.Version = _lastVersion;
        }

        set.Add(MetricCatalog.Up, up);
        foreach (var ((database, query), count) in _errors)
        {
            set.Add(MetricCatalog.ScrapeErrors, count, ("database_name", database), ("query", query));
        }

        set.Add(MetricCatalog.ScrapeDuration, started.Elapsed.TotalSeconds);
        set.StampStart();
        _broker.Sweep();
        return BuildResource(set, resource);
    }

    /// <summary>The databases not to measure at a scrape between size measurements: measured already, or excluded.</summary>
    private string[] KnownDatabases(Dictionary<string, long> measured)
    {
        var known = new string[measured.Count + _options.ExcludeDatabases.Count];
        measured.Keys.CopyTo(known, 0);
        _options.ExcludeDatabases.CopyTo(known, measured.Count);
        return known;
    }

    private string TlsOrMessage(Exception ex) =>
        _connections.LastTlsProblem is { } tls ? "TLS: " + tls : ex.Message;

    private ResourceMetrics BuildResource(MetricSet set, ResourceInfo info)
    {
        var resource = new Resource();
        void Add(string key, string value)
        {
            if (value.Length > 0)
            {
                resource.Attributes.Add(new KeyValue { Key = key, Value = new AnyValue { StringValue = value } });
            }
        }

        Add("service.name", "postgresql");
        Add("service.instance.id", Instance);
        Add("db.system", "postgresql");
        Add("db.cluster", _options.Resource.Cluster);
        Add("db.instance", Instance);
        Add("db.role", info.Role);
        Add("db.version", info.Version);
        Add("host.name", _hostName);
        Add("deployment.environment", _options.Resource.Environment);
        Add("agent.id", _agentId);
        foreach (var (key, value) in _options.Resource.Attributes)
        {
            Add(key, value);
        }

        var scope = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent/postgresql", Version = typeof(PostgresqlScraper).Assembly.GetName().Version?.ToString(3) ?? "" } };
        scope.Metrics.Add(set.Metrics);
        var rm = new ResourceMetrics { Resource = resource };
        rm.ScopeMetrics.Add(scope);
        return rm;
    }

    /// <summary>
    /// Whether a query group runs on this instance at this scrape (<c>query_config</c>): its target against the
    /// role detected now, and its interval on the same grid as the scrapes (so HA agents agree). A group aimed at
    /// replicas runs on the primary when the receiver has no replicas to send it to.
    /// </summary>
    private bool Runs(QueryTarget group, ResourceInfo info, DateTimeOffset at)
    {
        var onTarget = group.Target switch
        {
            "primary" => !info.InRecovery,
            "replica" => info.InRecovery || _options.Replicas.Count == 0,
            _ => true,
        };
        if (!onTarget)
        {
            return false;
        }

        if (group.Interval <= _options.CollectionInterval)
        {
            return true;
        }

        // The first scrape at or after each boundary of the group's interval.
        var now = at.ToUnixTimeMilliseconds();
        var interval = (long)group.Interval.TotalMilliseconds;
        return now / interval != (now - (long)_options.CollectionInterval.TotalMilliseconds) / interval;
    }

    private sealed class ResourceInfo
    {
        public DateTimeOffset Time;
        public string Role = "";
        public string Version = "";
        public int VersionNum;
        public bool InRecovery;
    }

    // ---------------- cluster-wide ----------------

    private async Task<List<string>> ScrapeClusterAsync(MetricSet set, ResourceInfo info, CancellationToken ct)
    {
        var db = _connections.DefaultDatabase;
        var connection = await _broker.AcquireAsync(db, ct).ConfigureAwait(false);
        var broken = false;
        try
        {
            await using (var cmd = new NpgsqlCommand(
                "SELECT current_setting('server_version_num')::int, current_setting('server_version'), pg_is_in_recovery(), " +
                "extract(epoch FROM pg_postmaster_start_time())::float8, current_setting('max_connections')::int", connection))
            await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                await r.ReadAsync(ct).ConfigureAwait(false);
                info.VersionNum = r.GetInt32(0);
                info.Version = r.GetString(1).Split(' ')[0];
                info.InRecovery = r.GetBoolean(2);
                set.Start = (ulong)(r.GetDouble(3) * 1e9);
                set.Add(MetricCatalog.MaxConnections, (long)r.GetInt32(4));
            }

            // The role is read every scrape, so a promoted replica shows as primary at once.
            info.Role = info.InRecovery ? "replica" : "primary";
            var v = info.VersionNum;

            var databases = new List<string>();

            // pg_database_size stats every file of a database: with thousands of relations per database it costs the
            // server more than all the other statistics together. Like table and index sizes it is measured once per
            // query_config.size_stats.interval, and the last measurement is re-sent in between; a database not
            // measured yet (new since) is measured at once.
            var sizesBucket = SizesBucket(info.Time);
            var databaseSizes = Enabled(MetricCatalog.DatabaseSize);
            var measureSizes = databaseSizes && (sizesBucket < 0 || sizesBucket != _databaseSizesBucket);
            var knownSizes = measureSizes ? null : _databaseSizes;
            var measuredSizes = new Dictionary<string, long>(StringComparer.Ordinal);
            var sizeColumn = !databaseSizes ? "NULL::bigint"
                : measureSizes ? "pg_database_size(d.oid)"
                : "CASE WHEN d.datname::text = ANY($1) THEN NULL ELSE pg_database_size(d.oid) END";
            var statDatabaseComplete = await QueryAsync(connection, db, "pg_stat_database", $"""
                SELECT d.datname, s.numbackends, s.xact_commit, s.xact_rollback, s.blks_read, s.blks_hit,
                       s.tup_returned, s.tup_fetched, s.tup_inserted, s.tup_updated, s.tup_deleted, s.deadlocks,
                       coalesce(s.checksum_failures, 0), s.temp_bytes, {sizeColumn}, age(d.datfrozenxid),
                       extract(epoch FROM now() - coalesce(s.stats_reset, pg_postmaster_start_time()))::float8,
                       {(v >= 140000 ? "s.sessions" : "NULL::bigint")}, d.datallowconn,
                       coalesce(a.active, 0), coalesce(a.idle, 0), coalesce(a.idle_in_transaction, 0)
                FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid
                LEFT JOIN (SELECT datid, count(*) FILTER (WHERE state = 'active') AS active,
                                  count(*) FILTER (WHERE state = 'idle') AS idle,
                                  count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction
                           FROM pg_stat_activity GROUP BY datid) a ON a.datid = d.oid
                WHERE NOT d.datistemplate
                """, r =>
            {
                var name = r.GetString(0);
                if (IsExcluded(name))
                {
                    return;
                }

                var dbAttr = ("database_name", (string?)name);

                // numbackends split by connection_state; "other" (background workers, fastpath, disabled
                // tracking) makes the states add up to numbackends, and every state is always present.
                var backends = (long)r.GetInt32(1);
                var active = r.GetInt64(19);
                var idle = r.GetInt64(20);
                var idleInTransaction = r.GetInt64(21);
                set.Add(MetricCatalog.DatabaseConnections, active, dbAttr, ("connection_state", "active"));
                set.Add(MetricCatalog.DatabaseConnections, idle, dbAttr, ("connection_state", "idle"));
                set.Add(MetricCatalog.DatabaseConnections, idleInTransaction, dbAttr, ("connection_state", "idle_in_transaction"));
                set.Add(MetricCatalog.DatabaseConnections, Math.Max(0, backends - active - idle - idleInTransaction), dbAttr, ("connection_state", "other"));
                var commits = r.GetInt64(2);
                var rollbacks = r.GetInt64(3);
                set.Add(MetricCatalog.DatabaseTransactions, commits, dbAttr, ("transaction_type", "commit"));
                set.Add(MetricCatalog.DatabaseTransactions, rollbacks, dbAttr, ("transaction_type", "rollback"));
                set.Add(MetricCatalog.DatabaseCommits, commits, dbAttr);
                set.Add(MetricCatalog.DatabaseRollbacks, rollbacks, dbAttr);
                var read = r.GetInt64(4);
                var hit = r.GetInt64(5);
                set.Add(MetricCatalog.DatabaseBlocks, read, dbAttr, ("block_type", "read"));
                set.Add(MetricCatalog.DatabaseBlocks, hit, dbAttr, ("block_type", "hit"));
                if (read + hit > 0)
                {
                    set.Add(MetricCatalog.CacheHitRatio, (double)hit / (read + hit), dbAttr);
                }

                set.Add(MetricCatalog.DatabaseTuples, r.GetInt64(6), dbAttr, ("operation", "returned"));
                set.Add(MetricCatalog.DatabaseTuples, r.GetInt64(7), dbAttr, ("operation", "fetched"));
                set.Add(MetricCatalog.DatabaseTuples, r.GetInt64(8), dbAttr, ("operation", "inserted"));
                set.Add(MetricCatalog.DatabaseTuples, r.GetInt64(9), dbAttr, ("operation", "updated"));
                set.Add(MetricCatalog.DatabaseTuples, r.GetInt64(10), dbAttr, ("operation", "deleted"));
                set.Add(MetricCatalog.DatabaseDeadlocks, r.GetInt64(11), dbAttr);
                set.Add(MetricCatalog.DatabaseChecksumFailures, r.GetInt64(12), dbAttr);
                set.Add(MetricCatalog.DatabaseTempBytes, r.GetInt64(13), dbAttr);
                if (!r.IsDBNull(14))
                {
                    measuredSizes[name] = r.GetInt64(14);
                    set.Add(MetricCatalog.DatabaseSize, r.GetInt64(14), dbAttr);
                }
                else if (knownSizes is not null && knownSizes.TryGetValue(name, out var lastSize))
                {
                    measuredSizes[name] = lastSize;
                    set.Add(MetricCatalog.DatabaseSize, lastSize, dbAttr);
                }

                set.Add(MetricCatalog.DatabaseAge, (long)r.GetInt32(15), dbAttr);
                var seconds = r.GetDouble(16);
                if (seconds > 0)
                {
                    set.Add(MetricCatalog.TransactionRate, (commits + rollbacks) / seconds, dbAttr);
                }

                if (!r.IsDBNull(17))
                {
                    set.Add(MetricCatalog.DatabaseSessions, r.GetInt64(17), dbAttr);
                }

                if (r.GetBoolean(18) && (_options.Databases.Count == 0 || _options.Databases.Contains(name)))
                {
                    databases.Add(name);
                }
            }, ct, databaseSizes && knownSizes is not null ? cmd => cmd.Parameters.Add(new NpgsqlParameter { Value = KnownDatabases(knownSizes) }) : null).ConfigureAwait(false);

            // Only the databases that still exist are kept; a failed query measures again at the next scrape.
            _databaseSizes = measuredSizes;
            if (!statDatabaseComplete)
            {
                _databaseSizesBucket = long.MinValue;
            }
            else if (measureSizes)
            {
                _databaseSizesBucket = sizesBucket;
            }

            await QueryAsync(connection, db, "pg_stat_database_conflicts", """
                SELECT c.datname, c.confl_tablespace, c.confl_lock, c.confl_snapshot, c.confl_bufferpin, c.confl_deadlock
                FROM pg_stat_database_conflicts c JOIN pg_database d ON d.oid = c.datid WHERE NOT d.datistemplate
                """, r =>
            {
                if (IsExcluded(r.GetString(0)))
                {
                    return;
                }

                var dbAttr = ("database_name", (string?)r.GetString(0));
                string[] kinds = ["tablespace", "lock", "snapshot", "bufferpin", "deadlock"];
                for (var i = 0; i < kinds.Length; i++)
                {
                    set.Add(MetricCatalog.DatabaseConflicts, r.GetInt64(i + 1), dbAttr, ("conflict_type", kinds[i]));
                }
            }, ct).ConfigureAwait(false);

            await ScrapeActivityAsync(connection, db, set, ct).ConfigureAwait(false);
            await ScrapeReplicationAsync(connection, db, set, info, ct).ConfigureAwait(false);
            await ScrapeBackgroundWriterAsync(connection, db, set, v, ct).ConfigureAwait(false);
            if (_options.StatementsDatabase.Length == 0 || _options.StatementsDatabase == db)
            {
                await ScrapeStatementsAsync(connection, db, set, v, ct).ConfigureAwait(false);
            }
            else
            {
                var statements = await _broker.AcquireAsync(_options.StatementsDatabase, ct).ConfigureAwait(false);
                var statementsBroken = false;
                try
                {
                    await ScrapeStatementsAsync(statements, _options.StatementsDatabase, set, v, ct).ConfigureAwait(false);
                }
                catch (NpgsqlException)
                {
                    statementsBroken = true;
                }
                finally
                {
                    _broker.Release(statements, statementsBroken);
                }
            }
            if (v >= 160000)
            {
                await QueryAsync(connection, db, "pg_stat_io", """
                    SELECT backend_type, object, context, coalesce(reads, 0), coalesce(writes, 0), coalesce(extends, 0), coalesce(hits, 0), coalesce(evictions, 0), coalesce(fsyncs, 0)
                    FROM pg_stat_io
                    """, r =>
                {
                    string[] ops = ["read", "write", "extend", "hit", "evict", "fsync"];
                    for (var i = 0; i < ops.Length; i++)
                    {
                        var count = r.GetInt64(i + 3);
                        if (count > 0)
                        {
                            set.Add(MetricCatalog.IoOperations, count, ("backend_type", r.GetString(0)), ("object", r.GetString(1)), ("context", r.GetString(2)), ("operation", ops[i]));
                        }
                    }
                }, ct).ConfigureAwait(false);
            }

            return databases;
        }
        catch (NpgsqlException)
        {
            broken = true;
            throw;
        }
        finally
        {
            _broker.Release(connection, broken);
        }
    }

    private async Task ScrapeActivityAsync(NpgsqlConnection connection, string db, MetricSet set, CancellationToken ct)
    {
        await QueryAsync(connection, db, "pg_stat_activity", """
            SELECT coalesce(datname, ''), coalesce(usename, ''), coalesce(application_name, ''),
                   CASE WHEN state LIKE 'idle in transaction%' THEN 'idle in transaction' ELSE state END, count(*)
            FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND state IN ('active', 'idle', 'idle in transaction', 'idle in transaction (aborted)') AND pid <> pg_backend_pid()
            GROUP BY 1, 2, 3, 4
            """, r =>
        {
            if (IsExcluded(r.GetString(0)))
            {
                return;
            }

            var attrs = new (string, string?)[] { ("database_name", r.GetString(0)), ("user_name", r.GetString(1)), ("application_name", r.GetString(2)) };
            var count = r.GetInt64(4);
            switch (r.GetString(3))
            {
                case "active":
                    set.Add(MetricCatalog.ConnectionsActive, count, attrs);
                    break;
                case "idle":
                    set.Add(MetricCatalog.ConnectionsIdle, count, attrs);
                    break;
                default:
                    set.Add(MetricCatalog.ConnectionsIdleInTransaction, count, attrs);
                    break;
            }
        }, ct).ConfigureAwait(false);

        await QueryAsync(connection, db, "pg_stat_activity_waiting", """
            SELECT coalesce(datname, ''), wait_event_type, wait_event, count(*)
            FROM pg_stat_activity
            WHERE wait_event IS NOT NULL AND backend_type = 'client backend' AND state <> 'idle'
            GROUP BY 1, 2, 3
            """, r =>
        {
            if (!IsExcluded(r.GetString(0)))
            {
                set.Add(MetricCatalog.ConnectionsWaiting, r.GetInt64(3), ("database_name", r.GetString(0)), ("wait_event_type", r.GetString(1)), ("wait_event", r.GetString(2)));
            }
        }, ct).ConfigureAwait(false);

        await QueryAsync(connection, db, "pg_locks", """
            SELECT mode, granted, count(*) FROM pg_locks GROUP BY 1, 2
            """, r => set.Add(MetricCatalog.Locks, r.GetInt64(2), ("mode", r.GetString(0)), ("granted", r.GetBoolean(1) ? "true" : "false")), ct).ConfigureAwait(false);

        var threshold = _options.LongRunningThreshold.TotalSeconds;
        await QueryAsync(connection, db, "long_running_queries", $"""
            SELECT coalesce(datname, ''), state,
                   count(*) FILTER (WHERE now() - query_start > make_interval(secs => {threshold.ToString(System.Globalization.CultureInfo.InvariantCulture)})),
                   coalesce(max(extract(epoch FROM now() - query_start)), 0)::float8,
                   coalesce(max(extract(epoch FROM now() - xact_start)), 0)::float8
            FROM pg_stat_activity
            WHERE state IS NOT NULL AND state <> 'idle' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
            GROUP BY 1, 2
            """, r =>
        {
            if (IsExcluded(r.GetString(0)))
            {
                return;
            }

            var dbAttr = ("database_name", (string?)r.GetString(0));
            set.Add(MetricCatalog.LongRunningQueries, r.GetInt64(2), dbAttr, ("state", r.GetString(1)));
            set.Add(MetricCatalog.LongestQuery, r.GetDouble(3), dbAttr, ("state", r.GetString(1)));
            set.Add(MetricCatalog.LongestTransaction, r.GetDouble(4), dbAttr, ("state", r.GetString(1)));
        }, ct).ConfigureAwait(false);
    }

    private async Task ScrapeReplicationAsync(NpgsqlConnection connection, string db, MetricSet set, ResourceInfo info, CancellationToken ct)
    {
        if (info.InRecovery)
        {
            // A replica's own lag is its health, not a replication statistic of the primary: always collected.
            await QueryAsync(connection, db, "replay_lag", """
                SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8
                       , current_setting('cluster_name')
                """, r => set.Add(MetricCatalog.ReplicationLagSeconds, r.GetDouble(0), ("replica_name", r.GetString(1) is { Length: > 0 } named ? named : Instance)), ct).ConfigureAwait(false);
        }

        if (!Runs(_options.QueryConfig.ReplicationStats, info, info.Time))
        {
            return;
        }

        if (!info.InRecovery)
        {
            var replicas = 0L;
            await QueryAsync(connection, db, "pg_stat_replication", """
                SELECT coalesce(application_name, ''), coalesce(host(client_addr), 'local'), coalesce(state, ''),
                       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn), 0)::float8,
                       coalesce(extract(epoch FROM replay_lag), 0)::float8
                FROM pg_stat_replication
                """, r =>
            {
                replicas++;
                set.Add(MetricCatalog.ReplicationLag, r.GetDouble(3), ("application_name", r.GetString(0)), ("client_addr", r.GetString(1)), ("state", r.GetString(2)));
                set.Add(MetricCatalog.ReplicationReplayLag, r.GetDouble(4), ("application_name", r.GetString(0)));
            }, ct).ConfigureAwait(false);
            set.Add(MetricCatalog.Replicas, replicas);

            await QueryAsync(connection, db, "wal", """
                SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8, w.files, w.bytes
                FROM (SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM pg_ls_waldir()) w
                """, r =>
            {
                set.Add(MetricCatalog.WalBytes, (long)r.GetDouble(0));
                set.Add(MetricCatalog.WalFiles, r.GetInt64(1));
                set.Add(MetricCatalog.WalSize, (long)r.GetDecimal(2));
            }, ct).ConfigureAwait(false);
        }

        await QueryAsync(connection, db, "pg_replication_slots", $"""
            SELECT slot_name, slot_type, active,
                   coalesce(pg_wal_lsn_diff({(info.InRecovery ? "pg_last_wal_replay_lsn()" : "pg_current_wal_lsn()")}, restart_lsn), 0)::float8
            FROM pg_replication_slots
            """, r => set.Add(MetricCatalog.SlotLag, r.GetDouble(3), ("slot_name", r.GetString(0)), ("slot_type", r.GetString(1)), ("active", r.GetBoolean(2) ? "true" : "false")), ct).ConfigureAwait(false);
    }

    private async Task ScrapeBackgroundWriterAsync(NpgsqlConnection connection, string db, MetricSet set, int version, CancellationToken ct)
    {
        if (version >= 170000)
        {
            // PostgreSQL 17 moved the checkpoint counters to pg_stat_checkpointer.
            await QueryAsync(connection, db, "pg_stat_checkpointer", """
                SELECT num_timed, num_requested, write_time, sync_time, buffers_written FROM pg_stat_checkpointer
                """, r =>
            {
                set.Add(MetricCatalog.Checkpoints, r.GetInt64(0), ("checkpoint_type", "timed"));
                set.Add(MetricCatalog.Checkpoints, r.GetInt64(1), ("checkpoint_type", "requested"));
                set.Add(MetricCatalog.CheckpointTime, r.GetDouble(2), ("checkpoint_type", "write"));
                set.Add(MetricCatalog.CheckpointTime, r.GetDouble(3), ("checkpoint_type", "sync"));
                set.Add(MetricCatalog.BuffersWritten, r.GetInt64(4), ("source", "checkpoint"));
            }, ct).ConfigureAwait(false);
            await QueryAsync(connection, db, "pg_stat_bgwriter", """
                SELECT buffers_clean, maxwritten_clean, buffers_alloc FROM pg_stat_bgwriter
                """, r =>
            {
                set.Add(MetricCatalog.BuffersWritten, r.GetInt64(0), ("source", "bgwriter"));
                set.Add(MetricCatalog.BgwriterMaxWritten, r.GetInt64(1));
                set.Add(MetricCatalog.BuffersAllocated, r.GetInt64(2));
            }, ct).ConfigureAwait(false);
            return;
        }

        await QueryAsync(connection, db, "pg_stat_bgwriter", """
            SELECT checkpoints_timed, checkpoints_req, checkpoint_write_time, checkpoint_sync_time,
                   buffers_checkpoint, buffers_clean, buffers_backend, maxwritten_clean, buffers_alloc
            FROM pg_stat_bgwriter
            """, r =>
        {
            set.Add(MetricCatalog.Checkpoints, r.GetInt64(0), ("checkpoint_type", "timed"));
            set.Add(MetricCatalog.Checkpoints, r.GetInt64(1), ("checkpoint_type", "requested"));
            set.Add(MetricCatalog.CheckpointTime, r.GetDouble(2), ("checkpoint_type", "write"));
            set.Add(MetricCatalog.CheckpointTime, r.GetDouble(3), ("checkpoint_type", "sync"));
            set.Add(MetricCatalog.BuffersWritten, r.GetInt64(4), ("source", "checkpoint"));
            set.Add(MetricCatalog.BuffersWritten, r.GetInt64(5), ("source", "bgwriter"));
            set.Add(MetricCatalog.BuffersWritten, r.GetInt64(6), ("source", "backend"));
            set.Add(MetricCatalog.BgwriterMaxWritten, r.GetInt64(7));
            set.Add(MetricCatalog.BuffersAllocated, r.GetInt64(8));
        }, ct).ConfigureAwait(false);
    }

    private async Task ScrapeStatementsAsync(NpgsqlConnection connection, string db, MetricSet set, int version, CancellationToken ct)
    {
        if (_options.StatementsTopN <= 0)
        {
            return;
        }

        var time = version >= 130000 ? "total_exec_time" : "total_time";
        await QueryAsync(connection, db, "pg_stat_statements", $"""
            SELECT s.queryid::text, d.datname, u.rolname, sum(s.calls)::bigint, sum(s.{time})::float8, sum(s.rows)::bigint
            FROM pg_stat_statements s
            JOIN pg_database d ON d.oid = s.dbid
            JOIN pg_roles u ON u.oid = s.userid
            WHERE s.queryid IS NOT NULL
            GROUP BY 1, 2, 3
            ORDER BY 5 DESC
            LIMIT {_options.StatementsTopN}
            """, r =>
        {
            if (IsExcluded(r.GetString(1)))
            {
                return;
            }

            var attrs = new (string, string?)[] { ("queryid", r.GetString(0)), ("database_name", r.GetString(1)), ("user_name", r.GetString(2)) };
            set.Add(MetricCatalog.StatementCalls, r.GetInt64(3), attrs);
            set.Add(MetricCatalog.StatementTime, r.GetDouble(4), attrs);
            set.Add(MetricCatalog.StatementRows, r.GetInt64(5), attrs);
        }, ct).ConfigureAwait(false);
    }

    // ---------------- per database ----------------

    private async Task ScrapeDatabasesAsync(MetricSet set, List<string> databases, DateTimeOffset at, CancellationToken ct)
    {
        var parallel = Math.Max(1, Math.Min(_options.ConnectionPool.MaxOpenConns, 4));
        var sizesBucket = SizesBucket(at);
        WarnIfPoolTooSmall(databases);
        var states = new DatabaseState[databases.Count];
        lock (_databaseStates)
        {
            for (var i = 0; i < databases.Count; i++)
            {
                if (!_databaseStates.TryGetValue(databases[i], out var state))
                {
                    state = new DatabaseState(databases[i]);
                    _databaseStates[databases[i]] = state;
                }

                states[i] = state;
            }

            // A dropped database's names and sizes go with it.
            if (_databaseStates.Count > databases.Count)
            {
                var current = new HashSet<string>(databases, StringComparer.Ordinal);
                foreach (var gone in _databaseStates.Keys.Where(d => !current.Contains(d)).ToList())
                {
                    _databaseStates.Remove(gone);
                }
            }
        }

        await Parallel.ForEachAsync(states, new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = ct }, async (state, token) =>
        {
            var database = state.Names.Database.Value.StringValue;
            var started = Stopwatch.StartNew();
            // MetricSet is not thread-safe: each database fills its own, merged below.
            state.Set = NewSet(set);
            NpgsqlConnection? connection = null;
            var broken = false;
            try
            {
                connection = await _broker.AcquireAsync(database, token).ConfigureAwait(false);
                await ScrapeTablesAsync(connection, state, sizesBucket, token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
            {
                broken = true;
                CountError(database, "connect");
                LogDatabaseFailed(_logger, Instance, database, TlsOrMessage(ex));
            }
            finally
            {
                if (connection is not null)
                {
                    _broker.Release(connection, broken);
                }
            }

            var seconds = started.Elapsed.TotalSeconds;
            AgentMetrics.ScrapeDuration.WithLabels(Instance, database).Observe(seconds);
            state.Set.Add(MetricCatalog.ScrapeDuration, seconds, ("database_name", database));
        }).ConfigureAwait(false);

        var perDatabase = new List<MetricSet>(states.Length);
        foreach (var state in states)
        {
            if (state.Set is { } filled)
            {
                perDatabase.Add(filled);
                state.Set = null;
            }
        }

        set.AddAll(perDatabase);
    }

    /// <summary>
    /// Sessions are kept one per database: with more databases than the pool keeps, every scrape closes and opens
    /// sessions (a fork, authentication and a cold catalog cache each on the server). Said once per database count.
    /// </summary>
    private void WarnIfPoolTooSmall(List<string> databases)
    {
        var needed = databases.Count + (databases.Contains(_connections.DefaultDatabase) ? 0 : 1);
        var statements = _options.StatementsDatabase;
        if (_options.StatementsTopN > 0 && statements.Length > 0 && statements != _connections.DefaultDatabase && !databases.Contains(statements))
        {
            needed++;
        }

        var kept = _options.ConnectionPool.EffectiveMaxIdleConns;
        if (needed > kept && needed != _warnedSessionsNeeded)
        {
            _warnedSessionsNeeded = needed;
            LogPoolTooSmall(_logger, Instance, needed, kept);
        }
    }

    private int _warnedSessionsNeeded;

    private MetricSet NewSet(MetricSet like) => new(like.Time, like.Start, name => !_options.Metrics.TryGetValue(name, out var s) || s.Enabled);

    /// <summary>
    /// Which <c>query_config.size_stats.interval</c> period <paramref name="at"/> falls in (sizes are measured once per
    /// period, on the same grid for every agent), or -1 when sizes are measured at every scrape.
    /// </summary>
    private long SizesBucket(DateTimeOffset at)
    {
        var interval = _options.QueryConfig.SizeStats.Interval;
        return interval <= _options.CollectionInterval ? -1 : at.ToUnixTimeMilliseconds() / (long)interval.TotalMilliseconds;
    }

    private bool Enabled(MetricDefinition metric) => !_options.Metrics.TryGetValue(metric.Name, out var s) || s.Enabled;

    /// <summary>One database's attribute objects and last measured sizes, kept between scrapes.</summary>
    private sealed class DatabaseState(string database)
    {
        public AttributeCache Names { get; } = new(database);

        /// <summary>Table sizes by (schema, table) as last measured; null before the first measurement.</summary>
        public Dictionary<(string, string), long>? TableSizes;

        /// <summary>Index sizes by (schema, table, index) as last measured.</summary>
        public Dictionary<(string, string, string), long>? IndexSizes;

        /// <summary>The size period of the last complete measurement.</summary>
        public long MeasuredBucket = long.MinValue;

        /// <summary>This scrape's points of the database (filled by one task, merged afterwards).</summary>
        public MetricSet? Set;
    }

    private static readonly KeyValue OpInsert = AttributeCache.Text("operation", "insert");
    private static readonly KeyValue OpUpdate = AttributeCache.Text("operation", "update");
    private static readonly KeyValue OpHotUpdate = AttributeCache.Text("operation", "hot_update");
    private static readonly KeyValue OpDelete = AttributeCache.Text("operation", "delete");
    private static readonly KeyValue OpRead = AttributeCache.Text("operation", "read");
    private static readonly KeyValue OpFetch = AttributeCache.Text("operation", "fetch");
    private static readonly KeyValue VacuumManual = AttributeCache.Text("vacuum_type", "manual");
    private static readonly KeyValue VacuumAuto = AttributeCache.Text("vacuum_type", "auto");
    private static readonly KeyValue AnalyzeManual = AttributeCache.Text("analyze_type", "manual");
    private static readonly KeyValue AnalyzeAuto = AttributeCache.Text("analyze_type", "auto");
    private static readonly KeyValue ScanSequential = AttributeCache.Text("scan_type", "sequential");
    private static readonly KeyValue ScanIndex = AttributeCache.Text("scan_type", "index");
    private static readonly KeyValue BlocksRead = AttributeCache.Text("block_type", "read");
    private static readonly KeyValue BlocksHit = AttributeCache.Text("block_type", "hit");

    private static readonly KeyValue SourceHeap = AttributeCache.Text("source", "heap");
    private static readonly KeyValue SourceToast = AttributeCache.Text("source", "toast");

    private async Task ScrapeTablesAsync(NpgsqlConnection connection, DatabaseState state, long sizesBucket, CancellationToken ct)
    {
        var database = state.Names.Database.Value.StringValue;
        var names = state.Names;
        var set = state.Set!;
        var db = names.Database;
        var tableSizes = Enabled(MetricCatalog.TableSize);
        var indexSizes = Enabled(MetricCatalog.IndexSize);

        // Sizes read every relation's files (pg_total_relation_size: heap, indexes, TOAST, every fork), the most
        // expensive statistics by far, and change slowly: they are measured once per query_config.size_stats.interval
        // and the last measurement is sent with every scrape in between, for the tables and indexes that still exist.
        // They skip relations someone holds exclusively (an ALTER TABLE must not cost every other table); such a
        // relation keeps its last measured size.
        var measure = sizesBucket < 0 || state.MeasuredBucket != sizesBucket || state.TableSizes is null;
        if (measure && (tableSizes || indexSizes))
        {
            var complete = true;
            var tables = new Dictionary<(string, string), long>(state.TableSizes?.Count ?? 64);
            if (tableSizes)
            {
                complete &= await QueryAsync(connection, database, "table_sizes", $"""
                    SELECT t.schemaname, t.relname, pg_total_relation_size(t.relid)
                    FROM pg_stat_user_tables t
                    WHERE NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.relation = t.relid AND l.mode = 'AccessExclusiveLock' AND l.granted)
                    ORDER BY t.n_live_tup + t.n_dead_tup DESC
                    LIMIT {_options.MaxTablesPerDatabase}
                    """, r => tables[(r.GetString(0), r.GetString(1))] = r.GetInt64(2), ct).ConfigureAwait(false);
            }

            var indexes = new Dictionary<(string, string, string), long>(state.IndexSizes?.Count ?? 64);
            if (indexSizes)
            {
                complete &= await QueryAsync(connection, database, "index_sizes", $"""
                    SELECT i.schemaname, i.relname, i.indexrelname, pg_relation_size(i.indexrelid)
                    FROM pg_stat_user_indexes i
                    WHERE NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.relation IN (i.indexrelid, i.relid) AND l.mode = 'AccessExclusiveLock' AND l.granted)
                    ORDER BY i.idx_scan DESC
                    LIMIT {_options.MaxTablesPerDatabase * 4}
                    """, r => indexes[(r.GetString(0), r.GetString(1), r.GetString(2))] = r.GetInt64(3), ct).ConfigureAwait(false);
            }

            // Locked relations keep the size last measured.
            if (state.TableSizes is { } oldTables)
            {
                foreach (var (key, size) in oldTables)
                {
                    tables.TryAdd(key, size);
                }
            }

            if (state.IndexSizes is { } oldIndexes)
            {
                foreach (var (key, size) in oldIndexes)
                {
                    indexes.TryAdd(key, size);
                }
            }

            state.TableSizes = tables;
            state.IndexSizes = indexes;
            // A failed measurement is retried at the next scrape.
            state.MeasuredBucket = complete ? sizesBucket : long.MinValue;
        }

        // Statistics views never wait on locks.
        var sizes = tableSizes ? state.TableSizes : null;
        // At a measurement, the tables and indexes that still exist (the sizes of dropped ones are forgotten).
        var present = measure ? new HashSet<(string, string)>() : null;
        var presentIndexes = measure ? new HashSet<(string, string, string)>() : null;
        // Block counts come from the functions behind pg_statio_user_tables and pg_statio_user_indexes, not from the
        // views: those aggregate every table's indexes again, and joining them doubled the backends' CPU per scrape
        // on 500 tables. A table's index blocks are per index (postgresql.index.blocks), its heap and TOAST here.
        await QueryAsync(connection, database, "pg_stat_user_tables", $"""
            SELECT t.schemaname, t.relname, t.n_live_tup, t.n_dead_tup,
                   t.n_tup_ins, t.n_tup_upd, t.n_tup_hot_upd, t.n_tup_del, t.vacuum_count, t.autovacuum_count, t.analyze_count, t.autoanalyze_count,
                   t.seq_scan, coalesce(t.idx_scan, 0),
                   extract(epoch FROM now() - greatest(t.last_vacuum, t.last_autovacuum))::float8,
                   pg_stat_get_blocks_fetched(t.relid) - pg_stat_get_blocks_hit(t.relid), pg_stat_get_blocks_hit(t.relid),
                   pg_stat_get_blocks_fetched(nullif(c.reltoastrelid, 0)) - pg_stat_get_blocks_hit(nullif(c.reltoastrelid, 0)),
                   pg_stat_get_blocks_hit(nullif(c.reltoastrelid, 0))
            FROM pg_stat_user_tables t
            JOIN pg_class c ON c.oid = t.relid
            ORDER BY t.n_live_tup + t.n_dead_tup DESC
            LIMIT {_options.MaxTablesPerDatabase}
            """, r =>
        {
            var schemaName = r.GetString(0);
            var tableName = r.GetString(1);
            var schema = names.Schema(schemaName);
            var table = names.Table(tableName);
            var live = r.GetInt64(2);
            var dead = r.GetInt64(3);
            set.Add(MetricCatalog.TableRows, live, db, schema, table);
            set.Add(MetricCatalog.TableDeadRows, dead, db, schema, table);
            if (live + dead > 0)
            {
                set.Add(MetricCatalog.TableBloatRatio, (double)dead / (live + dead), db, schema, table);
            }

            set.Add(MetricCatalog.TableModifications, r.GetInt64(4), db, schema, table, OpInsert);
            set.Add(MetricCatalog.TableModifications, r.GetInt64(5), db, schema, table, OpUpdate);
            set.Add(MetricCatalog.TableModifications, r.GetInt64(6), db, schema, table, OpHotUpdate);
            set.Add(MetricCatalog.TableModifications, r.GetInt64(7), db, schema, table, OpDelete);
            set.Add(MetricCatalog.TableVacuum, r.GetInt64(8), db, schema, table, VacuumManual);
            set.Add(MetricCatalog.TableVacuum, r.GetInt64(9), db, schema, table, VacuumAuto);
            set.Add(MetricCatalog.TableAnalyze, r.GetInt64(10), db, schema, table, AnalyzeManual);
            set.Add(MetricCatalog.TableAnalyze, r.GetInt64(11), db, schema, table, AnalyzeAuto);
            set.Add(MetricCatalog.TableScans, r.GetInt64(12), db, schema, table, ScanSequential);
            set.Add(MetricCatalog.TableScans, r.GetInt64(13), db, schema, table, ScanIndex);
            if (!r.IsDBNull(14))
            {
                set.Add(MetricCatalog.TableLastVacuumAge, r.GetDouble(14), db, schema, table);
            }

            set.Add(MetricCatalog.TableBlocks, r.GetInt64(15), db, schema, table, SourceHeap, BlocksRead);
            set.Add(MetricCatalog.TableBlocks, r.GetInt64(16), db, schema, table, SourceHeap, BlocksHit);
            if (!r.IsDBNull(17))
            {
                set.Add(MetricCatalog.TableBlocks, r.GetInt64(17), db, schema, table, SourceToast, BlocksRead);
                set.Add(MetricCatalog.TableBlocks, r.GetInt64(18), db, schema, table, SourceToast, BlocksHit);
            }

            if (sizes is not null && sizes.TryGetValue((schemaName, tableName), out var size))
            {
                set.Add(MetricCatalog.TableSize, size, db, schema, table);
            }

            present?.Add((schemaName, tableName));
        }, ct).ConfigureAwait(false);

        var indexSizeMap = indexSizes ? state.IndexSizes : null;
        await QueryAsync(connection, database, "pg_stat_user_indexes", $"""
            SELECT i.schemaname, i.relname, i.indexrelname, i.idx_scan, i.idx_tup_read, i.idx_tup_fetch,
                   pg_stat_get_blocks_fetched(i.indexrelid) - pg_stat_get_blocks_hit(i.indexrelid), pg_stat_get_blocks_hit(i.indexrelid)
            FROM pg_stat_user_indexes i
            ORDER BY i.idx_scan DESC
            LIMIT {_options.MaxTablesPerDatabase * 4}
            """, r =>
        {
            var schemaName = r.GetString(0);
            var tableName = r.GetString(1);
            var indexName = r.GetString(2);
            var schema = names.Schema(schemaName);
            var table = names.Table(tableName);
            var index = names.Index(indexName);
            if (indexSizeMap is not null && indexSizeMap.TryGetValue((schemaName, tableName, indexName), out var size))
            {
                set.Add(MetricCatalog.IndexSize, size, db, schema, table, index);
            }

            presentIndexes?.Add((schemaName, tableName, indexName));
            set.Add(MetricCatalog.IndexScans, r.GetInt64(3), db, schema, table, index);
            set.Add(MetricCatalog.IndexTuples, r.GetInt64(4), db, schema, table, index, OpRead);
            set.Add(MetricCatalog.IndexTuples, r.GetInt64(5), db, schema, table, index, OpFetch);
            set.Add(MetricCatalog.IndexBlocks, r.GetInt64(6), db, schema, table, index, BlocksRead);
            set.Add(MetricCatalog.IndexBlocks, r.GetInt64(7), db, schema, table, index, BlocksHit);
        }, ct).ConfigureAwait(false);

        if (present is not null && state.TableSizes is { } knownTables && knownTables.Count > present.Count)
        {
            foreach (var key in knownTables.Keys.Where(k => !present.Contains(k)).ToList())
            {
                knownTables.Remove(key);
            }
        }

        if (presentIndexes is not null && state.IndexSizes is { } knownIndexes && knownIndexes.Count > presentIndexes.Count)
        {
            foreach (var key in knownIndexes.Keys.Where(k => !presentIndexes.Contains(k)).ToList())
            {
                knownIndexes.Remove(key);
            }
        }
    }

    // ---------------- custom queries ----------------

    private async Task RunCustomQueriesAsync(MetricSet set, CancellationToken ct)
    {
        for (var q = 0; q < _options.CustomQueries.Count; q++)
        {
            var custom = _options.CustomQueries[q];
            var database = custom.Database.Length > 0 ? custom.Database : _connections.DefaultDatabase;
            var connection = await _broker.AcquireAsync(database, ct).ConfigureAwait(false);
            var broken = false;
            try
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                var duplicates = 0;
                await QueryAsync(connection, database, $"custom_queries[{q}]", custom.Query, r => duplicates += AddCustomRow(set, custom, r, seen), ct).ConfigureAwait(false);
                if (duplicates > 0)
                {
                    // Two rows for one series and timestamp would make Prometheus refuse the whole batch.
                    CountError(database, $"custom_queries[{q}]");
                    LogDuplicateRows(_logger, Instance, q, duplicates);
                }
            }
            catch (NpgsqlException)
            {
                broken = true;
            }
            finally
            {
                _broker.Release(connection, broken);
            }
        }
    }

    /// <summary>Adds one row's metrics; returns how many were left out as repeats of a series already in this scrape.</summary>
    private static int AddCustomRow(MetricSet set, CustomQueryOptions custom, NpgsqlDataReader r, HashSet<string> seen)
    {
        var duplicates = 0;
        foreach (var metric in custom.Metrics)
        {
            var ordinal = r.GetOrdinal(metric.ValueColumn);
            if (r.IsDBNull(ordinal))
            {
                continue;
            }

            var value = Convert.ToDouble(r.GetValue(ordinal), System.Globalization.CultureInfo.InvariantCulture);
            var attributes = new List<(string, string?)>(metric.Attributes.Count);
            foreach (var a in metric.Attributes)
            {
                var col = r.GetOrdinal(a.Column);
                attributes.Add((a.Name.Length > 0 ? a.Name : a.Column, AttributeText(r, col)));
            }

            if (!seen.Add(metric.Name + "\u0001" + string.Join("\u0002", attributes.Select(a => a.Item1 + "=" + a.Item2))))
            {
                duplicates++;
                continue;
            }

            set.AddCustom(metric.Name, metric.DataType == CustomDataType.Counter ? MetricKind.Counter : MetricKind.Gauge, UcumUnit(metric.Unit), metric.Description, value, attributes);
        }

        return duplicates;
    }

    private static string AttributeText(NpgsqlDataReader r, int column) => r.IsDBNull(column) ? "" : r.GetValue(column) switch
    {
        bool b => b ? "true" : "false",
        var v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>The reference writes units like "bytes" and "sessions"; metrics carry UCUM.</summary>
    internal static string UcumUnit(string unit) => unit switch
    {
        "bytes" => "By",
        "seconds" => "s",
        "milliseconds" => "ms",
        "" => "1",
        "%" or "By" or "s" or "ms" or "1" => unit,
        _ when unit.StartsWith('{') => unit,
        _ => "{" + unit + "}",
    };

    // ---------------- helpers ----------------

    /// <summary>exclude_databases means never: no statistics of such a database, per database or cluster-wide.</summary>
    private bool IsExcluded(string database) => database.Length > 0 && _options.ExcludeDatabases.Contains(database);

    /// <summary>Runs one statistics query; false when it failed (counted and logged) or is not available.</summary>
    private async Task<bool> QueryAsync(NpgsqlConnection connection, string database, string name, string sql, Action<NpgsqlDataReader> row, CancellationToken ct, Action<NpgsqlCommand>? parameters = null)
    {
        try
        {
            await using var cmd = new NpgsqlCommand(sql, connection);
            parameters?.Invoke(cmd);
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                row(reader);
            }

            return true;
        }
        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.UndefinedFunction or PostgresErrorCodes.UndefinedColumn or PostgresErrorCodes.ObjectNotInPrerequisiteState or PostgresErrorCodes.InsufficientPrivilege)
        {
            // A view or extension this server lacks (or may not show us): one log line, then silence.
            lock (_reportedMissing)
            {
                if (_reportedMissing.Add(database + "/" + name))
                {
                    LogUnavailable(_logger, Instance, database, name, ex.MessageText);
                }
            }
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.QueryCanceled)
        {
            CountError(database, name);
            LogQueryFailed(_logger, Instance, database, name, "timed out after " + _options.Timeout.TotalSeconds + " s");
        }
        catch (PostgresException ex)
        {
            CountError(database, name);
            LogQueryFailed(_logger, Instance, database, name, ex.MessageText);
        }
        catch (InvalidCastException ex)
        {
            CountError(database, name);
            LogQueryFailed(_logger, Instance, database, name, ex.Message);
        }
        catch (IndexOutOfRangeException ex)
        {
            CountError(database, name);
            LogQueryFailed(_logger, Instance, database, name, "a configured column is missing from the result: " + ex.Message);
        }

        return false;
    }

    private void CountError(string database, string query)
    {
        lock (_errors)
        {
            _errors[(database, query)] = _errors.GetValueOrDefault((database, query)) + 1;
        }

        AgentMetrics.ScrapeErrors.WithLabels(Instance, database, query).Inc();
    }

    public ValueTask DisposeAsync() => _broker.DisposeAsync();

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning, Message = "PostgreSQL {Instance}: custom_queries[{Query}] returned {Rows} rows for series it already had; only the first row of each series is kept. Add the distinguishing columns as attributes.")]
    private static partial void LogDuplicateRows(ILogger logger, string instance, int query, int rows);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "PostgreSQL {Instance}: per-database statistics need {Needed} sessions but connection_pool keeps {Kept}; every scrape will open new sessions. Raise connection_pool.max_open_conns to {Needed} (and the role's CONNECTION LIMIT above it), or list fewer databases.")]
    private static partial void LogPoolTooSmall(ILogger logger, string instance, int needed, int kept);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "PostgreSQL {Instance} could not be scraped: {Reason}")]
    private static partial void LogInstanceDown(ILogger logger, string instance, string reason);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "PostgreSQL {Instance}, database {Database}: per-database statistics failed: {Reason}")]
    private static partial void LogDatabaseFailed(ILogger logger, string instance, string database, string reason);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "PostgreSQL {Instance}, database {Database}: {Query} is not available ({Reason}); its metrics are skipped.")]
    private static partial void LogUnavailable(ILogger logger, string instance, string database, string query, string reason);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "PostgreSQL {Instance}, database {Database}: query {Query} failed: {Reason}")]
    private static partial void LogQueryFailed(ILogger logger, string instance, string database, string query, string reason);
}

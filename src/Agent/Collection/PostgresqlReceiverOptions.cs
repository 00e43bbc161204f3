using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Agent.Collection;

/// <summary><c>receivers.postgresql</c>: one PostgreSQL instance (plus optional replicas) scraped every interval.</summary>
internal sealed class PostgresqlReceiverOptions : IValidatableOptions
{
    /// <summary><c>host:port</c>, <c>postgres://host:port/db</c>, or a socket directory with <c>transport: unix</c>.</summary>
    public string Endpoint { get; set; } = "localhost:5432";

    public PgTransport Transport { get; set; } = PgTransport.Tcp;

    public string Username { get; set; } = "postgres";

    /// <summary>Also <c>password_file</c>.</summary>
    [Secret]
    public string Password { get; set; } = "";

    /// <summary>Databases to collect per-database statistics from; empty: all that accept connections, found every scrape.</summary>
    public List<string> Databases { get; set; } = [];

    public List<string> ExcludeDatabases { get; set; } = ["template0", "template1"];

    public TimeSpan CollectionInterval { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan InitialDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The application_name of the agent's sessions, so operators can find them in pg_stat_activity.</summary>
    public string ApplicationName { get; set; } = "pgotel-agent";

    /// <summary>Per-query limit, also set as the sessions' statement_timeout.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    public PgTlsOptions Tls { get; set; } = new();

    public ConnectionPoolOptions ConnectionPool { get; set; } = new();

    /// <summary>More instances of the same cluster (replicas) scraped by this receiver.</summary>
    public List<ReplicaOptions> Replicas { get; set; } = [];

    /// <summary>Where stat groups run: replication stats on the primary, read-only stats on replicas.</summary>
    public QueryConfigOptions QueryConfig { get; set; } = new();

    /// <summary>Switch catalog metrics off by name: <c>postgresql.table.size: {enabled: false}</c>.</summary>
    public Dictionary<string, MetricSwitch> Metrics { get; set; } = [];

    /// <summary>The seed's custom queries.</summary>
    public List<CustomQueryOptions> CustomQueries { get; set; } = [];

    /// <summary>Non-idle queries running longer than this count as long-running.</summary>
    public TimeSpan LongRunningThreshold { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How many pg_stat_statements entries (by total time) to report.</summary>
    public int StatementsTopN { get; set; } = 50;

    /// <summary>The database where the pg_stat_statements extension is installed (it shows every database's statements).</summary>
    public string StatementsDatabase { get; set; } = "postgres";

    /// <summary>Most tables (busiest first) reported per database; bounds cardinality.</summary>
    public int MaxTablesPerDatabase { get; set; } = 1000;

    /// <summary>Resource attributes that describe this instance.</summary>
    public PgResourceOptions Resource { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        if (CollectionInterval < TimeSpan.FromSeconds(1))
        {
            yield return "collection_interval must be at least 1s";
        }

        if (Timeout <= TimeSpan.Zero || Timeout >= CollectionInterval)
        {
            yield return "timeout must be positive and shorter than collection_interval";
        }

        if (ConnectionPool.MaxOpenConns < 1)
        {
            yield return "connection_pool.max_open_conns must be at least 1";
        }

        foreach (var (key, group) in new[] { ("replication_stats", QueryConfig.ReplicationStats), ("read_only_stats", QueryConfig.ReadOnlyStats) })
        {
            if (group.Target is not ("primary" or "replica" or "any"))
            {
                yield return $"query_config.{key}.target must be primary, replica or any, not '{group.Target}'";
            }
        }

        foreach (var name in Metrics.Keys)
        {
            if (!Catalog.MetricCatalog.IsKnown(name))
            {
                yield return $"metrics.{name}: not a metric of this receiver (see docs/metrics.md)";
            }
        }

        for (var i = 0; i < CustomQueries.Count; i++)
        {
            foreach (var problem in CustomQueries[i].Validate())
            {
                yield return $"custom_queries[{i}]: {problem}";
            }
        }
    }
}

internal enum PgTransport
{
    Tcp,
    Unix,
}

internal enum PgTlsMode
{
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

internal sealed class PgTlsOptions
{
    public PgTlsMode Mode { get; set; } = PgTlsMode.Prefer;

    /// <summary>The collector's <c>insecure: true</c>: no TLS at all.</summary>
    public bool Insecure { get; set; }

    /// <summary>The collector's <c>insecure_skip_verify: true</c>: TLS without checking the certificate.</summary>
    public bool InsecureSkipVerify { get; set; }

    public string CaFile { get; set; } = "";

    public string CertFile { get; set; } = "";

    public string KeyFile { get; set; } = "";

    /// <summary>The name the server certificate must carry (verify-full); default: the endpoint's host.</summary>
    public string ServerName { get; set; } = "";
}

internal sealed class ConnectionPoolOptions
{
    /// <summary>Most connections open at once across all databases; keep it well under the role's CONNECTION LIMIT.</summary>
    public int MaxOpenConns { get; set; } = 5;

    /// <summary>Most idle connections kept between scrapes; default (negative): <see cref="MaxOpenConns"/>, so every database's session is kept.</summary>
    public int MaxIdleConns { get; set; } = -1;

    /// <summary>The idle sessions actually kept: <see cref="MaxIdleConns"/>, at most <see cref="MaxOpenConns"/>.</summary>
    public int EffectiveMaxIdleConns => MaxIdleConns < 0 ? MaxOpenConns : Math.Min(MaxIdleConns, MaxOpenConns);

    public TimeSpan ConnMaxLifetime { get; set; } = TimeSpan.FromHours(1);

    public TimeSpan ConnMaxIdleTime { get; set; } = TimeSpan.FromMinutes(5);
}

internal sealed class ReplicaOptions
{
    [ConfigRequired]
    public string Endpoint { get; set; } = "";

    public string Role { get; set; } = "replica";
}

internal sealed class QueryConfigOptions
{
    public QueryTarget ReplicationStats { get; set; } = new() { Target = "primary" };

    public QueryTarget ReadOnlyStats { get; set; } = new() { Target = "any" };

    /// <summary>
    /// How often table and index sizes are measured (<c>pg_total_relation_size</c>/<c>pg_relation_size</c> read every
    /// relation's files, the most expensive statistics): on the first scrape at or after each multiple of it; the
    /// last measurement is sent with every scrape in between. 0 or at most collection_interval: every scrape.
    /// </summary>
    public QueryInterval SizeStats { get; set; } = new() { Interval = TimeSpan.FromMinutes(5) };
}

internal sealed class QueryInterval
{
    public TimeSpan Interval { get; set; }
}

internal sealed class QueryTarget
{
    /// <summary><c>primary</c>, <c>replica</c> or <c>any</c>.</summary>
    public string Target { get; set; } = "any";

    /// <summary>How often the group runs: on the first scrape at or after each multiple of it (0 or less than collection_interval: every scrape).</summary>
    public TimeSpan Interval { get; set; }
}

internal sealed class MetricSwitch
{
    public bool Enabled { get; set; } = true;

    /// <summary>Accepted for compatibility with the reference's settings; the catalog fixes units.</summary>
    public string Unit { get; set; } = "";

    /// <summary>Accepted for compatibility; the catalog fixes descriptions.</summary>
    public string Description { get; set; } = "";
}

internal sealed class PgResourceOptions
{
    /// <summary><c>db.cluster</c>: the cluster this instance belongs to (HA pairs and replicas share it).</summary>
    public string Cluster { get; set; } = "";

    /// <summary><c>deployment.environment</c>.</summary>
    public string Environment { get; set; } = "";

    /// <summary><c>agent.id</c>: names this agent; default the host name.</summary>
    public string AgentId { get; set; } = "";

    /// <summary><c>host.name</c> of the database host; default the agent's host name.</summary>
    public string HostName { get; set; } = "";

    /// <summary>Extra resource attributes.</summary>
    public Dictionary<string, string> Attributes { get; set; } = [];
}

internal sealed class CustomQueryOptions
{
    [ConfigRequired]
    public string Query { get; set; } = "";

    /// <summary>Database to run in; default the instance's first database.</summary>
    public string Database { get; set; } = "";

    public List<CustomMetricOptions> Metrics { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        if (Metrics.Count == 0)
        {
            yield return "metrics must list at least one metric";
        }

        foreach (var m in Metrics)
        {
            if (m.Name.Length == 0 || m.ValueColumn.Length == 0)
            {
                yield return "each metric needs name and value_column";
            }
        }
    }
}

internal sealed class CustomMetricOptions
{
    public string Name { get; set; } = "";

    public string ValueColumn { get; set; } = "";

    public CustomDataType DataType { get; set; } = CustomDataType.Gauge;

    public string Unit { get; set; } = "";

    public string Description { get; set; } = "";

    public List<CustomAttributeOptions> Attributes { get; set; } = [];
}

internal enum CustomDataType
{
    Gauge,
    Counter,
}

internal sealed class CustomAttributeOptions
{
    [ConfigRequired]
    public string Column { get; set; } = "";

    /// <summary>The attribute name; default the column name.</summary>
    public string Name { get; set; } = "";
}

using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Dedup;

/// <summary><c>processors.ha_tracker</c>: accept one replica per cluster, Mimir-style.</summary>
internal sealed class HaTrackerOptions : IValidatableOptions
{
    /// <summary>The resource attribute naming the cluster both replicas watch.</summary>
    public string ClusterAttribute { get; set; } = "db.cluster";

    /// <summary>The resource attribute naming the replica (the agent) that sent the data.</summary>
    public string ReplicaAttribute { get; set; } = "agent.id";

    /// <summary>How often at most the elected replica's data refreshes its election in Redis.</summary>
    public TimeSpan UpdateTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long the elected replica may stay unseen before another replica's data takes over.</summary>
    public TimeSpan FailoverTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Shared elections across gateways; without an endpoint each gateway elects on its own.</summary>
    public RedisOptions Redis { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        if (ClusterAttribute.Length == 0)
        {
            yield return "cluster_attribute must not be empty";
        }

        if (ReplicaAttribute.Length == 0)
        {
            yield return "replica_attribute must not be empty";
        }

        if (UpdateTimeout <= TimeSpan.Zero)
        {
            yield return "update_timeout must be above 0";
        }

        if (FailoverTimeout <= UpdateTimeout)
        {
            // Mimir's rule: otherwise a healthy replica that refreshes only every update_timeout could lose its election.
            yield return "failover_timeout must be longer than update_timeout";
        }
    }
}

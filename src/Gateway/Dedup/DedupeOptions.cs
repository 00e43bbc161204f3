using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Dedup;

/// <summary><c>processors.dedupe</c>: the first writer of each point identity wins.</summary>
internal sealed class DedupeOptions : IValidatableOptions
{
    /// <summary>Shared state across gateways; without an endpoint the processor dedups in this gateway's memory only.</summary>
    public RedisOptions Redis { get; set; } = new();

    /// <summary>Most identities in the local LRU (about 60 bytes each).</summary>
    public int CacheSize { get; set; } = 500_000;

    /// <summary>How long an identity counts as taken, locally and in Redis (the keys' PX).</summary>
    public TimeSpan CacheTtl { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// What makes two points the same: resource attribute names plus the pseudo keys <c>metric.name</c> and
    /// <c>timestamp</c>. The point's own attributes always take part.
    /// </summary>
    public List<string> IdentifierKeys { get; set; } = ["db.instance", PointIdentity.MetricNameKey, PointIdentity.TimestampKey];

    public IEnumerable<string> Validate()
    {
        if (CacheSize < 1)
        {
            yield return "cache_size must be at least 1";
        }

        if (CacheTtl < TimeSpan.FromMilliseconds(1))
        {
            yield return "cache_ttl must be at least 1ms";
        }

        if (IdentifierKeys.Count == 0)
        {
            yield return "identifier_keys must name at least one key";
        }

        if (!IdentifierKeys.Contains(PointIdentity.TimestampKey))
        {
            yield return "identifier_keys must contain 'timestamp' (without it every later point of a series would be dropped as a duplicate)";
        }
    }
}

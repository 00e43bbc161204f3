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
    /// How long a claim stays pending in Redis before it expires unconfirmed. A request's identities are claimed as
    /// pending and made final (for <see cref="CacheTtl"/>) only once its data is in the durable queue; a gateway that
    /// dies in between leaves pending claims that expire after this long, so the client's retry can claim them. Must
    /// be longer than a request takes from dedupe to the durable queue (batch timeout, fsync). Also the retry delay
    /// a client is given when its points stay held by someone else's pending claim.
    /// </summary>
    public TimeSpan PendingTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a request waits for pending claims held by another request (here or on another gateway) to be
    /// confirmed (its points are duplicates) or released (it claims them) before it is refused with UNAVAILABLE.
    /// </summary>
    public TimeSpan PendingWait { get; set; } = TimeSpan.FromSeconds(1);

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

        if (PendingTtl < TimeSpan.FromMilliseconds(1))
        {
            yield return "pending_ttl must be at least 1ms";
        }

        if (PendingWait < TimeSpan.Zero)
        {
            yield return "pending_wait must not be negative";
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

using System.Collections.Concurrent;

namespace PgOtelGateway.Gateway.Ingest;

/// <summary>
/// A token bucket per client (its address, or its token identity): <c>requests_per_second</c> refill, at most
/// <c>burst</c> saved up. Idle clients are forgotten so the table stays small.
/// </summary>
internal sealed class RateLimiter
{
    private readonly double _rate;
    private readonly double _burst;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private long _lastSweep;

    public RateLimiter(RateLimitingOptions options, TimeProvider time)
    {
        _rate = options.RequestsPerSecond;
        _burst = options.Burst;
        _time = time;
        _lastSweep = time.GetTimestamp();
    }

    /// <summary>Takes one token for <paramref name="client"/>; when there is none, says how long until there is.</summary>
    public bool TryAcquire(string client, out TimeSpan retryAfter)
    {
        var now = _time.GetTimestamp();
        var bucket = _buckets.GetOrAdd(client, static (_, s) => new Bucket(s.burst, s.now), (burst: _burst, now));
        lock (bucket)
        {
            var elapsed = _time.GetElapsedTime(bucket.Updated, now).TotalSeconds;
            bucket.Tokens = Math.Min(_burst, bucket.Tokens + elapsed * _rate);
            bucket.Updated = now;
            if (bucket.Tokens >= 1)
            {
                bucket.Tokens -= 1;
                retryAfter = TimeSpan.Zero;
                Sweep(now);
                return true;
            }

            retryAfter = TimeSpan.FromSeconds(Math.Max(0.001, (1 - bucket.Tokens) / _rate));
            return false;
        }
    }

    private void Sweep(long now)
    {
        if (_time.GetElapsedTime(Interlocked.Read(ref _lastSweep), now) < TimeSpan.FromMinutes(5))
        {
            return;
        }

        Interlocked.Exchange(ref _lastSweep, now);
        foreach (var (client, bucket) in _buckets)
        {
            if (_time.GetElapsedTime(bucket.Updated, now) > TimeSpan.FromMinutes(5))
            {
                _buckets.TryRemove(client, out _);
            }
        }
    }

    private sealed class Bucket(double tokens, long updated)
    {
        public double Tokens = tokens;
        public long Updated = updated;
    }
}

using System.Buffers;
using Google.Protobuf.Collections;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Pipeline;
using StackExchange.Redis;

namespace PgOtelGateway.Gateway.Dedup;

/// <summary>
/// <c>dedupe</c>: drops every data point whose identity (series + timestamp, see <see cref="PointIdentity"/>) was
/// already taken, so the two agents of an HA pair produce each sample once. A local LRU decides what it already
/// knows; the rest goes to Redis in one round trip per request (a Lua script doing <c>SET key 1 NX PX ttl</c> for
/// each identity). When Redis cannot be reached, the local decision stands. The request keeps its structure
/// minus the dropped points; resources, scopes and metrics left empty are removed.
/// </summary>
internal sealed class DedupeProcessor : IMetricsConsumer, IPipelineComponent, IDedupStatus, IAsyncDisposable
{
    /// <summary>Most keys one script call carries; a larger request sends several calls pipelined in one round trip.</summary>
    internal const int MaxKeysPerCall = 4096;

    // ARGV[1]: ttl in ms; ARGV[2]: key prefix; ARGV[3]: the identities, 16 bytes each. For each identity it runs
    // SET prefix..identity 1 NX PX ttl and answers one character: '1' this call took it, '0' it was taken already.
    // Identities travel as one blob and the answer as one string, so a 1,000-point request costs one argument
    // and one reply to encode and parse instead of a thousand. (Keys not declared in KEYS: standalone Redis only.)
    internal const string ClaimScript = """
        local ttl, prefix, ids = ARGV[1], ARGV[2], ARGV[3]
        local taken = {}
        for i = 0, #ids / 16 - 1 do
          local key = prefix .. string.sub(ids, i * 16 + 1, i * 16 + 16)
          if redis.call('SET', key, '1', 'NX', 'PX', ttl) then taken[i + 1] = '1' else taken[i + 1] = '0' end
        end
        return table.concat(taken)
        """;

    private const byte Untracked = 0;
    private const byte Claimed = 1;
    private const byte DuplicateLocal = 2;
    private const byte DuplicateRedis = 3;
    private static readonly byte[] KeyInfix = "dedup:"u8.ToArray();

    private readonly string _id;
    private readonly DedupeOptions _options;
    private readonly IMetricsConsumer _next;
    private readonly TimeProvider _time;
    private readonly PointIdentity _identity;
    private readonly IdentityCache _cache;
    private readonly Lock _cacheLock = new();
    private readonly RedisConnection? _redis;
    private readonly byte[] _keyPrefix;
    private readonly Prometheus.Counter.Child _passedMetric;
    private readonly Prometheus.Counter.Child _localMetric;
    private readonly Prometheus.Counter.Child _redisMetric;
    private readonly Prometheus.Counter.Child _untrackedMetric;
    private readonly Prometheus.Gauge.Child _sizeMetric;
    private long _hitsLocal;
    private long _hitsRedis;
    private long _misses;

    public DedupeProcessor(string id, DedupeOptions options, IMetricsConsumer next, ILogger<DedupeProcessor> logger, TimeProvider time)
    {
        _id = id;
        _options = options;
        _next = next;
        _time = time;
        _identity = new PointIdentity(options.IdentifierKeys);
        _cache = new IdentityCache(options.CacheSize, (long)options.CacheTtl.TotalMilliseconds);
        _redis = options.Redis.Enabled ? new RedisConnection(id, options.Redis, logger, time) : null;
        _keyPrefix = [.. System.Text.Encoding.UTF8.GetBytes(options.Redis.KeyPrefix), .. KeyInfix];
        _passedMetric = GatewayMetrics.DedupPoints.WithLabels(id, "passed");
        _localMetric = GatewayMetrics.DedupPoints.WithLabels(id, "duplicate_local");
        _redisMetric = GatewayMetrics.DedupPoints.WithLabels(id, "duplicate_redis");
        _untrackedMetric = GatewayMetrics.DedupPoints.WithLabels(id, "untracked");
        _sizeMetric = GatewayMetrics.DedupCacheSize.WithLabels(id);
    }

    public Task StartAsync(CancellationToken cancellationToken) => _redis?.StartAsync(cancellationToken) ?? Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public DedupSnapshot Snapshot()
    {
        int size;
        lock (_cacheLock)
        {
            size = _cache.Count;
        }

        return new DedupSnapshot(_id, size, Interlocked.Read(ref _hitsLocal), Interlocked.Read(ref _hitsRedis), Interlocked.Read(ref _misses), _redis?.Errors ?? 0, _redis?.RoundTrips ?? 0);
    }

    public async Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        var total = MetricsCounting.DataPoints(request);
        if (total == 0)
        {
            await _next.ConsumeAsync(request, cancellationToken).ConfigureAwait(false);
            return;
        }

        var identities = ArrayPool<UInt128>.Shared.Rent(total);
        var states = ArrayPool<byte>.Shared.Rent(total);
        var claimed = ArrayPool<int>.Shared.Rent(total);
        try
        {
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            Hash(request, identities, states);
            var claimedCount = ClaimLocally(identities, states, total, claimed, now);
            var redisTook = claimedCount > 0 && _redis is not null
                && await ClaimInRedisAsync(identities, states, claimed, claimedCount, cancellationToken).ConfigureAwait(false);

            var counts = Count(states, total);
            if (counts.Dropped > 0)
            {
                Remove(request, states);
            }

            if (request.ResourceMetrics.Count == 0)
            {
                return;
            }

            try
            {
                await _next.ConsumeAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // Nothing of the request was kept downstream: release its identities so the client's retry passes.
                await ReleaseAsync(identities, states, claimed, claimedCount, redisTook).ConfigureAwait(false);
                throw;
            }
        }
        finally
        {
            ArrayPool<UInt128>.Shared.Return(identities);
            ArrayPool<byte>.Shared.Return(states);
            ArrayPool<int>.Shared.Return(claimed);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Fills the identity and initial state of every point, in request order.</summary>
    private void Hash(ExportMetricsServiceRequest request, UInt128[] identities, byte[] states)
    {
        var i = 0;
        foreach (var rm in request.ResourceMetrics)
        {
            var tracked = _identity.TryResource(rm.Resource, out var resourceHash);
            foreach (var sm in rm.ScopeMetrics)
            {
                foreach (var metric in sm.Metrics)
                {
                    var metricHash = tracked ? _identity.Metric(resourceHash, metric.Name) : 0;
                    i = metric.DataCase switch
                    {
                        Metric.DataOneofCase.Gauge => HashPoints(metric.Gauge.DataPoints, static p => p.Attributes, static p => p.TimeUnixNano, tracked, metricHash, identities, states, i),
                        Metric.DataOneofCase.Sum => HashPoints(metric.Sum.DataPoints, static p => p.Attributes, static p => p.TimeUnixNano, tracked, metricHash, identities, states, i),
                        Metric.DataOneofCase.Histogram => HashPoints(metric.Histogram.DataPoints, static p => p.Attributes, static p => p.TimeUnixNano, tracked, metricHash, identities, states, i),
                        Metric.DataOneofCase.ExponentialHistogram => HashPoints(metric.ExponentialHistogram.DataPoints, static p => p.Attributes, static p => p.TimeUnixNano, tracked, metricHash, identities, states, i),
                        Metric.DataOneofCase.Summary => HashPoints(metric.Summary.DataPoints, static p => p.Attributes, static p => p.TimeUnixNano, tracked, metricHash, identities, states, i),
                        _ => i,
                    };
                }
            }
        }
    }

    private int HashPoints<T>(RepeatedField<T> points, Func<T, RepeatedField<KeyValue>> attributes, Func<T, ulong> time, bool tracked, UInt128 metricHash, UInt128[] identities, byte[] states, int i)
    {
        for (var p = 0; p < points.Count; p++, i++)
        {
            if (tracked)
            {
                identities[i] = _identity.Point(metricHash, attributes(points[p]), time(points[p]));
                states[i] = Claimed;
            }
            else
            {
                states[i] = Untracked;
            }
        }

        return i;
    }

    /// <summary>Runs every tracked identity past the local cache under one lock; returns how many it claimed.</summary>
    private int ClaimLocally(UInt128[] identities, byte[] states, int total, int[] claimed, long now)
    {
        var count = 0;
        lock (_cacheLock)
        {
            for (var i = 0; i < total; i++)
            {
                if (states[i] != Claimed)
                {
                    continue;
                }

                // A claim is made before Redis answers, so a copy arriving meanwhile on this gateway waits for none:
                // it is a duplicate of a point that passes here or (Redis says taken) passed elsewhere.
                if (_cache.TryClaim(identities[i], now))
                {
                    claimed[count++] = i;
                }
                else
                {
                    states[i] = DuplicateLocal;
                }
            }

            _sizeMetric.Set(_cache.Count);
        }

        return count;
    }

    /// <summary>
    /// Asks Redis about the locally claimed identities in one round trip; marks those another writer took. Returns
    /// whether Redis answered (false: Redis unreachable, the local claims stand).
    /// </summary>
    private async Task<bool> ClaimInRedisAsync(UInt128[] identities, byte[] states, int[] claimed, int count, CancellationToken cancellationToken)
    {
        var redis = _redis!;
        var database = await redis.DatabaseAsync(cancellationToken).ConfigureAwait(false);
        if (database is null)
        {
            return false;
        }

        var calls = (count + MaxKeysPerCall - 1) / MaxKeysPerCall;
        var pending = new Task<RedisResult>[calls];
        var ttl = (RedisValue)(long)_options.CacheTtl.TotalMilliseconds;
        var prefix = (RedisValue)_keyPrefix;
        redis.CountRoundTrip();
        try
        {
            // All calls are written before any answer is awaited: one round trip however large the request.
            for (var c = 0; c < calls; c++)
            {
                var from = c * MaxKeysPerCall;
                var ids = new byte[Math.Min(MaxKeysPerCall, count - from) * 16];
                for (var k = 0; k < ids.Length / 16; k++)
                {
                    PointIdentity.Write(identities[claimed[from + k]], ids.AsSpan(k * 16, 16));
                }

                pending[c] = database.ScriptEvaluateAsync(ClaimScript, null, [ttl, prefix, ids]);
            }

            for (var c = 0; c < calls; c++)
            {
                var answer = (byte[]?)await pending[c].WaitAsync(redis.Timeout, cancellationToken).ConfigureAwait(false) ?? [];
                var from = c * MaxKeysPerCall;
                for (var k = 0; k < answer.Length; k++)
                {
                    if (answer[k] == (byte)'0')
                    {
                        states[claimed[from + k]] = DuplicateRedis;
                    }
                }
            }

            redis.Succeeded();
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or System.Net.Sockets.SocketException or InvalidCastException)
        {
            foreach (var task in pending)
            {
                _ = task?.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }

            // Whatever Redis answered before the failure is kept: those identities really are taken.
            redis.Failed(ex.Message);
            return false;
        }
    }

    private async Task ReleaseAsync(UInt128[] identities, byte[] states, int[] claimed, int count, bool inRedis)
    {
        var released = new List<RedisKey>();
        lock (_cacheLock)
        {
            for (var c = 0; c < count; c++)
            {
                var i = claimed[c];
                if (states[i] == Claimed)
                {
                    _cache.Remove(identities[i]);
                    if (inRedis)
                    {
                        released.Add(Key(identities[i]));
                    }
                }
            }
        }

        if (released.Count == 0 || _redis is null)
        {
            return;
        }

        try
        {
            var database = await _redis.DatabaseAsync(CancellationToken.None).ConfigureAwait(false);
            if (database is not null)
            {
                _redis.CountRoundTrip();
                await database.KeyDeleteAsync([.. released]).WaitAsync(_redis.Timeout).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The keys expire after cache_ttl; until then a retry of these points is dropped as a duplicate.
            _redis.Failed(ex.Message);
        }
    }

    private RedisKey Key(UInt128 identity)
    {
        var key = new byte[_keyPrefix.Length + 16];
        _keyPrefix.CopyTo(key, 0);
        PointIdentity.Write(identity, key.AsSpan(_keyPrefix.Length));
        return key;
    }

    private (int Passed, int Dropped) Count(byte[] states, int total)
    {
        int passed = 0, local = 0, redis = 0, untracked = 0;
        for (var i = 0; i < total; i++)
        {
            switch (states[i])
            {
                case Claimed: passed++; break;
                case DuplicateLocal: local++; break;
                case DuplicateRedis: redis++; break;
                default: untracked++; break;
            }
        }

        Interlocked.Add(ref _misses, passed);
        Interlocked.Add(ref _hitsLocal, local);
        Interlocked.Add(ref _hitsRedis, redis);
        _passedMetric.Inc(passed);
        _localMetric.Inc(local);
        _redisMetric.Inc(redis);
        _untrackedMetric.Inc(untracked);
        return (passed + untracked, local + redis);
    }

    /// <summary>Removes the points marked as duplicates, then whatever was left empty.</summary>
    private static void Remove(ExportMetricsServiceRequest request, byte[] states)
    {
        var i = 0;
        var resources = request.ResourceMetrics;
        for (var r = 0; r < resources.Count; r++)
        {
            var scopes = resources[r].ScopeMetrics;
            for (var s = 0; s < scopes.Count; s++)
            {
                var metrics = scopes[s].Metrics;
                for (var m = 0; m < metrics.Count; m++)
                {
                    var metric = metrics[m];
                    i = metric.DataCase switch
                    {
                        Metric.DataOneofCase.Gauge => Compact(metric.Gauge.DataPoints, states, i),
                        Metric.DataOneofCase.Sum => Compact(metric.Sum.DataPoints, states, i),
                        Metric.DataOneofCase.Histogram => Compact(metric.Histogram.DataPoints, states, i),
                        Metric.DataOneofCase.ExponentialHistogram => Compact(metric.ExponentialHistogram.DataPoints, states, i),
                        Metric.DataOneofCase.Summary => Compact(metric.Summary.DataPoints, states, i),
                        _ => i,
                    };
                }

                RemoveWhere(metrics, static m => MetricsCounting.DataPoints(m) == 0);
            }

            RemoveWhere(scopes, static s => s.Metrics.Count == 0);
        }

        RemoveWhere(resources, static r => r.ScopeMetrics.Count == 0);
    }

    private static int Compact<T>(RepeatedField<T> points, byte[] states, int i)
    {
        var write = 0;
        for (var p = 0; p < points.Count; p++, i++)
        {
            if (states[i] is Untracked or Claimed)
            {
                if (write != p)
                {
                    points[write] = points[p];
                }

                write++;
            }
        }

        for (var p = points.Count - 1; p >= write; p--)
        {
            points.RemoveAt(p);
        }

        return i;
    }

    private static void RemoveWhere<T>(RepeatedField<T> items, Func<T, bool> empty)
    {
        var write = 0;
        for (var p = 0; p < items.Count; p++)
        {
            if (!empty(items[p]))
            {
                if (write != p)
                {
                    items[write] = items[p];
                }

                write++;
            }
        }

        for (var p = items.Count - 1; p >= write; p--)
        {
            items.RemoveAt(p);
        }
    }
}

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
/// already taken, so the two agents of an HA pair produce each sample once. A claim becomes final only once the
/// request's data is in the durable queue: until then it is <em>pending</em> (locally: the request is in flight;
/// in Redis: a key holding this request's token that expires after <c>pending_ttl</c>). A point held by someone
/// else's pending claim is never taken for a duplicate — the holder may still fail — so its request waits up to
/// <c>pending_wait</c> for the claim to be confirmed (duplicate) or released (it claims it), and is otherwise
/// refused with UNAVAILABLE and a retry delay of <c>pending_ttl</c>. Redis sees one claim and one confirm round trip
/// per request (each one script call per 4,096 identities, pipelined), never one per point. When Redis cannot be
/// reached, the local decision stands. The request keeps its structure minus the dropped points; resources,
/// scopes and metrics left empty are removed.
/// </summary>
internal sealed class DedupeProcessor : IMetricsConsumer, IPipelineComponent, IDedupStatus, IAsyncDisposable
{
    /// <summary>Most keys one script call carries; a larger request sends several calls pipelined in one round trip.</summary>
    internal const int MaxKeysPerCall = 4096;

    // ARGV[1]: ttl in ms; ARGV[2]: key prefix; ARGV[3]: the identities, 16 bytes each; ARGV[4]: this request's token
    // ('p' + claimant + nonce). For each identity it runs SET prefix..identity token NX PX ttl and answers one
    // character: '1' the identity is this request's (pending), '0' it is final (a duplicate), 'p' another request's
    // claim on it is still pending. Identities travel as one blob and the answer as one string, so a 1,000-point
    // request costs one argument and one reply to encode and parse instead of a thousand. (Keys not declared in
    // KEYS: standalone Redis only.)
    internal const string ClaimScript = """
        local ttl, prefix, ids, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
        local answer = {}
        for i = 0, #ids / 16 - 1 do
          local key = prefix .. string.sub(ids, i * 16 + 1, i * 16 + 16)
          if redis.call('SET', key, token, 'NX', 'PX', ttl) then
            answer[i + 1] = '1'
          else
            local held = redis.call('GET', key)
            if held == token then answer[i + 1] = '1'
            elseif held and string.byte(held, 1) == 112 then answer[i + 1] = 'p'
            else answer[i + 1] = '0' end
          end
        end
        return table.concat(answer)
        """;

    // ARGV as for the claim, ttl being cache_ttl. Makes this request's pending claims final ('1' for cache_ttl) and
    // answers how many were no longer its own (expired; they are made final if free).
    internal const string ConfirmScript = """
        local ttl, prefix, ids, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
        local late = 0
        for i = 0, #ids / 16 - 1 do
          local key = prefix .. string.sub(ids, i * 16 + 1, i * 16 + 16)
          local held = redis.call('GET', key)
          if held ~= token then late = late + 1 end
          if held == token or not held then redis.call('SET', key, '1', 'PX', ttl) end
        end
        return late
        """;

    // ARGV as for the claim (ttl unused). Deletes the identities this request still holds pending (compare-and-delete
    // by token), so a claim that expired and was taken by someone else meanwhile is left alone.
    internal const string ReleaseScript = """
        local prefix, ids, token = ARGV[2], ARGV[3], ARGV[4]
        for i = 0, #ids / 16 - 1 do
          local key = prefix .. string.sub(ids, i * 16 + 1, i * 16 + 16)
          if redis.call('GET', key) == token then redis.call('DEL', key) end
        end
        return 0
        """;

    // Per point, in request order.
    private const byte Untracked = 0;
    private const byte Unresolved = 1; // tracked, to be run past the local state
    private const byte Mine = 2; // passes; claimed here (Redis off, unreachable or failed)
    private const byte MineRedis = 3; // passes; also pending in Redis under this request's token
    private const byte DuplicateLocal = 4;
    private const byte DuplicateRedis = 5;
    private const byte WaitLocal = 6; // held by another request in flight on this gateway
    private const byte WaitRedis = 7; // held here by this request, pending in Redis under another token
    private const byte HeldLocal = 1; // flags: which pending holders a point met
    private const byte HeldRedis = 2;
    private static readonly byte[] KeyInfix = "dedup:"u8.ToArray();
    private static readonly TimeSpan FirstRecheck = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan LastRecheck = TimeSpan.FromMilliseconds(100);

    private readonly string _id;
    private readonly DedupeOptions _options;
    private readonly IMetricsConsumer _next;
    private readonly TimeProvider _time;
    private readonly PointIdentity _identity;
    private readonly IdentityCache _cache;
    private readonly Dictionary<UInt128, TaskCompletionSource> _inflight = [];
    private readonly Lock _cacheLock = new();
    private readonly RedisConnection? _redis;
    private readonly byte[] _keyPrefix;
    private readonly string _claimant;
    private readonly Prometheus.Counter.Child _passedMetric;
    private readonly Prometheus.Counter.Child _localMetric;
    private readonly Prometheus.Counter.Child _redisMetric;
    private readonly Prometheus.Counter.Child _untrackedMetric;
    private readonly Prometheus.Counter.Child _pendingLocalMetric;
    private readonly Prometheus.Counter.Child _pendingRedisMetric;
    private readonly Prometheus.Counter.Child _pendingRefusedMetric;
    private readonly Prometheus.Counter.Child _recheckMetric;
    private readonly Prometheus.Counter.Child _confirmedMetric;
    private readonly Prometheus.Counter.Child _releasedMetric;
    private readonly Prometheus.Counter.Child _lateMetric;
    private readonly Prometheus.Gauge.Child _sizeMetric;
    private long _nonce;
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
        // Names the claimant in pending values (host, process, processor, and a random part for restarts).
        _claimant = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"p{Environment.MachineName}/{Environment.ProcessId}/{id}/{Random.Shared.Next():x8}:");
        _passedMetric = GatewayMetrics.DedupPoints.WithLabels(id, "passed");
        _localMetric = GatewayMetrics.DedupPoints.WithLabels(id, "duplicate_local");
        _redisMetric = GatewayMetrics.DedupPoints.WithLabels(id, "duplicate_redis");
        _untrackedMetric = GatewayMetrics.DedupPoints.WithLabels(id, "untracked");
        _pendingLocalMetric = GatewayMetrics.DedupPending.WithLabels(id, "local");
        _pendingRedisMetric = GatewayMetrics.DedupPending.WithLabels(id, "redis");
        _pendingRefusedMetric = GatewayMetrics.DedupPendingRefused.WithLabels(id);
        _recheckMetric = GatewayMetrics.DedupRechecks.WithLabels(id);
        _confirmedMetric = GatewayMetrics.DedupClaims.WithLabels(id, "confirmed");
        _releasedMetric = GatewayMetrics.DedupClaims.WithLabels(id, "released");
        _lateMetric = GatewayMetrics.DedupClaims.WithLabels(id, "late");
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

        var claim = new Claim(total, _claimant + Interlocked.Increment(ref _nonce).ToString(System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            Hash(request, claim.Identities, claim.States);
            await ResolveAsync(claim, cancellationToken).ConfigureAwait(false);

            var counts = Count(claim.States, total);
            if (counts.Dropped > 0)
            {
                Remove(request, claim.States);
            }

            if (request.ResourceMetrics.Count > 0)
            {
                await _next.ConsumeAsync(request, cancellationToken).ConfigureAwait(false);
            }

            // The data is in the durable queue (or was all duplicates): the claims become final.
            await ConfirmAsync(claim).ConfigureAwait(false);
        }
        finally
        {
            if (!claim.Settled)
            {
                // Refused here or downstream, or cancelled: nothing of the request was kept, so its claims go and
                // the client's retry (or the twin's copy) passes instead of being taken for a duplicate.
                await ReleaseAsync(claim).ConfigureAwait(false);
            }

            claim.Return();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Decides every tracked point: mine (passes), duplicate (dropped), or — while another request's claim on it is
    /// pending — waits, up to <c>pending_wait</c>, then refuses the request.
    /// </summary>
    private async Task ResolveAsync(Claim claim, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var recheck = FirstRecheck;
        while (true)
        {
            var toRedis = ClaimLocally(claim);
            if (_redis is not null)
            {
                var claims = toRedis;
                for (var i = 0; i < claim.Total; i++)
                {
                    if (claim.States[i] == WaitRedis)
                    {
                        claim.Work[toRedis++] = i;
                    }
                }

                if (toRedis > claims)
                {
                    _recheckMetric.Inc();
                }

                if (toRedis > 0)
                {
                    await ClaimInRedisAsync(claim, toRedis, cancellationToken).ConfigureAwait(false);
                }
            }

            var (local, redis) = Waiting(claim);
            if (local == 0 && redis == 0)
            {
                return;
            }

            var remaining = _options.PendingWait - _time.GetElapsedTime(started);
            if (remaining <= TimeSpan.Zero)
            {
                _pendingRefusedMetric.Inc();
                throw new PipelineRefusedException(RefusalReason.Unavailable,
                    $"{local + redis} data points are claimed by a request that has not reached the durable queue yet (on this gateway or another); retry after {_options.PendingTtl.TotalSeconds:0.###} s",
                    _options.PendingTtl);
            }

            if (local > 0)
            {
                // The holders are requests in flight here: wait for them to end, whichever way.
                try
                {
                    await Task.WhenAll(claim.Holders!).WaitAsync(remaining, _time, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    // Checked again; refused on the next turn if still held.
                }
            }
            else
            {
                await Task.Delay(remaining < recheck ? remaining : recheck, _time, cancellationToken).ConfigureAwait(false);
                recheck = recheck * 2 < LastRecheck ? recheck * 2 : LastRecheck;
            }
        }
    }

    /// <summary>Counts the points held by pending claims; each point is counted once per holder kind as it is first met.</summary>
    private (int Local, int Redis) Waiting(Claim claim)
    {
        int local = 0, redis = 0, newLocal = 0, newRedis = 0;
        for (var i = 0; i < claim.Total; i++)
        {
            switch (claim.States[i])
            {
                case WaitLocal:
                    local++;
                    newLocal += claim.Flag(i, HeldLocal);
                    break;
                case WaitRedis:
                    redis++;
                    newRedis += claim.Flag(i, HeldRedis);
                    break;
            }
        }

        if (newLocal > 0)
        {
            _pendingLocalMetric.Inc(newLocal);
        }

        if (newRedis > 0)
        {
            _pendingRedisMetric.Inc(newRedis);
        }

        return (local, redis);
    }

    /// <summary>
    /// Runs the unresolved points (and those that waited for a local holder) past the local state under one lock:
    /// a point held by a request in flight here waits for it, one in the cache is a duplicate, the rest are claimed
    /// (in flight under this request). Puts the indices of the new claims in <see cref="Claim.Work"/>; returns how many.
    /// </summary>
    private int ClaimLocally(Claim claim)
    {
        var count = 0;
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        claim.Holders?.Clear();
        lock (_cacheLock)
        {
            for (var i = 0; i < claim.Total; i++)
            {
                var state = claim.States[i];
                if (state is not (Unresolved or WaitLocal))
                {
                    continue;
                }

                var identity = claim.Identities[i];
                if (_inflight.TryGetValue(identity, out var holder))
                {
                    if (holder == claim.Flight)
                    {
                        // The same identity twice in one request: the first occurrence carries it.
                        claim.States[i] = DuplicateLocal;
                    }
                    else
                    {
                        claim.States[i] = WaitLocal;
                        claim.AddHolder(holder.Task);
                    }
                }
                else if (_cache.Hit(identity, now))
                {
                    claim.States[i] = DuplicateLocal;
                }
                else
                {
                    _inflight[identity] = claim.Flight;
                    claim.States[i] = Mine;
                    claim.Work[count++] = i;
                }
            }

            _sizeMetric.Set(_cache.Count);
        }

        return count;
    }

    /// <summary>
    /// Claims the identities at <see cref="Claim.Work"/>[0..count) in Redis as pending in one round trip, and marks
    /// each as this request's, a duplicate, or held by another pending claim. When Redis does not answer, the
    /// points not answered for are decided locally (they pass).
    /// </summary>
    private async Task ClaimInRedisAsync(Claim claim, int count, CancellationToken cancellationToken)
    {
        var answers = await EvaluateAsync(ClaimScript, _options.PendingTtl, claim, claim.Work, count, cancellationToken).ConfigureAwait(false);
        for (var c = 0; c * MaxKeysPerCall < count; c++)
        {
            var from = c * MaxKeysPerCall;
            var answer = answers is null || answers[c] is not { } result ? null : (byte[]?)result;
            var length = Math.Min(MaxKeysPerCall, count - from);
            for (var k = 0; k < length; k++)
            {
                var i = claim.Work[from + k];
                claim.States[i] = answer is null || k >= answer.Length ? Mine : answer[k] switch
                {
                    (byte)'1' => MineRedis,
                    (byte)'p' => WaitRedis,
                    _ => DuplicateRedis,
                };
            }
        }
    }

    /// <summary>The data is queued (or there was none to queue): the claims become final, here and in Redis.</summary>
    private async Task ConfirmAsync(Claim claim)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var inRedis = 0;
        var claimed = 0;
        lock (_cacheLock)
        {
            for (var i = 0; i < claim.Total; i++)
            {
                var state = claim.States[i];
                if (state is Mine or MineRedis or DuplicateRedis)
                {
                    Unhold(claim, i);
                    _cache.TryClaim(claim.Identities[i], now);
                }

                if (state is Mine or MineRedis)
                {
                    claimed++;
                }

                if (state == MineRedis)
                {
                    claim.Work[inRedis++] = i;
                }
            }

            _sizeMetric.Set(_cache.Count);
        }

        claim.Settle();
        _confirmedMetric.Inc(claimed);
        if (inRedis > 0)
        {
            var answers = await EvaluateAsync(ConfirmScript, _options.CacheTtl, claim, claim.Work, inRedis, CancellationToken.None).ConfigureAwait(false);
            var late = 0L;
            foreach (var answer in answers ?? [])
            {
                late += answer is null ? 0 : (long)answer;
            }

            _lateMetric.Inc(late);
        }
    }

    /// <summary>Nothing of the request was kept: its claims go, here and (compare-and-delete by token) in Redis.</summary>
    private async Task ReleaseAsync(Claim claim)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var inRedis = 0;
        var released = 0;
        lock (_cacheLock)
        {
            for (var i = 0; i < claim.Total; i++)
            {
                var state = claim.States[i];
                if (state is Mine or MineRedis or WaitRedis or DuplicateRedis or Unresolved)
                {
                    Unhold(claim, i);
                }

                if (state is Mine or MineRedis)
                {
                    released++;
                }

                if (state == DuplicateRedis)
                {
                    // Final elsewhere whatever happened here: later copies need not ask Redis.
                    _cache.TryClaim(claim.Identities[i], now);
                }
                else if (state == MineRedis)
                {
                    claim.Work[inRedis++] = i;
                }
            }
        }

        claim.Settle();
        _releasedMetric.Inc(released);
        if (inRedis > 0)
        {
            // Until this lands (or if it cannot), the pending keys expire after pending_ttl.
            await EvaluateAsync(ReleaseScript, TimeSpan.Zero, claim, claim.Work, inRedis, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Ends this request's local hold on point <paramref name="i"/>; called under the lock.</summary>
    private void Unhold(Claim claim, int i)
    {
        if (_inflight.TryGetValue(claim.Identities[i], out var holder) && holder == claim.Flight)
        {
            _inflight.Remove(claim.Identities[i]);
        }
    }

    /// <summary>
    /// Runs <paramref name="script"/> over the identities of the points at <paramref name="indices"/>[0..count) in one
    /// round trip (one call per <see cref="MaxKeysPerCall"/>, all written before any answer is read). Returns each
    /// call's answer (null for a call that failed), or null when Redis was not reachable; failures are counted and
    /// logged once by the connection.
    /// </summary>
    private async Task<RedisResult?[]?> EvaluateAsync(string script, TimeSpan ttl, Claim claim, int[] indices, int count, CancellationToken cancellationToken)
    {
        var redis = _redis!;
        var database = await redis.DatabaseAsync(cancellationToken).ConfigureAwait(false);
        if (database is null)
        {
            return null;
        }

        var calls = (count + MaxKeysPerCall - 1) / MaxKeysPerCall;
        var pending = new Task<RedisResult>[calls];
        var answers = new RedisResult?[calls];
        RedisValue ttlArg = (long)ttl.TotalMilliseconds, prefix = _keyPrefix, token = claim.Token;
        redis.CountRoundTrip();
        try
        {
            for (var c = 0; c < calls; c++)
            {
                var from = c * MaxKeysPerCall;
                var ids = new byte[Math.Min(MaxKeysPerCall, count - from) * 16];
                for (var k = 0; k < ids.Length / 16; k++)
                {
                    PointIdentity.Write(claim.Identities[indices[from + k]], ids.AsSpan(k * 16, 16));
                }

                pending[c] = database.ScriptEvaluateAsync(script, null, [ttlArg, prefix, ids, token]);
            }

            for (var c = 0; c < calls; c++)
            {
                answers[c] = await pending[c].WaitAsync(redis.Timeout, cancellationToken).ConfigureAwait(false);
            }

            redis.Succeeded();
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or System.Net.Sockets.SocketException)
        {
            foreach (var task in pending)
            {
                _ = task?.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }

            // Whatever Redis answered before the failure is kept: those answers are true.
            redis.Failed(ex.Message);
        }

        return answers;
    }

    private (int Passed, int Dropped) Count(byte[] states, int total)
    {
        int passed = 0, local = 0, redis = 0, untracked = 0;
        for (var i = 0; i < total; i++)
        {
            switch (states[i])
            {
                case Mine or MineRedis: passed++; break;
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
                states[i] = Unresolved;
            }
            else
            {
                states[i] = Untracked;
            }
        }

        return i;
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
            if (states[i] is Untracked or Mine or MineRedis)
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

    /// <summary>One request's points on their way through dedupe: pooled per-point arrays, its token and its flight.</summary>
    private sealed class Claim(int total, string token)
    {
        public int Total { get; } = total;

        public UInt128[] Identities { get; } = ArrayPool<UInt128>.Shared.Rent(total);

        public byte[] States { get; } = ArrayPool<byte>.Shared.Rent(total);

        /// <summary>Indices of the points one step works on.</summary>
        public int[] Work { get; } = ArrayPool<int>.Shared.Rent(total);

        /// <summary>Which pending holders each point met (allocated only when one is met).</summary>
        public byte[]? Flags { get; private set; }

        /// <summary>The value of this request's pending keys in Redis.</summary>
        public string Token { get; } = token;

        /// <summary>This request while in flight: held points map to it; completes when its claims are settled.</summary>
        public TaskCompletionSource Flight { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The local requests this one waits for.</summary>
        public List<Task>? Holders { get; private set; }

        /// <summary>Whether the claims were confirmed or released.</summary>
        public bool Settled { get; private set; }

        public void AddHolder(Task holder)
        {
            Holders ??= [];
            if (!Holders.Contains(holder))
            {
                Holders.Add(holder);
            }
        }

        /// <summary>Records that point <paramref name="i"/> met a holder of this kind; 1 the first time, else 0.</summary>
        public int Flag(int i, byte holder)
        {
            if (Flags is null)
            {
                Flags = ArrayPool<byte>.Shared.Rent(Total);
                Array.Clear(Flags, 0, Total);
            }

            if ((Flags[i] & holder) != 0)
            {
                return 0;
            }

            Flags[i] |= holder;
            return 1;
        }

        public void Settle()
        {
            Settled = true;
            Flight.TrySetResult();
        }

        public void Return()
        {
            ArrayPool<UInt128>.Shared.Return(Identities);
            ArrayPool<byte>.Shared.Return(States);
            ArrayPool<int>.Shared.Return(Work);
            if (Flags is not null)
            {
                ArrayPool<byte>.Shared.Return(Flags);
            }
        }
    }
}

using System.Globalization;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Pipeline;
using StackExchange.Redis;

namespace PgOtelGateway.Gateway.Dedup;

/// <summary>
/// <c>ha_tracker</c>: of the replicas (agents) that report one cluster, only the elected one's data passes. The
/// election lives in Redis (one hash per cluster: replica, last seen, elected at) and changes only through one
/// atomic Lua compare-and-set, so all gateways agree. The elected replica's data refreshes "last seen" at most
/// every <c>update_timeout</c>; another replica's data is dropped until the elected one has not been seen for
/// <c>failover_timeout</c>, then its sender takes over. A request may mix clusters and replicas; the decisions it
/// needs from Redis go in one round trip. Data without the cluster or replica attribute passes untouched.
/// </summary>
internal sealed partial class HaTrackerProcessor : IMetricsConsumer, IPipelineComponent, IHaStatus, IAsyncDisposable
{
    // KEYS[i]: a cluster's hash. ARGV: now ms, update timeout ms, failover timeout ms, key ttl ms, then one replica
    // per key. Per key it returns {elected replica, last seen ms, elected at ms, outcome}: outcome 1 = this call
    // elected the first replica, 2 = this call failed over to its replica, 0 = no change of replica.
    internal const string ElectScript = """
        local now = tonumber(ARGV[1])
        local update = tonumber(ARGV[2])
        local failover = tonumber(ARGV[3])
        local out = {}
        for i = 1, #KEYS do
          local replica = ARGV[4 + i]
          local cur = redis.call('HMGET', KEYS[i], 'replica', 'seen', 'elected')
          local outcome = 0
          if not cur[1] then
            outcome = 1
          elseif cur[1] ~= replica and now - tonumber(cur[2]) > failover then
            outcome = 2
          end
          if outcome ~= 0 then
            redis.call('HSET', KEYS[i], 'replica', replica, 'seen', ARGV[1], 'elected', ARGV[1])
            redis.call('PEXPIRE', KEYS[i], ARGV[4])
            cur = {replica, ARGV[1], ARGV[1]}
          elseif cur[1] == replica and now - tonumber(cur[2]) >= update then
            redis.call('HSET', KEYS[i], 'seen', ARGV[1])
            redis.call('PEXPIRE', KEYS[i], ARGV[4])
            cur[2] = ARGV[1]
          end
          out[#out + 1] = cur[1]
          out[#out + 1] = cur[2]
          out[#out + 1] = cur[3]
          out[#out + 1] = outcome
        end
        return out
        """;

    private static readonly byte[] KeyInfix = "ha:"u8.ToArray();
    private readonly string _id;
    private readonly HaTrackerOptions _options;
    private readonly IMetricsConsumer _next;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly RedisConnection? _redis;
    private readonly byte[] _keyPrefix;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Election> _elections = new(StringComparer.Ordinal);
    private readonly long _updateMs;
    private readonly long _failoverMs;
    private readonly Prometheus.Counter.Child _electionsMetric;
    private readonly Prometheus.Counter.Child _failoversMetric;
    private readonly Prometheus.Counter.Child _acceptedMetric;
    private readonly Prometheus.Counter.Child _droppedMetric;
    private readonly Prometheus.Counter.Child _untrackedMetric;

    public HaTrackerProcessor(string id, HaTrackerOptions options, IMetricsConsumer next, ILogger<HaTrackerProcessor> logger, TimeProvider time)
    {
        _id = id;
        _options = options;
        _next = next;
        _time = time;
        _logger = logger;
        _redis = options.Redis.Enabled ? new RedisConnection(id, options.Redis, logger, time) : null;
        _keyPrefix = [.. System.Text.Encoding.UTF8.GetBytes(options.Redis.KeyPrefix), .. KeyInfix];
        _updateMs = (long)options.UpdateTimeout.TotalMilliseconds;
        _failoverMs = (long)options.FailoverTimeout.TotalMilliseconds;
        _electionsMetric = GatewayMetrics.HaElections.WithLabels(id);
        _failoversMetric = GatewayMetrics.HaFailovers.WithLabels(id);
        _acceptedMetric = GatewayMetrics.HaPoints.WithLabels(id, "accepted");
        _droppedMetric = GatewayMetrics.HaPoints.WithLabels(id, "dropped");
        _untrackedMetric = GatewayMetrics.HaPoints.WithLabels(id, "untracked");
    }

    /// <summary>Redis round trips made (at most one per request).</summary>
    internal long RoundTrips => _redis?.RoundTrips ?? 0;

    /// <summary>How long an election outlives the last sign of its replica in Redis (then the next replica seen is elected).</summary>
    private long KeyTtlMs => Math.Max(10 * _failoverMs, 600_000);

    public Task StartAsync(CancellationToken cancellationToken) => _redis?.StartAsync(cancellationToken) ?? Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public HaSnapshot Snapshot()
    {
        var rows = new List<HaClusterSnapshot>();
        lock (_gate)
        {
            foreach (var (cluster, e) in _elections)
            {
                rows.Add(new HaClusterSnapshot(cluster, e.Replica, DateTimeOffset.FromUnixTimeMilliseconds(e.ElectedAtMs), e.Failovers));
            }
        }

        rows.Sort(static (a, b) => string.CompareOrdinal(a.Cluster, b.Cluster));
        return new HaSnapshot(_id, rows);
    }

    public async Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        var resources = request.ResourceMetrics;
        var count = resources.Count;
        var clusters = new string?[count];
        var replicas = new string?[count];
        List<(string Cluster, string Replica)>? asks = null;
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        for (var r = 0; r < count; r++)
        {
            var attributes = resources[r].Resource?.Attributes;
            clusters[r] = Text(attributes, _options.ClusterAttribute);
            replicas[r] = Text(attributes, _options.ReplicaAttribute);
        }

        lock (_gate)
        {
            for (var r = 0; r < count; r++)
            {
                if (clusters[r] is { } cluster && replicas[r] is { } replica && NeedsRedis(cluster, replica, now))
                {
                    asks ??= [];
                    if (!asks.Contains((cluster, replica)))
                    {
                        asks.Add((cluster, replica));
                    }
                }
            }
        }

        if (asks is not null)
        {
            var answers = _redis is null ? null : await AskRedisAsync(asks, now, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                for (var a = 0; a < asks.Count; a++)
                {
                    if (answers is not null)
                    {
                        Apply(asks[a].Cluster, answers[a]);
                    }
                    else
                    {
                        ElectLocally(asks[a].Cluster, asks[a].Replica, now);
                    }
                }
            }
        }

        long accepted = 0, dropped = 0, untracked = 0;
        var keep = new bool[count];
        lock (_gate)
        {
            for (var r = 0; r < count; r++)
            {
                var points = Points(resources[r]);
                if (clusters[r] is not { } cluster || replicas[r] is not { } replica)
                {
                    keep[r] = true;
                    untracked += points;
                    continue;
                }

                var e = _elections[cluster];
                keep[r] = e.Replica == replica;
                if (keep[r])
                {
                    // The elected replica is alive as of now, whether or not Redis was told this time.
                    e.SeenMs = Math.Max(e.SeenMs, now);
                    accepted += points;
                }
                else
                {
                    dropped += points;
                }
            }
        }

        _acceptedMetric.Inc(accepted);
        _droppedMetric.Inc(dropped);
        _untrackedMetric.Inc(untracked);
        if (dropped > 0)
        {
            var write = 0;
            for (var r = 0; r < count; r++)
            {
                if (keep[r])
                {
                    resources[write++] = resources[r];
                }
            }

            for (var r = count - 1; r >= write; r--)
            {
                resources.RemoveAt(r);
            }

            if (resources.Count == 0)
            {
                return;
            }
        }

        await _next.ConsumeAsync(request, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Whether this replica's data needs Redis to decide (the local view cannot), under the lock.</summary>
    private bool NeedsRedis(string cluster, string replica, long now)
    {
        if (!_elections.TryGetValue(cluster, out var e))
        {
            return true;
        }

        return e.Replica == replica
            ? now - e.WrittenMs >= _updateMs
            : now - e.SeenMs > _failoverMs;
    }

    /// <summary>Takes what Redis says about a cluster into the local view, under the lock.</summary>
    private void Apply(string cluster, Answer answer)
    {
        if (!_elections.TryGetValue(cluster, out var e))
        {
            _elections[cluster] = e = new Election { Replica = answer.Replica, ElectedAtMs = answer.ElectedAtMs, SeenMs = answer.SeenMs };
        }
        else if (e.Replica != answer.Replica)
        {
            // The election moved: by this call (a failover here) or earlier by another gateway, learnt now.
            e.Failovers++;
            LogFailover(_logger, _id, cluster, e.Replica, answer.Replica);
            e.Replica = answer.Replica;
            e.ElectedAtMs = answer.ElectedAtMs;
            e.SeenMs = answer.SeenMs;
        }
        else
        {
            // Data passing here may be a fresher sign of life than what Redis holds.
            e.SeenMs = Math.Max(e.SeenMs, answer.SeenMs);
        }

        // Redis holds this "seen" for the elected replica: it needs no refresh before update_timeout from then.
        e.WrittenMs = answer.SeenMs;
        if (answer.Outcome == 1)
        {
            _electionsMetric.Inc();
            LogElected(_logger, _id, cluster, answer.Replica);
        }
        else if (answer.Outcome == 2)
        {
            _electionsMetric.Inc();
            _failoversMetric.Inc();
        }
    }

    /// <summary>The same rules as the script, on the local view only (Redis is off or unreachable), under the lock.</summary>
    private void ElectLocally(string cluster, string replica, long now)
    {
        if (!_elections.TryGetValue(cluster, out var e))
        {
            _elections[cluster] = new Election { Replica = replica, SeenMs = now, WrittenMs = now, ElectedAtMs = now };
            _electionsMetric.Inc();
            LogElected(_logger, _id, cluster, replica);
            return;
        }

        if (e.Replica == replica)
        {
            e.SeenMs = now;
            e.WrittenMs = now;
        }
        else if (now - e.SeenMs > _failoverMs)
        {
            LogFailover(_logger, _id, cluster, e.Replica, replica);
            e.Replica = replica;
            e.SeenMs = now;
            e.WrittenMs = now;
            e.ElectedAtMs = now;
            e.Failovers++;
            _electionsMetric.Inc();
            _failoversMetric.Inc();
        }
    }

    /// <summary>One script call for every (cluster, replica) the request needs decided; null when Redis did not answer.</summary>
    private async Task<Answer[]?> AskRedisAsync(List<(string Cluster, string Replica)> asks, long now, CancellationToken cancellationToken)
    {
        var redis = _redis!;
        var database = await redis.DatabaseAsync(cancellationToken).ConfigureAwait(false);
        if (database is null)
        {
            return null;
        }

        var keys = new RedisKey[asks.Count];
        var args = new RedisValue[4 + asks.Count];
        args[0] = now;
        args[1] = _updateMs;
        args[2] = _failoverMs;
        args[3] = KeyTtlMs;
        for (var a = 0; a < asks.Count; a++)
        {
            keys[a] = Key(asks[a].Cluster);
            args[4 + a] = asks[a].Replica;
        }

        redis.CountRoundTrip();
        try
        {
            var result = (RedisResult[]?)await database.ScriptEvaluateAsync(ElectScript, keys, args).WaitAsync(redis.Timeout, cancellationToken).ConfigureAwait(false) ?? [];
            var answers = new Answer[asks.Count];
            for (var a = 0; a < asks.Count; a++)
            {
                answers[a] = new Answer(
                    (string)result[4 * a]!,
                    long.Parse((string)result[(4 * a) + 1]!, CultureInfo.InvariantCulture),
                    long.Parse((string)result[(4 * a) + 2]!, CultureInfo.InvariantCulture),
                    (long)result[(4 * a) + 3]);
            }

            redis.Succeeded();
            return answers;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or InvalidCastException or FormatException or IndexOutOfRangeException)
        {
            redis.Failed(ex.Message);
            return null;
        }
    }

    private RedisKey Key(string cluster)
    {
        var name = System.Text.Encoding.UTF8.GetBytes(cluster);
        var key = new byte[_keyPrefix.Length + name.Length];
        _keyPrefix.CopyTo(key, 0);
        name.CopyTo(key, _keyPrefix.Length);
        return key;
    }

    private static long Points(OpenTelemetry.Proto.Metrics.V1.ResourceMetrics rm)
    {
        long points = 0;
        foreach (var sm in rm.ScopeMetrics)
        {
            foreach (var metric in sm.Metrics)
            {
                points += MetricsCounting.DataPoints(metric);
            }
        }

        return points;
    }

    private static string? Text(Google.Protobuf.Collections.RepeatedField<KeyValue>? attributes, string key)
    {
        if (attributes is null)
        {
            return null;
        }

        for (var i = 0; i < attributes.Count; i++)
        {
            if (string.Equals(attributes[i].Key, key, StringComparison.Ordinal))
            {
                var value = attributes[i].Value;
                return value is null ? null
                    : value.ValueCase == AnyValue.ValueOneofCase.StringValue ? (value.StringValue.Length > 0 ? value.StringValue : null)
                    : value.ValueCase == AnyValue.ValueOneofCase.IntValue ? value.IntValue.ToString(CultureInfo.InvariantCulture)
                    : null;
            }
        }

        return null;
    }

    private sealed class Election
    {
        public required string Replica { get; set; }

        /// <summary>When the elected replica was last known alive (Redis's "seen", or its data passing here).</summary>
        public long SeenMs { get; set; }

        /// <summary>When this gateway last knew Redis to hold a fresh "seen" for the elected replica.</summary>
        public long WrittenMs { get; set; }

        public long ElectedAtMs { get; set; }

        public long Failovers { get; set; }
    }

    private readonly record struct Answer(string Replica, long SeenMs, long ElectedAtMs, long Outcome);

    [LoggerMessage(EventId = 7101, Level = LogLevel.Information, Message = "Processor {Processor} elected replica {Replica} for cluster {Cluster}.")]
    private static partial void LogElected(ILogger logger, string processor, string cluster, string replica);

    [LoggerMessage(EventId = 7102, Level = LogLevel.Warning, Message = "Processor {Processor}: cluster {Cluster} failed over from replica {From} to {To}.")]
    private static partial void LogFailover(ILogger logger, string processor, string cluster, string from, string to);
}

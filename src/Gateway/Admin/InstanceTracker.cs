using System.Collections.Concurrent;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Gateway.Admin;

/// <summary><c>gateway.admin.instances</c>: what the instance tracker keeps.</summary>
internal sealed class InstanceTrackerOptions
{
    /// <summary>An instance not seen for this long is forgotten (and an agent not seen for this long leaves its list).</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The most instances tracked at once; resources of further instances are counted, not tracked.</summary>
    public int MaxInstances { get; set; } = 10_000;

    /// <summary>The most agents remembered per instance; the one seen longest ago makes room.</summary>
    public int MaxAgentsPerInstance { get; set; } = 16;

    /// <summary>Series are counted over the last one to two of these windows.</summary>
    public TimeSpan SeriesWindow { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Records every PostgreSQL instance whose metrics pass through (resource attributes <c>db.cluster</c>,
/// <c>db.instance</c>, <c>db.role</c>, <c>agent.id</c>, with <c>service.name</c> or <c>db.system</c> =
/// <c>postgresql</c>) for <c>GET /api/v1/instances</c>: agents, last seen, distinct series, points per second.
/// </summary>
/// <remarks>
/// Cheap on the hot path: one dictionary lookup and one uncontended lock per resource, a hash per point into
/// a fixed-size sketch, no allocation once an instance is known. Memory is bounded by
/// <see cref="InstanceTrackerOptions.MaxInstances"/> × ~4.5 KiB; instances not seen for the retention are evicted.
/// </remarks>
internal sealed class InstanceTracker
{
    internal const string ClusterKey = "db.cluster";
    internal const string InstanceKey = "db.instance";
    internal const string RoleKey = "db.role";
    internal const string AgentKey = "agent.id";
    internal const string ServiceNameKey = "service.name";
    internal const string DbSystemKey = "db.system";
    internal const string PostgreSql = "postgresql";

    private static readonly long SweepIntervalTicks = TimeSpan.FromMinutes(1).Ticks;

    private readonly ConcurrentDictionary<(string Cluster, string Instance), InstanceState> _instances = new();
    private readonly InstanceTrackerOptions _options;
    private readonly TimeProvider _time;
    private long _overLimit;
    private long _lastSweep;

    /// <summary>Creates an empty tracker.</summary>
    public InstanceTracker(InstanceTrackerOptions? options = null, TimeProvider? time = null)
    {
        _options = options ?? new InstanceTrackerOptions();
        _time = time ?? TimeProvider.System;
        _lastSweep = _time.GetUtcNow().UtcTicks;
    }

    /// <summary>Instances tracked now (including ones past the retention not yet swept).</summary>
    public int Count => _instances.Count;

    /// <summary>Resources not tracked because <see cref="InstanceTrackerOptions.MaxInstances"/> was reached.</summary>
    public long OverLimitResources => Interlocked.Read(ref _overLimit);

    /// <summary>A pass-through stage that records each request, then hands it to <paramref name="next"/>.</summary>
    public IMetricsConsumer Track(IMetricsConsumer next) => new TrackingConsumer(this, next);

    /// <summary>Records what <paramref name="request"/> says about PostgreSQL instances; never throws on odd data.</summary>
    public void Observe(ExportMetricsServiceRequest request)
    {
        var now = _time.GetUtcNow().UtcTicks;
        // Indexed loops: RepeatedField's enumerator is an allocated iterator.
        var resources = request.ResourceMetrics;
        for (var i = 0; i < resources.Count; i++)
        {
            ObserveResource(resources[i], now);
        }

        if (now - Interlocked.Read(ref _lastSweep) >= SweepIntervalTicks)
        {
            Sweep(now);
        }
    }

    /// <summary>Every instance seen within the retention, by cluster then instance.</summary>
    public IReadOnlyList<InstanceResponse> Snapshot()
    {
        var now = _time.GetUtcNow().UtcTicks;
        Sweep(now);
        var list = new List<InstanceResponse>(_instances.Count);
        foreach (var (key, state) in _instances)
        {
            list.Add(state.Snapshot(key.Cluster, key.Instance, now, _options.Retention.Ticks));
        }

        list.Sort(static (a, b) =>
        {
            var c = string.CompareOrdinal(a.Cluster, b.Cluster);
            return c != 0 ? c : string.CompareOrdinal(a.Instance, b.Instance);
        });
        return list;
    }

    private void ObserveResource(ResourceMetrics resourceMetrics, long now)
    {
        var attributes = resourceMetrics.Resource?.Attributes;
        if (attributes is null)
        {
            return;
        }

        string? cluster = null, instance = null, role = null, agent = null;
        var postgres = false;
        for (var i = 0; i < attributes.Count; i++)
        {
            var kv = attributes[i];
            if (kv.Value is not { ValueCase: AnyValue.ValueOneofCase.StringValue } value)
            {
                continue;
            }

            switch (kv.Key)
            {
                case ClusterKey: cluster = value.StringValue; break;
                case InstanceKey: instance = value.StringValue; break;
                case RoleKey: role = value.StringValue; break;
                case AgentKey: agent = value.StringValue; break;
                case ServiceNameKey or DbSystemKey: postgres |= value.StringValue == PostgreSql; break;
            }
        }

        if (!postgres || string.IsNullOrEmpty(instance))
        {
            return;
        }

        var key = (cluster ?? "", instance);
        if (!_instances.TryGetValue(key, out var state))
        {
            if (_instances.Count >= _options.MaxInstances)
            {
                Sweep(now);
                if (_instances.Count >= _options.MaxInstances)
                {
                    Interlocked.Increment(ref _overLimit);
                    return;
                }
            }

            state = _instances.GetOrAdd(key, static (_, arg) => new InstanceState(arg.Options, arg.Now), (Options: _options, Now: now));
        }

        // Series identity: the resource without the replica attribute (so both agents of an HA pair count one
        // series), the metric name, and the point attributes.
        var resourceHash = SeriesHash.OfAttributes(attributes, AgentKey);
        lock (state.Gate)
        {
            state.Seen(role, agent, now);
            var points = 0;
            var scopes = resourceMetrics.ScopeMetrics;
            for (var s = 0; s < scopes.Count; s++)
            {
                var metrics = scopes[s].Metrics;
                for (var m = 0; m < metrics.Count; m++)
                {
                    var metric = metrics[m];
                    points += state.AddSeries(metric, SeriesHash.Combine(resourceHash, SeriesHash.Of(metric.Name)));
                }
            }

            state.AddPoints(points, now);
        }
    }

    private void Sweep(long now)
    {
        var last = Interlocked.Read(ref _lastSweep);
        if (now > last)
        {
            Interlocked.CompareExchange(ref _lastSweep, now, last);
        }

        var cutoff = now - _options.Retention.Ticks;
        foreach (var (key, state) in _instances)
        {
            if (Volatile.Read(ref state.LastSeenTicks) < cutoff)
            {
                _instances.TryRemove(new KeyValuePair<(string, string), InstanceState>(key, state));
            }
        }
    }

    /// <summary>What is known about one instance; every member is guarded by locking the instance.</summary>
    private sealed class InstanceState
    {
        private const double RateTauSeconds = 60;

        // Until an instance has been seen this long, the rate is scaled up as if it had been (start-up bias).
        private const double RateWarmUpFloorSeconds = 30;

        private readonly InstanceTrackerOptions _options;
        private readonly SeriesSketch _series;
        private readonly List<(string Id, long LastSeen)> _agents = [];
        private readonly long _firstSeen;
        private string _role = "";
        private double _rate;
        private long _rateTicks;

        public readonly Lock Gate = new();

        public long LastSeenTicks;

        public InstanceState(InstanceTrackerOptions options, long now)
        {
            _options = options;
            _series = new SeriesSketch(options.SeriesWindow, now);
            _firstSeen = now;
            _rateTicks = now;
            LastSeenTicks = now;
        }

        public void Seen(string? role, string? agent, long now)
        {
            Volatile.Write(ref LastSeenTicks, Math.Max(LastSeenTicks, now));
            if (!string.IsNullOrEmpty(role) && !string.Equals(role, _role, StringComparison.Ordinal))
            {
                _role = role;
            }

            if (!string.IsNullOrEmpty(agent))
            {
                SeenAgent(agent, now);
            }

            _series.Advance(now);
        }

        /// <summary>Adds every point's series to the sketch; returns the number of points.</summary>
        public int AddSeries(Metric metric, ulong metricHash)
        {
            switch (metric.DataCase)
            {
                case Metric.DataOneofCase.Gauge:
                    var gaugePoints = metric.Gauge.DataPoints;
                    for (var i = 0; i < gaugePoints.Count; i++)
                    {
                        _series.Add(SeriesHash.Combine(metricHash, SeriesHash.OfAttributes(gaugePoints[i].Attributes)));
                    }

                    return gaugePoints.Count;
                case Metric.DataOneofCase.Sum:
                    var sumPoints = metric.Sum.DataPoints;
                    for (var i = 0; i < sumPoints.Count; i++)
                    {
                        _series.Add(SeriesHash.Combine(metricHash, SeriesHash.OfAttributes(sumPoints[i].Attributes)));
                    }

                    return sumPoints.Count;
                case Metric.DataOneofCase.Histogram:
                    var histogramPoints = metric.Histogram.DataPoints;
                    for (var i = 0; i < histogramPoints.Count; i++)
                    {
                        _series.Add(SeriesHash.Combine(metricHash, SeriesHash.OfAttributes(histogramPoints[i].Attributes)));
                    }

                    return histogramPoints.Count;
                case Metric.DataOneofCase.ExponentialHistogram:
                    var exponentialHistogramPoints = metric.ExponentialHistogram.DataPoints;
                    for (var i = 0; i < exponentialHistogramPoints.Count; i++)
                    {
                        _series.Add(SeriesHash.Combine(metricHash, SeriesHash.OfAttributes(exponentialHistogramPoints[i].Attributes)));
                    }

                    return exponentialHistogramPoints.Count;
                case Metric.DataOneofCase.Summary:
                    var summaryPoints = metric.Summary.DataPoints;
                    for (var i = 0; i < summaryPoints.Count; i++)
                    {
                        _series.Add(SeriesHash.Combine(metricHash, SeriesHash.OfAttributes(summaryPoints[i].Attributes)));
                    }

                    return summaryPoints.Count;
                default:
                    return 0;
            }
        }

        /// <summary>
        /// Folds <paramref name="points"/> arriving at <paramref name="now"/> into an exponentially weighted rate
        /// with a one-minute time constant (like a 1-minute load average, but in continuous time, so batches
        /// arriving at any spacing weigh right).
        /// </summary>
        public void AddPoints(int points, long now)
        {
            _rate = DecayedRate(now) + (points / RateTauSeconds);
            _rateTicks = Math.Max(_rateTicks, now);
        }

        public InstanceResponse Snapshot(string cluster, string instance, long now, long retentionTicks)
        {
            lock (Gate)
            {
                _series.Advance(now);
                var agents = new List<InstanceAgentResponse>(_agents.Count);
                foreach (var (id, lastSeen) in _agents)
                {
                    if (now - lastSeen <= retentionTicks)
                    {
                        agents.Add(new InstanceAgentResponse(id, Utc(lastSeen)));
                    }
                }

                agents.Sort(static (a, b) => string.CompareOrdinal(a.Id, b.Id));

                // The raw EWMA starts at 0 and climbs; scaling by the weight the history so far can carry removes
                // that start-up bias (the floor keeps a single early batch from reading as a huge rate).
                var age = Math.Max((now - _firstSeen) / (double)TimeSpan.TicksPerSecond, RateWarmUpFloorSeconds);
                var rate = DecayedRate(now) / (1 - Math.Exp(-age / RateTauSeconds));
                return new InstanceResponse(
                    cluster,
                    instance,
                    _role,
                    agents,
                    Utc(_firstSeen),
                    Utc(LastSeenTicks),
                    _series.Estimate(),
                    Math.Round(rate, 3));
            }
        }

        // Millisecond precision is plenty for people and keeps the JSON short.
        private static DateTime Utc(long ticks) => new(ticks - (ticks % TimeSpan.TicksPerMillisecond), DateTimeKind.Utc);

        private double DecayedRate(long now)
        {
            var elapsed = (now - _rateTicks) / (double)TimeSpan.TicksPerSecond;
            return elapsed <= 0 ? _rate : _rate * Math.Exp(-elapsed / RateTauSeconds);
        }

        private void SeenAgent(string agent, long now)
        {
            var oldest = -1;
            for (var i = 0; i < _agents.Count; i++)
            {
                if (string.Equals(_agents[i].Id, agent, StringComparison.Ordinal))
                {
                    _agents[i] = (_agents[i].Id, Math.Max(_agents[i].LastSeen, now));
                    return;
                }

                if (oldest < 0 || _agents[i].LastSeen < _agents[oldest].LastSeen)
                {
                    oldest = i;
                }
            }

            // A new agent: the only allocation after the instance is known, once per agent.
            if (_agents.Count < _options.MaxAgentsPerInstance)
            {
                _agents.Add((agent, now));
            }
            else if (oldest >= 0)
            {
                _agents[oldest] = (agent, now);
            }
        }
    }

    private sealed class TrackingConsumer(InstanceTracker tracker, IMetricsConsumer next) : IMetricsConsumer
    {
        public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
        {
            // Observe before handing on: afterwards the request belongs to the next stage.
            tracker.Observe(request);
            return next.ConsumeAsync(request, cancellationToken);
        }
    }
}

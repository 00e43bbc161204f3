using System.Text;
using Google.Protobuf.Collections;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;

namespace PgOtelGateway.Shared.Translation;

/// <summary>
/// Turns delta sums and delta histograms into cumulative ones by keeping a running total per stream (resource,
/// scope, metric, point attributes). Prometheus only understands cumulative counters; the ring sends every
/// point of a stream to one gateway, so this state is complete where it lives. Bounded: the least recently
/// updated streams are forgotten past <c>maxStreams</c>, and such a stream restarts from its next delta.
/// </summary>
public sealed class DeltaToCumulative
{
    private readonly int _maxStreams;
    private readonly Dictionary<string, StreamState> _streams = new(StringComparer.Ordinal);
    private readonly object _lock = new();
    private long _clock;

    /// <summary>Creates the converter.</summary>
    public DeltaToCumulative(int maxStreams = 100_000) => _maxStreams = maxStreams;

    /// <summary>Streams currently tracked.</summary>
    public int StreamCount
    {
        get
        {
            lock (_lock)
            {
                return _streams.Count;
            }
        }
    }

    /// <summary>Rewrites every delta sum and histogram of <paramref name="request"/> in place as cumulative.</summary>
    public void Convert(ExportMetricsServiceRequest request)
    {
        lock (_lock)
        {
            foreach (var rm in request.ResourceMetrics)
            {
                string? resourceKey = null;
                foreach (var sm in rm.ScopeMetrics)
                {
                    foreach (var metric in sm.Metrics)
                    {
                        if (metric.DataCase == Metric.DataOneofCase.Sum && metric.Sum.AggregationTemporality == AggregationTemporality.Delta)
                        {
                            resourceKey ??= Key(rm.Resource?.Attributes);
                            foreach (var p in metric.Sum.DataPoints)
                            {
                                var state = State(resourceKey, sm.Scope?.Name, metric.Name, p.Attributes, p.StartTimeUnixNano);
                                var value = p.ValueCase == NumberDataPoint.ValueOneofCase.AsInt ? p.AsInt : p.AsDouble;
                                state.Sum += value;
                                p.StartTimeUnixNano = state.Start;
                                if (p.ValueCase == NumberDataPoint.ValueOneofCase.AsInt)
                                {
                                    p.AsInt = (long)state.Sum;
                                }
                                else
                                {
                                    p.AsDouble = state.Sum;
                                }
                            }

                            metric.Sum.AggregationTemporality = AggregationTemporality.Cumulative;
                        }
                        else if (metric.DataCase == Metric.DataOneofCase.Histogram && metric.Histogram.AggregationTemporality == AggregationTemporality.Delta)
                        {
                            resourceKey ??= Key(rm.Resource?.Attributes);
                            foreach (var p in metric.Histogram.DataPoints)
                            {
                                var state = State(resourceKey, sm.Scope?.Name, metric.Name, p.Attributes, p.StartTimeUnixNano);
                                AccumulateHistogram(state, p);
                            }

                            metric.Histogram.AggregationTemporality = AggregationTemporality.Cumulative;
                        }
                    }
                }
            }
        }
    }

    private static void AccumulateHistogram(StreamState state, HistogramDataPoint p)
    {
        // Changed bucket layout: the running total cannot continue, so the stream starts over.
        if (state.Bounds is null || !SameBounds(state.Bounds, p.ExplicitBounds) || state.Buckets!.Length != p.BucketCounts.Count)
        {
            state.Bounds = [.. p.ExplicitBounds];
            state.Buckets = new ulong[p.BucketCounts.Count];
            state.Count = 0;
            state.Sum = 0;
            state.Start = p.StartTimeUnixNano;
        }

        for (var i = 0; i < p.BucketCounts.Count; i++)
        {
            state.Buckets[i] += p.BucketCounts[i];
            p.BucketCounts[i] = state.Buckets[i];
        }

        state.Count += p.Count;
        p.Count = state.Count;
        if (p.HasSum)
        {
            state.Sum += p.Sum;
            p.Sum = state.Sum;
        }

        p.StartTimeUnixNano = state.Start;
    }

    private static bool SameBounds(double[] a, RepeatedField<double> b)
    {
        if (a.Length != b.Count)
        {
            return false;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (!a[i].Equals(b[i]))
            {
                return false;
            }
        }

        return true;
    }

    private StreamState State(string resourceKey, string? scope, string metric, RepeatedField<KeyValue> attributes, ulong start)
    {
        var key = resourceKey + "\u0001" + scope + "\u0001" + metric + "\u0001" + Key(attributes);
        if (!_streams.TryGetValue(key, out var state))
        {
            if (_streams.Count >= _maxStreams)
            {
                EvictOldest();
            }

            state = new StreamState { Start = start };
            _streams[key] = state;
        }

        state.LastUsed = ++_clock;
        return state;
    }

    private void EvictOldest()
    {
        // Drop the oldest tenth at once, so eviction cost is paid rarely.
        var cutoff = _clock - (long)(_streams.Count * 0.9);
        var stale = new List<string>();
        foreach (var (k, v) in _streams)
        {
            if (v.LastUsed <= cutoff)
            {
                stale.Add(k);
            }
        }

        foreach (var k in stale)
        {
            _streams.Remove(k);
        }
    }

    private static string Key(RepeatedField<KeyValue>? attributes)
    {
        if (attributes is null || attributes.Count == 0)
        {
            return "";
        }

        var pairs = new List<(string, string)>(attributes.Count);
        foreach (var kv in attributes)
        {
            pairs.Add((kv.Key, OtlpToPrometheus.AttributeText(kv.Value)));
        }

        pairs.Sort((a, b) => string.CompareOrdinal(a.Item1, b.Item1));
        var sb = new StringBuilder();
        foreach (var (k, v) in pairs)
        {
            sb.Append(k).Append('\u0002').Append(v).Append('\u0003');
        }

        return sb.ToString();
    }

    private sealed class StreamState
    {
        public ulong Start;
        public double Sum;
        public ulong Count;
        public double[]? Bounds;
        public ulong[]? Buckets;
        public long LastUsed;
    }
}

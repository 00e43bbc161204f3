using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;

namespace PgOtelGateway.Agent.Tests.Export;

/// <summary>
/// Seeded random OTLP requests that set every field of every message sometimes and leave it at its default
/// sometimes, with attribute objects shared across places: input for comparing encoders.
/// </summary>
internal static class RandomRequests
{
    private static readonly string[] Texts = ["", "a", "database_name", "Größe", "表名", "🐘", "lone \ud800", new string('x', 130)];

    public static ExportMetricsServiceRequest Build(Random rng)
    {
        var shared = new List<KeyValue>();
        var request = new ExportMetricsServiceRequest();
        for (var r = rng.Next(1, 4); r > 0; r--)
        {
            var rm = new ResourceMetrics { SchemaUrl = Text(rng) };
            if (rng.Next(4) > 0)
            {
                rm.Resource = new Resource { DroppedAttributesCount = Small(rng) };
                rm.Resource.Attributes.Add(Attributes(rng, shared));
                if (rng.Next(3) == 0)
                {
                    rm.Resource.EntityRefs.Add(new EntityRef { SchemaUrl = Text(rng), Type = Text(rng), IdKeys = { Text(rng), Text(rng) }, DescriptionKeys = { Text(rng) } });
                }
            }

            for (var s = rng.Next(0, 3); s > 0; s--)
            {
                var sm = new ScopeMetrics { SchemaUrl = Text(rng) };
                if (rng.Next(3) > 0)
                {
                    sm.Scope = new InstrumentationScope { Name = Text(rng), Version = Text(rng), DroppedAttributesCount = Small(rng) };
                    sm.Scope.Attributes.Add(Attributes(rng, shared));
                }

                for (var m = rng.Next(0, 8); m > 0; m--)
                {
                    sm.Metrics.Add(Metric(rng, shared));
                }

                rm.ScopeMetrics.Add(sm);
            }

            request.ResourceMetrics.Add(rm);
        }

        return request;
    }

    private static Metric Metric(Random rng, List<KeyValue> shared)
    {
        var metric = new Metric { Name = Text(rng), Description = Text(rng), Unit = Text(rng) };
        metric.Metadata.Add(Attributes(rng, shared));
        var points = rng.Next(0, 6);
        switch (rng.Next(6))
        {
            case 0:
                metric.Gauge = new Gauge();
                for (var i = 0; i < points; i++)
                {
                    metric.Gauge.DataPoints.Add(NumberPoint(rng, shared));
                }

                break;
            case 1:
                metric.Sum = new Sum { AggregationTemporality = Temporality(rng), IsMonotonic = rng.Next(2) == 0 };
                for (var i = 0; i < points; i++)
                {
                    metric.Sum.DataPoints.Add(NumberPoint(rng, shared));
                }

                break;
            case 2:
                metric.Histogram = new Histogram { AggregationTemporality = Temporality(rng) };
                for (var i = 0; i < points; i++)
                {
                    var p = new HistogramDataPoint { StartTimeUnixNano = Time(rng), TimeUnixNano = Time(rng), Count = Time(rng), Flags = Small(rng) };
                    p.Attributes.Add(Attributes(rng, shared));
                    p.Exemplars.Add(Exemplars(rng, shared));
                    for (var b = rng.Next(0, 4); b > 0; b--)
                    {
                        p.BucketCounts.Add(Time(rng));
                        p.ExplicitBounds.Add(Double(rng));
                    }

                    SetSometimes(rng, () => p.Sum = Double(rng));
                    SetSometimes(rng, () => p.Min = Double(rng));
                    SetSometimes(rng, () => p.Max = Double(rng));
                    metric.Histogram.DataPoints.Add(p);
                }

                break;
            case 3:
                metric.ExponentialHistogram = new ExponentialHistogram { AggregationTemporality = Temporality(rng) };
                for (var i = 0; i < points; i++)
                {
                    var p = new ExponentialHistogramDataPoint
                    {
                        StartTimeUnixNano = Time(rng), TimeUnixNano = Time(rng), Count = Time(rng), Scale = rng.Next(-20, 21),
                        ZeroCount = Time(rng), Flags = Small(rng), ZeroThreshold = Double(rng),
                        Positive = rng.Next(2) == 0 ? null : Buckets(rng),
                        Negative = rng.Next(2) == 0 ? null : Buckets(rng),
                    };
                    p.Attributes.Add(Attributes(rng, shared));
                    p.Exemplars.Add(Exemplars(rng, shared));
                    SetSometimes(rng, () => p.Sum = Double(rng));
                    SetSometimes(rng, () => p.Min = Double(rng));
                    SetSometimes(rng, () => p.Max = Double(rng));
                    metric.ExponentialHistogram.DataPoints.Add(p);
                }

                break;
            case 4:
                metric.Summary = new Summary();
                for (var i = 0; i < points; i++)
                {
                    var p = new SummaryDataPoint { StartTimeUnixNano = Time(rng), TimeUnixNano = Time(rng), Count = Time(rng), Sum = Double(rng), Flags = Small(rng) };
                    p.Attributes.Add(Attributes(rng, shared));
                    for (var q = rng.Next(0, 4); q > 0; q--)
                    {
                        p.QuantileValues.Add(new SummaryDataPoint.Types.ValueAtQuantile { Quantile = Double(rng), Value = Double(rng) });
                    }

                    metric.Summary.DataPoints.Add(p);
                }

                break;
            default:
                break; // no data
        }

        return metric;
    }

    private static NumberDataPoint NumberPoint(Random rng, List<KeyValue> shared)
    {
        var p = new NumberDataPoint { StartTimeUnixNano = Time(rng), TimeUnixNano = Time(rng), Flags = Small(rng) };
        switch (rng.Next(3))
        {
            case 0:
                p.AsInt = rng.NextInt64(long.MinValue, long.MaxValue) >> rng.Next(64);
                break;
            case 1:
                p.AsDouble = Double(rng);
                break;
            default:
                break; // no value
        }

        p.Attributes.Add(Attributes(rng, shared));
        p.Exemplars.Add(Exemplars(rng, shared));
        return p;
    }

    private static IEnumerable<Exemplar> Exemplars(Random rng, List<KeyValue> shared)
    {
        for (var i = rng.Next(-3, 3); i > 0; i--)
        {
            var e = new Exemplar { TimeUnixNano = Time(rng), SpanId = Bytes(rng), TraceId = Bytes(rng) };
            if (rng.Next(3) == 0)
            {
                e.AsInt = rng.Next(int.MinValue, int.MaxValue);
            }
            else if (rng.Next(2) == 0)
            {
                e.AsDouble = Double(rng);
            }

            e.FilteredAttributes.Add(Attributes(rng, shared));
            yield return e;
        }
    }

    private static ExponentialHistogramDataPoint.Types.Buckets Buckets(Random rng)
    {
        var buckets = new ExponentialHistogramDataPoint.Types.Buckets { Offset = rng.Next(-1000, 1000) };
        for (var i = rng.Next(0, 5); i > 0; i--)
        {
            buckets.BucketCounts.Add(Time(rng));
        }

        return buckets;
    }

    private static List<KeyValue> Attributes(Random rng, List<KeyValue> shared)
    {
        var list = new List<KeyValue>();
        for (var i = rng.Next(0, 5); i > 0; i--)
        {
            if (shared.Count > 0 && rng.Next(2) == 0)
            {
                list.Add(shared[rng.Next(shared.Count)]);
                continue;
            }

            var kv = new KeyValue { Key = Text(rng), KeyStrindex = rng.Next(4) == 0 ? rng.Next(-2, 3) : 0 };
            if (rng.Next(6) > 0)
            {
                kv.Value = Value(rng, depth: 0);
            }

            shared.Add(kv);
            list.Add(kv);
        }

        return list;
    }

    private static AnyValue Value(Random rng, int depth)
    {
        var value = new AnyValue();
        switch (rng.Next(depth < 2 ? 9 : 7))
        {
            case 0:
                value.StringValue = Text(rng);
                break;
            case 1:
                value.BoolValue = rng.Next(2) == 0;
                break;
            case 2:
                value.IntValue = rng.NextInt64(long.MinValue, long.MaxValue) >> rng.Next(64);
                break;
            case 3:
                value.DoubleValue = Double(rng);
                break;
            case 4:
                value.BytesValue = Bytes(rng);
                break;
            case 5:
                value.StringValueStrindex = rng.Next(-3, 300);
                break;
            case 6:
                break; // no value
            case 7:
                value.ArrayValue = new ArrayValue();
                for (var i = rng.Next(0, 4); i > 0; i--)
                {
                    value.ArrayValue.Values.Add(Value(rng, depth + 1));
                }

                break;
            default:
                value.KvlistValue = new KeyValueList();
                for (var i = rng.Next(0, 4); i > 0; i--)
                {
                    value.KvlistValue.Values.Add(new KeyValue { Key = Text(rng), Value = Value(rng, depth + 1) });
                }

                break;
        }

        return value;
    }

    private static void SetSometimes(Random rng, Action set)
    {
        if (rng.Next(2) == 0)
        {
            set();
        }
    }

    private static string Text(Random rng) => Texts[rng.Next(Texts.Length)];

    private static uint Small(Random rng) => rng.Next(3) == 0 ? (uint)rng.Next(0, 300) : 0;

    private static ulong Time(Random rng) => rng.Next(3) == 0 ? 0 : (ulong)rng.NextInt64() << rng.Next(2);

    private static double Double(Random rng) => rng.Next(8) switch
    {
        0 => 0D,
        1 => -0D,
        2 => double.NaN,
        3 => double.PositiveInfinity,
        _ => (rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-10, 10)),
    };

    private static ByteString Bytes(Random rng)
    {
        var bytes = new byte[rng.Next(3) == 0 ? 0 : rng.Next(1, 17)];
        rng.NextBytes(bytes);
        return ByteString.CopyFrom(bytes);
    }

    private static AggregationTemporality Temporality(Random rng) => (AggregationTemporality)rng.Next(-1, 3);
}

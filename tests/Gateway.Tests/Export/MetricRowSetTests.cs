using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Gateway.Export.Parquet;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Export;

public sealed class MetricRowSetTests
{
    private const ulong T0 = 1_764_000_000_000_000_000;

    private static KeyValue Kv(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };

    private static ExportMetricsServiceRequest Request(params Metric[] metrics)
    {
        var rm = new ResourceMetrics { Resource = new Resource() };
        rm.Resource.Attributes.Add(Kv("service.name", "postgresql"));
        rm.Resource.Attributes.Add(Kv("db.cluster", "main"));
        rm.Resource.Attributes.Add(Kv("db.instance", "pg1:5432"));
        rm.Resource.Attributes.Add(Kv("db.role", "primary"));
        rm.Resource.Attributes.Add(Kv("host.name", "pg1"));
        rm.Resource.Attributes.Add(Kv("db.version", "15.4"));
        rm.Resource.Attributes.Add(new KeyValue { Key = "agent.port", Value = new AnyValue { IntValue = 8888 } });
        var sm = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent" } };
        sm.Metrics.AddRange(metrics);
        rm.ScopeMetrics.Add(sm);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    [Fact]
    public void Add_GaugeWithIntAndDouble_FillsOneValueColumnEach()
    {
        var gauge = new Gauge();
        gauge.DataPoints.Add(new NumberDataPoint { TimeUnixNano = T0, AsInt = 42, Attributes = { Kv("datname", "app") } });
        gauge.DataPoints.Add(new NumberDataPoint { TimeUnixNano = T0, AsDouble = 0.5, Attributes = { Kv("datname", "web") } });
        var set = new MetricRowSet();

        Assert.Equal(2, set.Add(Request(new Metric { Name = "postgresql.database.size", Unit = "By", Gauge = gauge })));

        var a = set[0];
        Assert.Equal("postgresql.database.size", a.MetricName);
        Assert.Equal("gauge", a.MetricType);
        Assert.Equal("By", a.Unit);
        Assert.Null(a.Temporality);
        Assert.Null(a.IsMonotonic);
        Assert.Equal(42, a.ValueInt);
        Assert.Null(a.ValueDouble);
        Assert.Equal((long)T0, a.TimeUnixNano);
        Assert.Equal(0, a.StartTimeUnixNano);
        var b = set[1];
        Assert.Null(b.ValueInt);
        Assert.Equal(0.5, b.ValueDouble);
    }

    [Fact]
    public void Add_WellKnownResourceAttributes_GetColumnsAndTheRestAMap()
    {
        var gauge = new Gauge();
        gauge.DataPoints.Add(new NumberDataPoint { TimeUnixNano = T0, AsInt = 1, Attributes = { Kv("datname", "app"), Kv("a", "1") } });
        var set = new MetricRowSet();
        set.Add(Request(new Metric { Name = "m", Gauge = gauge }));

        var row = set[0];
        Assert.Equal("postgresql", row.Resource.ServiceName);
        Assert.Equal("main", row.Resource.DbCluster);
        Assert.Equal("pg1:5432", row.Resource.DbInstance);
        Assert.Equal("primary", row.Resource.DbRole);
        Assert.Equal("pg1", row.Resource.HostName);
        Assert.Equal([new("agent.port", "8888"), new("db.version", "15.4")], row.Resource.Others);
        Assert.Equal([new("a", "1"), new("datname", "app")], row.Attributes);
        Assert.Equal("pgotel-agent", row.ScopeName);
    }

    [Fact]
    public void Add_MonotonicCumulativeSum_RecordsTemporalityAndStart()
    {
        var sum = new Sum { AggregationTemporality = AggregationTemporality.Cumulative, IsMonotonic = true };
        sum.DataPoints.Add(new NumberDataPoint { TimeUnixNano = T0, StartTimeUnixNano = T0 - 1_000_000_000, AsInt = 7 });
        var set = new MetricRowSet();
        set.Add(Request(new Metric { Name = "postgresql.commits", Unit = "1", Sum = sum }));

        var row = set[0];
        Assert.Equal("sum", row.MetricType);
        Assert.Equal("cumulative", row.Temporality);
        Assert.True(row.IsMonotonic);
        Assert.Equal((long)T0 - 1_000_000_000, row.StartTimeUnixNano);
        Assert.Equal(7, row.ValueInt);
    }

    [Fact]
    public void Add_DeltaNonMonotonicSum_RecordsDeltaAndFalse()
    {
        var sum = new Sum { AggregationTemporality = AggregationTemporality.Delta, IsMonotonic = false };
        sum.DataPoints.Add(new NumberDataPoint { TimeUnixNano = T0, AsDouble = -2.5 });
        var set = new MetricRowSet();
        set.Add(Request(new Metric { Name = "x", Sum = sum }));

        Assert.Equal("delta", set[0].Temporality);
        Assert.False(set[0].IsMonotonic);
        Assert.Equal(-2.5, set[0].ValueDouble);
    }

    [Fact]
    public void Add_Histogram_CopiesCountSumBoundsAndBuckets()
    {
        var histogram = new Histogram { AggregationTemporality = AggregationTemporality.Cumulative };
        histogram.DataPoints.Add(new HistogramDataPoint
        {
            TimeUnixNano = T0,
            Count = 6,
            Sum = 12.5,
            ExplicitBounds = { 1, 5 },
            BucketCounts = { 1, 2, 3 },
        });
        var set = new MetricRowSet();
        set.Add(Request(new Metric { Name = "latency", Unit = "s", Histogram = histogram }));

        var row = set[0];
        Assert.Equal("histogram", row.MetricType);
        Assert.Equal(6, row.Count);
        Assert.Equal(12.5, row.Sum);
        Assert.Equal([1.0, 5.0], row.ExplicitBounds!);
        Assert.Equal([1L, 2L, 3L], row.BucketCounts!);
        Assert.Null(row.ValueDouble);
        Assert.Null(row.ValueInt);
    }

    [Fact]
    public void Add_Summary_GivesACountSumRowAndOneRowPerQuantile()
    {
        var summary = new Summary();
        summary.DataPoints.Add(new SummaryDataPoint
        {
            TimeUnixNano = T0,
            Count = 10,
            Sum = 3,
            Attributes = { Kv("queryid", "42") },
            QuantileValues =
            {
                new SummaryDataPoint.Types.ValueAtQuantile { Quantile = 0.5, Value = 0.2 },
                new SummaryDataPoint.Types.ValueAtQuantile { Quantile = 0.99, Value = 0.9 },
            },
        });
        var set = new MetricRowSet();

        Assert.Equal(3, set.Add(Request(new Metric { Name = "q", Summary = summary })));

        Assert.Equal(10, set[0].Count);
        Assert.Equal(3, set[0].Sum);
        Assert.Equal([new("queryid", "42")], set[0].Attributes);
        Assert.Equal(0.2, set[1].ValueDouble);
        Assert.Equal([new("quantile", "0.5"), new("queryid", "42")], set[1].Attributes);
        Assert.Equal(0.9, set[2].ValueDouble);
        Assert.Equal([new("quantile", "0.99"), new("queryid", "42")], set[2].Attributes);
        Assert.All(set.Rows.ToArray(), r => Assert.Equal("summary", r.MetricType));
    }

    [Fact]
    public void ExponentialToExplicit_PutsZeroAndNegativesInTheFirstBucket()
    {
        var p = new ExponentialHistogramDataPoint
        {
            Scale = 0,
            ZeroCount = 1,
            Positive = new ExponentialHistogramDataPoint.Types.Buckets { Offset = 1, BucketCounts = { 3, 4 } },
            Negative = new ExponentialHistogramDataPoint.Types.Buckets { BucketCounts = { 2 } },
        };

        var (bounds, counts) = MetricRowSet.ExponentialToExplicit(p);

        Assert.Equal([2.0, 4.0, 8.0], bounds);
        Assert.Equal([3L, 3L, 4L, 0L], counts);
    }

    [Fact]
    public void Sort_OrdersByPartitionMetricSeriesThenTime()
    {
        var gauge = new Gauge();
        gauge.DataPoints.Add(new NumberDataPoint { TimeUnixNano = T0 + 20_000_000_000, AsInt = 3, Attributes = { Kv("s", "b") } });
        gauge.DataPoints.Add(new NumberDataPoint { TimeUnixNano = T0 + 10_000_000_000, AsInt = 2, Attributes = { Kv("s", "b") } });
        gauge.DataPoints.Add(new NumberDataPoint { TimeUnixNano = T0 + 10_000_000_000, AsInt = 1, Attributes = { Kv("s", "a") } });
        var other = new Gauge();
        other.DataPoints.Add(new NumberDataPoint { TimeUnixNano = T0, AsInt = 0 });
        var set = new MetricRowSet();
        set.Add(Request(new Metric { Name = "z", Gauge = gauge }, new Metric { Name = "a", Gauge = other }));

        set.Sort();

        Assert.Equal([0L, 1L, 2L, 3L], set.Rows.ToArray().Select(r => r.ValueInt!.Value));
    }

    [Theory]
    [InlineData(AnyValue.ValueOneofCase.IntValue, "-5")]
    [InlineData(AnyValue.ValueOneofCase.DoubleValue, "0.25")]
    [InlineData(AnyValue.ValueOneofCase.BoolValue, "true")]
    [InlineData(AnyValue.ValueOneofCase.ArrayValue, "[\"x\",1]")]
    public void Text_NonStringValues_AreInvariantText(AnyValue.ValueOneofCase kind, string expected)
    {
        var value = kind switch
        {
            AnyValue.ValueOneofCase.IntValue => new AnyValue { IntValue = -5 },
            AnyValue.ValueOneofCase.DoubleValue => new AnyValue { DoubleValue = 0.25 },
            AnyValue.ValueOneofCase.BoolValue => new AnyValue { BoolValue = true },
            _ => new AnyValue { ArrayValue = new ArrayValue { Values = { new AnyValue { StringValue = "x" }, new AnyValue { IntValue = 1 } } } },
        };

        Assert.Equal(expected, MetricRowSet.Text(value));
    }
}

using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using TimeSeries = PgOtelGateway.Shared.RemoteWrite.Proto.TimeSeries;
using PgOtelGateway.Shared.Translation;
using Xunit;

namespace PgOtelGateway.Shared.Tests.Translation;

/// <summary>Golden cases for the series OTLP data becomes (DESIGN.md §6).</summary>
public sealed class OtlpToPrometheusTests
{
    private const ulong T = 1_700_000_000_000_000_000UL;
    private const long Ms = 1_700_000_000_000L;

    private static ExportMetricsServiceRequest Request(Metric metric, params (string, string)[] resource)
    {
        var rm = new ResourceMetrics { Resource = new Resource() };
        foreach (var (k, v) in resource)
        {
            rm.Resource.Attributes.Add(new KeyValue { Key = k, Value = new AnyValue { StringValue = v } });
        }

        var sm = new ScopeMetrics();
        sm.Metrics.Add(metric);
        rm.ScopeMetrics.Add(sm);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    private static NumberDataPoint Point(double value, params (string, string)[] attributes)
    {
        var p = new NumberDataPoint { AsDouble = value, TimeUnixNano = T, StartTimeUnixNano = T - 1 };
        foreach (var (k, v) in attributes)
        {
            p.Attributes.Add(new KeyValue { Key = k, Value = new AnyValue { StringValue = v } });
        }

        return p;
    }

    private static string Text(TimeSeries s) =>
        string.Join(",", s.Labels.Select(l => l.Name + "=" + l.Value)) + " " + s.Samples[0].Value.ToString(System.Globalization.CultureInfo.InvariantCulture) + "@" + s.Samples[0].Timestamp;

    private static List<string> Translate(ExportMetricsServiceRequest request, TranslationOptions? options = null) =>
        OtlpToPrometheus.Translate(request, options ?? new TranslationOptions { TargetInfo = false }).Series.Select(Text).ToList();

    [Fact]
    public void Gauge_BecomesOneSampleWithSortedLabelsJobAndInstance()
    {
        var gauge = new Metric { Name = "pg.size", Unit = "By", Gauge = new Gauge() };
        gauge.Gauge.DataPoints.Add(Point(42, ("database_name", "shop")));

        var series = Translate(Request(gauge, ("service.name", "postgresql"), ("service.namespace", "prod"), ("service.instance.id", "db1:5432")));

        Assert.Equal([$"__name__=pg_size_bytes,database_name=shop,instance=db1:5432,job=prod/postgresql 42@{Ms}"], series);
    }

    [Fact]
    public void MonotonicCumulativeSum_IsACounterWithTotal_AndNonMonotonicSumIsAGauge()
    {
        var counter = new Metric { Name = "tx", Unit = "{transaction}", Sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Cumulative } };
        counter.Sum.DataPoints.Add(Point(7));
        var upDown = new Metric { Name = "queue.depth", Unit = "{item}", Sum = new Sum { IsMonotonic = false, AggregationTemporality = AggregationTemporality.Cumulative } };
        upDown.Sum.DataPoints.Add(Point(3));

        Assert.Equal([$"__name__=tx_total 7@{Ms}"], Translate(Request(counter)));
        Assert.Equal([$"__name__=queue_depth 3@{Ms}"], Translate(Request(upDown)));
    }

    [Fact]
    public void Histogram_BecomesCumulativeBucketsSumAndCount()
    {
        var h = new Metric { Name = "latency", Unit = "ms", Histogram = new Histogram { AggregationTemporality = AggregationTemporality.Cumulative } };
        var p = new HistogramDataPoint { TimeUnixNano = T, Count = 6, Sum = 123.5 };
        p.ExplicitBounds.Add([10, 100]);
        p.BucketCounts.Add([1, 2, 3]);
        h.Histogram.DataPoints.Add(p);

        Assert.Equal(
        [
            $"__name__=latency_milliseconds_bucket,le=10 1@{Ms}",
            $"__name__=latency_milliseconds_bucket,le=100 3@{Ms}",
            $"__name__=latency_milliseconds_bucket,le=+Inf 6@{Ms}",
            $"__name__=latency_milliseconds_sum 123.5@{Ms}",
            $"__name__=latency_milliseconds_count 6@{Ms}",
        ], Translate(Request(h)));
    }

    [Fact]
    public void Summary_BecomesQuantilesSumAndCount()
    {
        var s = new Metric { Name = "rpc.duration", Unit = "s", Summary = new Summary() };
        var p = new SummaryDataPoint { TimeUnixNano = T, Count = 10, Sum = 5 };
        p.QuantileValues.Add(new SummaryDataPoint.Types.ValueAtQuantile { Quantile = 0.5, Value = 0.4 });
        p.QuantileValues.Add(new SummaryDataPoint.Types.ValueAtQuantile { Quantile = 0.99, Value = 1.2 });
        s.Summary.DataPoints.Add(p);

        Assert.Equal(
        [
            $"__name__=rpc_duration_seconds,quantile=0.5 0.4@{Ms}",
            $"__name__=rpc_duration_seconds,quantile=0.99 1.2@{Ms}",
            $"__name__=rpc_duration_seconds_sum 5@{Ms}",
            $"__name__=rpc_duration_seconds_count 10@{Ms}",
        ], Translate(Request(s)));
    }

    [Fact]
    public void CollidingLabelKeys_AreJoinedWithSemicolons()
    {
        var gauge = new Metric { Name = "g", Gauge = new Gauge() };
        gauge.Gauge.DataPoints.Add(Point(1, ("db.name", "a"), ("db_name", "b")));

        Assert.Equal([$"__name__=g,db_name=a;b 1@{Ms}"], Translate(Request(gauge)));
    }

    [Fact]
    public void TargetInfo_CarriesResourceAttributes_AndChosenAttributesAreCopiedOntoSeries()
    {
        var gauge = new Metric { Name = "g", Gauge = new Gauge() };
        gauge.Gauge.DataPoints.Add(Point(1));
        var request = Request(gauge, ("service.name", "postgresql"), ("service.instance.id", "db1:5432"), ("db.cluster", "main"), ("db.role", "primary"));

        var series = Translate(request, new TranslationOptions { TargetInfo = true, CopyResourceAttributes = ["db.cluster"], ExternalLabels = new Dictionary<string, string> { ["region"] = "eu", ["job"] = "ignored" } });

        Assert.Equal(
        [
            $"__name__=g,db_cluster=main,instance=db1:5432,job=postgresql,region=eu 1@{Ms}",
            $"__name__=target_info,db_cluster=main,db_role=primary,instance=db1:5432,job=postgresql,region=eu 1@{Ms}",
        ], series);
    }

    [Fact]
    public void ResourceToTelemetryConversion_CopiesEveryResourceAttribute()
    {
        var gauge = new Metric { Name = "g", Gauge = new Gauge() };
        gauge.Gauge.DataPoints.Add(Point(1, ("db.role", "point-wins")));
        var request = Request(gauge, ("service.name", "svc"), ("db.role", "primary"), ("host.name", "h1"));

        Assert.Equal([$"__name__=g,db_role=point-wins,host_name=h1,job=svc 1@{Ms}"], Translate(request, new TranslationOptions { TargetInfo = false, ResourceToTelemetry = true }));
    }

    [Fact]
    public void NaNAndInfinity_PassThrough_AndNoRecordedValueIsAStaleMarker()
    {
        var gauge = new Metric { Name = "g", Gauge = new Gauge() };
        gauge.Gauge.DataPoints.Add(Point(double.PositiveInfinity, ("k", "inf")));
        gauge.Gauge.DataPoints.Add(Point(double.NaN, ("k", "nan")));
        var stale = Point(5, ("k", "stale"));
        stale.Flags = 1;
        gauge.Gauge.DataPoints.Add(stale);

        var series = OtlpToPrometheus.Translate(Request(gauge), new TranslationOptions { TargetInfo = false }).Series;

        Assert.True(double.IsPositiveInfinity(series[0].Samples[0].Value));
        Assert.True(double.IsNaN(series[1].Samples[0].Value));
        Assert.Equal(0x7ff0000000000002, BitConverter.DoubleToInt64Bits(series[2].Samples[0].Value));
    }

    [Fact]
    public void DeltaSums_AreAccumulatedIntoCumulativeCounters()
    {
        var deltas = new DeltaToCumulative();
        var values = new List<double>();
        foreach (var delta in new[] { 5.0, 3.0, 2.0 })
        {
            var sum = new Metric { Name = "hits", Sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Delta } };
            sum.Sum.DataPoints.Add(Point(delta, ("route", "/a")));
            var request = Request(sum, ("service.name", "svc"));
            deltas.Convert(request);
            values.Add(OtlpToPrometheus.Translate(request, new TranslationOptions { TargetInfo = false }).Series.Single().Samples[0].Value);
        }

        Assert.Equal([5.0, 8.0, 10.0], values);
    }

    [Fact]
    public void DeltaHistograms_AreAccumulatedBucketByBucket()
    {
        var deltas = new DeltaToCumulative();
        HistogramDataPoint Delta(ulong a, ulong b)
        {
            var p = new HistogramDataPoint { TimeUnixNano = T, Count = a + b, Sum = a + b };
            p.ExplicitBounds.Add(1);
            p.BucketCounts.Add([a, b]);
            return p;
        }

        HistogramDataPoint last = new();
        foreach (var (a, b) in new[] { (1UL, 2UL), (3UL, 4UL) })
        {
            var h = new Metric { Name = "h", Histogram = new Histogram { AggregationTemporality = AggregationTemporality.Delta } };
            last = Delta(a, b);
            h.Histogram.DataPoints.Add(last);
            deltas.Convert(Request(h));
        }

        Assert.Equal([4UL, 6UL], last.BucketCounts);
        Assert.Equal(10UL, last.Count);
    }

    [Fact]
    public void ExponentialHistograms_AreDroppedAndCounted()
    {
        var e = new Metric { Name = "e", ExponentialHistogram = new ExponentialHistogram() };
        e.ExponentialHistogram.DataPoints.Add(new ExponentialHistogramDataPoint { TimeUnixNano = T, Count = 1 });

        var result = OtlpToPrometheus.Translate(Request(e), new TranslationOptions());

        Assert.Empty(result.Series);
        Assert.Equal(1, result.DroppedPoints);
    }
}

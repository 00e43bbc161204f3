using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Gateway.Export.RemoteWrite;
using PgOtelGateway.Shared.Translation;
using Xunit;
using TimeSeries = PgOtelGateway.Shared.RemoteWrite.Proto.TimeSeries;

namespace PgOtelGateway.Gateway.Tests.Export;

/// <summary>
/// The exporter's byte encoder against the object translation (whose rules the Shared.Tests golden cases pin):
/// for the same request and options, every series encodes to exactly the bytes <c>TimeSeries.ToByteArray()</c>
/// gives, in the same order, and the shard grouping keeps each shard's series in request order.
/// </summary>
public sealed class RemoteWriteSeriesEncoderTests
{
    private const ulong T = 1_700_000_000_000_000_000UL;

    public static TheoryData<string> Options() => ["default", "no-target-info", "resource-to-telemetry", "external-labels", "copy-attributes"];

    [Theory]
    [MemberData(nameof(Options))]
    public void Encode_MixedRequest_GivesTheBytesOfTheObjectTranslation(string variant)
    {
        var options = variant switch
        {
            "no-target-info" => new TranslationOptions { TargetInfo = false },
            "resource-to-telemetry" => new TranslationOptions { ResourceToTelemetry = true },
            "external-labels" => new TranslationOptions { ExternalLabels = new Dictionary<string, string> { ["cluster"] = "eu-1", ["job"] = "ignored", ["zone"] = "" } },
            "copy-attributes" => new TranslationOptions { CopyResourceAttributes = ["db.role", "host.name"] },
            _ => new TranslationOptions(),
        };
        var request = MixedRequest();
        var expected = OtlpToPrometheus.Translate(request.Clone(), options);
        var external = options.ExternalLabels.Select(kv => (kv.Key, kv.Value)).ToArray();

        var encoder = new RemoteWriteSeriesEncoder(external, 4);
        var (dropped, reason) = OtlpToPrometheus.Translate(request, options, encoder);
        var encoded = encoder.Finish(1);

        Assert.Equal(expected.DroppedPoints, dropped);
        Assert.Equal(expected.DropReason, reason);
        Assert.Equal(expected.Series.Count, encoded.Count);
        for (var i = 0; i < encoded.Count; i++)
        {
            Assert.Equal(Convert.ToHexString(expected.Series[i].ToByteArray()), Convert.ToHexString(encoded.Series(i)));
        }

        encoded.Signal(encoded.Count);
        Assert.True(encoded.Task.IsCompletedSuccessfully);
    }

    [Fact]
    public void Finish_FourShards_KeepsEachSeriesInOneShardInRequestOrder()
    {
        var options = new TranslationOptions();
        var expected = OtlpToPrometheus.Translate(MixedRequest(), options).Series.Select(s => Convert.ToHexString(s.ToByteArray())).ToList();
        var encoder = new RemoteWriteSeriesEncoder([], 4);
        OtlpToPrometheus.Translate(MixedRequest(), options, encoder);
        var encoded = encoder.Finish(4);

        var seen = new List<string>();
        for (var shard = 0; shard < 4; shard++)
        {
            var (start, end) = encoded.Shard(shard);
            var inShard = new List<string>();
            for (var i = start; i < end; i++)
            {
                inShard.Add(Convert.ToHexString(encoded.Series(i)));
            }

            // Request order within the shard.
            Assert.Equal(inShard.OrderBy(expected.IndexOf), inShard);
            seen.AddRange(inShard);
        }

        Assert.Equal(expected.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Encode_SeriesWithZeroValueAndNegativeTimestamp_ParsesBackToTheSameSample()
    {
        var gauge = new Metric { Name = "zero", Gauge = new Gauge() };
        gauge.Gauge.DataPoints.Add(new NumberDataPoint { AsDouble = 0, TimeUnixNano = 0 });
        gauge.Gauge.DataPoints.Add(new NumberDataPoint { AsDouble = -0.0, TimeUnixNano = T });
        var request = Wrap(new Resource(), gauge);
        var encoder = new RemoteWriteSeriesEncoder([], 2);
        OtlpToPrometheus.Translate(request, new TranslationOptions(), encoder);
        var encoded = encoder.Finish(1);

        var first = TimeSeries.Parser.ParseFrom(encoded.Series(0).ToArray());
        var second = TimeSeries.Parser.ParseFrom(encoded.Series(1).ToArray());
        Assert.Equal(0, first.Samples[0].Value);
        Assert.Equal(0, first.Samples[0].Timestamp);
        Assert.True(double.IsNegative(second.Samples[0].Value));
        Assert.Equal((long)(T / 1_000_000), second.Samples[0].Timestamp);
    }

    private static ExportMetricsServiceRequest MixedRequest()
    {
        var resource = new Resource();
        resource.Attributes.Add([Kv("service.name", "postgresql"), Kv("service.namespace", "prod"), Kv("service.instance.id", "db1:5432"),
            Kv("db.role", "primary"), Kv("host.name", "h1"), Kv("host-name", "h2"), new KeyValue { Key = "port", Value = new AnyValue { IntValue = 5432 } }]);

        var gauge = new Metric { Name = "pg.size", Unit = "By", Gauge = new Gauge() };
        for (var i = 0; i < 30; i++)
        {
            var p = new NumberDataPoint { AsInt = i * 1000, TimeUnixNano = T };
            p.Attributes.Add([Kv("database_name", "db" + (i % 3)), Kv("table.name", "t" + i), Kv("table_name", "x"), Kv("empty", "")]);
            if (i == 7)
            {
                p.Attributes.Add(Kv("le", "shadowed"));
                p.Attributes.Add(Kv("db.role", "replica"));
                p.Attributes.Add(Kv("ünïcode", "välue ✓"));
            }

            if (i == 9)
            {
                p.Flags = 1; // no recorded value → staleness marker
            }

            gauge.Gauge.DataPoints.Add(p);
        }

        var counter = new Metric { Name = "tx", Unit = "{transaction}", Sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Cumulative } };
        counter.Sum.DataPoints.Add(new NumberDataPoint { AsDouble = 12.5, TimeUnixNano = T });
        var delta = new Metric { Name = "delta", Sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Delta } };
        delta.Sum.DataPoints.Add(new NumberDataPoint { AsDouble = 1, TimeUnixNano = T });

        var histogram = new Metric { Name = "latency", Unit = "ms", Histogram = new Histogram { AggregationTemporality = AggregationTemporality.Cumulative } };
        var h = new HistogramDataPoint { TimeUnixNano = T, Count = 6, Sum = 123.5 };
        h.ExplicitBounds.Add([0.5, 10, 1e21]);
        h.BucketCounts.Add([1, 2, 3, 0]);
        h.Attributes.Add([Kv("le", "point-le"), Kv("op", "read")]);
        histogram.Histogram.DataPoints.Add(h);
        histogram.Histogram.DataPoints.Add(new HistogramDataPoint { TimeUnixNano = T, Count = 2 });

        var summary = new Metric { Name = "duration", Unit = "s", Summary = new Summary() };
        var q = new SummaryDataPoint { TimeUnixNano = T, Count = 4, Sum = 2.25 };
        q.QuantileValues.Add([new SummaryDataPoint.Types.ValueAtQuantile { Quantile = 0.5, Value = 0.4 }, new SummaryDataPoint.Types.ValueAtQuantile { Quantile = 0.99, Value = 1.5 }]);
        summary.Summary.DataPoints.Add(q);

        var request = Wrap(resource, gauge, counter, delta, histogram, summary);
        var other = new Resource();
        other.Attributes.Add([Kv("service.name", "other")]);
        var up = new Metric { Name = "up", Gauge = new Gauge() };
        up.Gauge.DataPoints.Add(new NumberDataPoint { AsInt = 1, TimeUnixNano = T });
        request.ResourceMetrics.Add(Wrap(other, up).ResourceMetrics[0]);
        return request;
    }

    private static ExportMetricsServiceRequest Wrap(Resource resource, params Metric[] metrics)
    {
        var scope = new ScopeMetrics();
        scope.Metrics.Add(metrics);
        var rm = new ResourceMetrics { Resource = resource };
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    private static KeyValue Kv(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };
}

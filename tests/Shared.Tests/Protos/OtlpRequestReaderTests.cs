using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Shared.Otlp;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Processing;
using Xunit;

namespace PgOtelGateway.Shared.Tests.Protos;

/// <summary>
/// The gateway's OTLP reader must decode exactly what Google's generated parser decodes, for every field of the
/// metrics protocol, and fail exactly where it fails; what it caches must never change under the processors.
/// </summary>
public sealed class OtlpRequestReaderTests
{
    private static KeyValue Kv(string key, AnyValue value) => new() { Key = key, Value = value };

    private static KeyValue Text(string key, string value) => Kv(key, new AnyValue { StringValue = value });

    /// <summary>A request with every message and field of the metrics protocol set to a non-default value.</summary>
    private static ExportMetricsServiceRequest EveryField()
    {
        var nested = new AnyValue { KvlistValue = new KeyValueList() };
        nested.KvlistValue.Values.Add(Text("inner", "x"));
        nested.KvlistValue.Values.Add(Kv("deeper", new AnyValue { ArrayValue = new ArrayValue { Values = { new AnyValue { IntValue = -3 }, new AnyValue { BoolValue = true } } } }));
        var resource = new Resource { DroppedAttributesCount = 2 };
        resource.Attributes.Add(Text("service.name", "pg-agent"));
        resource.Attributes.Add(Kv("host.cpus", new AnyValue { IntValue = 8 }));
        resource.Attributes.Add(Kv("load", new AnyValue { DoubleValue = 0.25 }));
        resource.Attributes.Add(Kv("primary", new AnyValue { BoolValue = true }));
        resource.Attributes.Add(Kv("raw", new AnyValue { BytesValue = ByteString.CopyFrom(1, 2, 3) }));
        resource.Attributes.Add(Kv("tags", new AnyValue { ArrayValue = new ArrayValue { Values = { new AnyValue { StringValue = "a" }, nested } } }));
        resource.Attributes.Add(Text("ünïcode", "значение ✓"));
        resource.Attributes.Add(new KeyValue { Key = "no value" });

        var exemplar = new Exemplar
        {
            TimeUnixNano = 1_700_000_000_123_000_000,
            AsDouble = 4.5,
            SpanId = ByteString.CopyFrom(1, 2, 3, 4, 5, 6, 7, 8),
            TraceId = ByteString.CopyFrom(Enumerable.Range(0, 16).Select(i => (byte)i).ToArray()),
        };
        exemplar.FilteredAttributes.Add(Text("user", "u1"));

        var gaugePoint = new NumberDataPoint { StartTimeUnixNano = 1, TimeUnixNano = 2, AsDouble = -1.5, Flags = 1 };
        gaugePoint.Attributes.Add(Text("postgresql.database.name", "db01"));
        gaugePoint.Exemplars.Add(exemplar);
        var sumPoint = new NumberDataPoint { StartTimeUnixNano = 3, TimeUnixNano = 4, AsInt = long.MinValue };
        sumPoint.Attributes.Add(Text("postgresql.database.name", "db01"));
        sumPoint.Exemplars.Add(new Exemplar { AsInt = 7, TimeUnixNano = 9 });

        var histogramPoint = new HistogramDataPoint { StartTimeUnixNano = 5, TimeUnixNano = 6, Count = 10, Sum = 12.5, Min = 0.5, Max = 9, Flags = 1 };
        histogramPoint.BucketCounts.Add([1, 2, 7]);
        histogramPoint.ExplicitBounds.Add([1.0, 5.0]);
        histogramPoint.Attributes.Add(Text("le-ish", "yes"));
        histogramPoint.Exemplars.Add(exemplar);

        var exponentialPoint = new ExponentialHistogramDataPoint
        {
            StartTimeUnixNano = 7, TimeUnixNano = 8, Count = 6, Sum = 3, Scale = -2, ZeroCount = 1, Flags = 1, Min = -1, Max = 4, ZeroThreshold = 1e-9,
            Positive = new ExponentialHistogramDataPoint.Types.Buckets { Offset = -5, BucketCounts = { 1, 2, 300 } },
            Negative = new ExponentialHistogramDataPoint.Types.Buckets { Offset = 3, BucketCounts = { 2 } },
        };
        exponentialPoint.Attributes.Add(Text("k", "v"));
        exponentialPoint.Exemplars.Add(exemplar);

        var summaryPoint = new SummaryDataPoint { StartTimeUnixNano = 9, TimeUnixNano = 10, Count = 4, Sum = 8, Flags = 1 };
        summaryPoint.QuantileValues.Add(new SummaryDataPoint.Types.ValueAtQuantile { Quantile = 0.5, Value = 2 });
        summaryPoint.QuantileValues.Add(new SummaryDataPoint.Types.ValueAtQuantile { Quantile = 0.99, Value = 3.5 });
        summaryPoint.Attributes.Add(Text("k", "v"));

        var gauge = new Metric { Name = "postgresql.backends", Description = "Backends.", Unit = "{backend}", Gauge = new Gauge { DataPoints = { gaugePoint } } };
        gauge.Metadata.Add(Text("source", "pg_stat_activity"));
        var scope = new InstrumentationScope { Name = "pgotel-agent", Version = "1.0.0", DroppedAttributesCount = 1 };
        scope.Attributes.Add(Text("scope.attr", "s"));
        var sm = new ScopeMetrics
        {
            Scope = scope,
            SchemaUrl = "https://opentelemetry.io/schemas/1.26.0",
            Metrics =
            {
                gauge,
                new Metric { Name = "postgresql.commits", Unit = "1", Sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Delta, DataPoints = { sumPoint } } },
                new Metric { Name = "latency", Unit = "s", Histogram = new Histogram { AggregationTemporality = AggregationTemporality.Cumulative, DataPoints = { histogramPoint } } },
                new Metric { Name = "sizes", ExponentialHistogram = new ExponentialHistogram { AggregationTemporality = AggregationTemporality.Delta, DataPoints = { exponentialPoint } } },
                new Metric { Name = "durations", Summary = new Summary { DataPoints = { summaryPoint } } },
                new Metric { Name = "empty" },
            },
        };
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(new ResourceMetrics { Resource = resource, SchemaUrl = "https://example.com/s", ScopeMetrics = { sm } });
        request.ResourceMetrics.Add(new ResourceMetrics());
        return request;
    }

    /// <summary>The shape of an agent's output: many points, each with the same few attributes as many others.</summary>
    private static ExportMetricsServiceRequest AgentShaped(int tables)
    {
        var rm = new ResourceMetrics { Resource = new Resource { Attributes = { Text("service.name", "pgotel-agent"), Text("postgresql.instance", "db-1:5432") } } };
        var sm = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent" } };
        foreach (var name in new[] { "postgresql.table.size", "postgresql.table.vacuum.count", "postgresql.rows" })
        {
            var metric = new Metric { Name = name, Unit = "By", Gauge = new Gauge() };
            for (var t = 0; t < tables; t++)
            {
                var point = new NumberDataPoint { TimeUnixNano = 1_700_000_000_000_000_000UL + (ulong)t, AsInt = t * 8192 };
                point.Attributes.Add(Text("postgresql.database.name", "db01"));
                point.Attributes.Add(Text("postgresql.schema.name", "public"));
                point.Attributes.Add(Text("postgresql.table.name", $"t{t:D4}"));
                metric.Gauge.DataPoints.Add(point);
            }

            sm.Metrics.Add(metric);
        }

        rm.ScopeMetrics.Add(sm);
        return new ExportMetricsServiceRequest { ResourceMetrics = { rm } };
    }

    private static void AssertDecodesAsGoogle(byte[] bytes)
    {
        var expected = ExportMetricsServiceRequest.Parser.ParseFrom(bytes);
        var actual = OtlpRequestReader.Parse(bytes);
        Assert.Equal(expected, actual);
        Assert.Equal(Convert.ToHexString(expected.ToByteArray()), Convert.ToHexString(actual.ToByteArray()));
    }

    [Fact]
    public void Parse_EveryFieldOfTheProtocol_DecodesAsTheGeneratedParser_WithoutFallingBack()
    {
        var bytes = EveryField().ToByteArray();
        var fallbacks = OtlpRequestReader.Fallbacks;

        AssertDecodesAsGoogle(bytes);
        AssertDecodesAsGoogle(bytes); // the second time from the caches
        Assert.Equal(fallbacks, OtlpRequestReader.Fallbacks);
    }

    [Fact]
    public void Parse_SameAttributesAgain_SharesTheAttributeObjects()
    {
        var bytes = AgentShaped(50).ToByteArray();
        var first = OtlpRequestReader.Parse(bytes);
        var second = OtlpRequestReader.Parse(bytes);

        var a = first.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Gauge.DataPoints[7].Attributes[2];
        var b = second.ResourceMetrics[0].ScopeMetrics[0].Metrics[1].Gauge.DataPoints[7].Attributes[2];
        Assert.Equal("t0007", a.Value.StringValue);
        Assert.Same(a, b);
        Assert.Same(first.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Name, second.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Name);
    }

    [Fact]
    public void Parse_UnknownFields_AreKeptAsTheGeneratedParserKeepsThem()
    {
        var point = new NumberDataPoint { AsDouble = 1 };
        point.Attributes.Add(Text("a", "b"));
        var output = new MemoryStream();
        var coded = new CodedOutputStream(output);
        point.WriteTo(coded);
        coded.WriteTag(99, WireFormat.WireType.LengthDelimited); // a field from a newer protocol
        coded.WriteString("future");
        coded.Flush();
        var metric = new Metric { Name = "m", Gauge = new Gauge() };
        var request = new ExportMetricsServiceRequest { ResourceMetrics = { new ResourceMetrics { ScopeMetrics = { new ScopeMetrics { Metrics = { metric } } } } } };
        metric.Gauge.DataPoints.Add(NumberDataPoint.Parser.ParseFrom(output.ToArray()));
        var fallbacks = OtlpRequestReader.Fallbacks;

        AssertDecodesAsGoogle(request.ToByteArray());
        Assert.Equal(fallbacks + 1, OtlpRequestReader.Fallbacks);
    }

    [Fact]
    public void Parse_UnpackedRepeatedNumbers_AndPaddedLengths_DecodeAsTheGeneratedParser()
    {
        // bucket_counts and explicit_bounds one element per field (legal proto2-style encoding), lengths as
        // five-byte varints (as some SDKs write them).
        var output = new MemoryStream();
        var coded = new CodedOutputStream(output);
        coded.WriteTag(4, WireFormat.WireType.Fixed64);
        coded.WriteFixed64(3);
        foreach (var count in new ulong[] { 1, 2 })
        {
            coded.WriteTag(6, WireFormat.WireType.Fixed64);
            coded.WriteFixed64(count);
        }

        coded.WriteTag(7, WireFormat.WireType.Fixed64);
        coded.WriteDouble(2.5);
        coded.Flush();
        var point = output.ToArray();

        static byte[] Wrap(int field, byte[] body)
        {
            var tag = (byte)((field << 3) | 2);
            var length = body.Length;
            return [tag, (byte)(length | 0x80), (byte)((length >> 7) | 0x80), 0x80, 0x80, 0, .. body];
        }

        var metric = Wrap(9, Wrap(1, point)); // Metric.histogram { data_points }
        var bytes = Wrap(1, Wrap(2, Wrap(2, [.. Wrap(1, "h"u8.ToArray()), .. metric])));
        var fallbacks = OtlpRequestReader.Fallbacks;

        AssertDecodesAsGoogle(bytes);
        Assert.Equal(fallbacks, OtlpRequestReader.Fallbacks);
        Assert.Equal([1UL, 2UL], OtlpRequestReader.Parse(bytes).ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Histogram.DataPoints[0].BucketCounts);
    }

    [Fact]
    public void Parse_MalformedBytes_FailsWithTheGeneratedParsersError()
    {
        var bytes = EveryField().ToByteArray();
        var truncated = bytes[..(bytes.Length - 3)];

        var expected = Assert.Throws<InvalidProtocolBufferException>(() => ExportMetricsServiceRequest.Parser.ParseFrom(truncated));
        var actual = Assert.Throws<InvalidProtocolBufferException>(() => OtlpRequestReader.Parse(truncated));
        Assert.Equal(expected.Message, actual.Message);
    }

    [Fact]
    public void Parse_ValuesNestedThousandsDeep_FailsAsTheGeneratedParser()
    {
        // Each level an AnyValue { array_value { values: <next level> } }: far past any recursion limit.
        byte[] level = [0x08, 0x01]; // bool_value: true
        for (var i = 0; i < 3_000; i++)
        {
            byte[] array = [0x0A, .. Varint(level.Length), .. level]; // ArrayValue.values
            level = [0x2A, .. Varint(array.Length), .. array]; // AnyValue.array_value
        }

        byte[] kv = [0x0A, 0x01, (byte)'k', 0x12, .. Varint(level.Length), .. level];
        byte[] resource = [0x0A, .. Varint(kv.Length), .. kv];
        byte[] rm = [0x0A, .. Varint(resource.Length), .. resource];
        byte[] bytes = [0x0A, .. Varint(rm.Length), .. rm];

        var expected = Assert.Throws<InvalidProtocolBufferException>(() => ExportMetricsServiceRequest.Parser.ParseFrom(bytes));
        Assert.Equal(expected.Message, Assert.Throws<InvalidProtocolBufferException>(() => OtlpRequestReader.Parse(bytes)).Message);
    }

    [Fact]
    public void Parse_RandomlyCorruptedRequests_SucceedOrFailExactlyAsTheGeneratedParser()
    {
        var original = EveryField().ToByteArray();
        var random = new Random(20261207);
        for (var i = 0; i < 3_000; i++)
        {
            var bytes = (byte[])original.Clone();
            for (var flips = random.Next(1, 4); flips > 0; flips--)
            {
                bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            }

            var expected = Decode(() => ExportMetricsServiceRequest.Parser.ParseFrom(bytes));
            var actual = Decode(() => OtlpRequestReader.Parse(bytes));
            Assert.Equal(expected, actual);
        }
    }

    /// <summary>The decoded request, or the type and message of what the decoder threw.</summary>
    private static object Decode(Func<ExportMetricsServiceRequest> decode)
    {
        try
        {
            return decode();
        }
        catch (Exception ex)
        {
            return ex.GetType().Name + ": " + ex.Message;
        }
    }

    [Fact]
    public async Task Parse_FromManyThreadsAtOnce_EveryResultIsComplete()
    {
        var requests = Enumerable.Range(0, 8).Select(i => AgentShaped(20 + i).ToByteArray()).ToArray();
        var expected = requests.Select(r => ExportMetricsServiceRequest.Parser.ParseFrom(r)).ToArray();

        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (var round = 0; round < 200; round++)
            {
                var i = round % requests.Length;
                Assert.Equal(expected[i], OtlpRequestReader.Parse(requests[i]));
            }
        })));
    }

    [Fact]
    public async Task Processors_ChangingDecodedAttributes_DoNotChangeWhatTheNextRequestDecodesTo()
    {
        var request = AgentShaped(5);
        request.ResourceMetrics[0].Resource.Attributes.Add(Text("secret", "s3cr3t"));
        foreach (var point in request.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Gauge.DataPoints)
        {
            point.Attributes.Add(Text("db.instance", "db-1:5432"));
        }

        var bytes = request.ToByteArray();
        var sink = new Sink();
        IMetricsConsumer pipeline = new ResourceProcessor(
            new ResourceProcessorOptions
            {
                Attributes =
                [
                    new AttributeAction { Key = "service.name", Value = "renamed", Action = AttributeActionKind.Update },
                    new AttributeAction { Key = "secret", Action = AttributeActionKind.Hash },
                    new AttributeAction { Key = "postgresql.instance", FromAttribute = "service.name", Action = AttributeActionKind.Upsert },
                    new AttributeAction { Key = "db.instance", Value = "moved", Action = AttributeActionKind.Upsert },
                ],
            },
            sink);
        pipeline = new GroupByAttrsProcessor(new GroupByAttrsOptions { Keys = ["db.instance"] }, pipeline);

        await pipeline.ConsumeAsync(OtlpRequestReader.Parse(bytes), CancellationToken.None);
        var processed = sink.Received.Single();
        Assert.Contains(processed.ResourceMetrics, rm => rm.Resource.Attributes.Any(a => a.Key == "db.instance" && a.Value.StringValue == "moved"));
        Assert.All(processed.ResourceMetrics, rm => Assert.Contains(rm.Resource.Attributes, a => a.Key == "service.name" && a.Value.StringValue == "renamed"));

        AssertDecodesAsGoogle(bytes);
    }

    private static byte[] Varint(int value)
    {
        var bytes = new List<byte>();
        var v = (uint)value;
        while (v >= 0x80)
        {
            bytes.Add((byte)(v | 0x80));
            v >>= 7;
        }

        bytes.Add((byte)v);
        return [.. bytes];
    }

    private sealed class Sink : IMetricsConsumer
    {
        public List<ExportMetricsServiceRequest> Received { get; } = [];

        public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
        {
            Received.Add(request);
            return Task.CompletedTask;
        }
    }
}

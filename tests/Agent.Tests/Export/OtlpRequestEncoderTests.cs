using System.Buffers;
using Google.Protobuf;
using Grpc.Core;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Agent.Catalog;
using PgOtelGateway.Agent.Export;
using Xunit;

namespace PgOtelGateway.Agent.Tests.Export;

/// <summary><see cref="OtlpRequestEncoder"/> must give exactly the bytes of Google.Protobuf's <c>ToByteArray()</c>.</summary>
public sealed class OtlpRequestEncoderTests
{
    [Fact]
    public void Encode_AgentShapedScrape_MatchesProtobuf()
    {
        AssertSameBytes(AgentScrape(databases: 3, tables: 40));
    }

    [Fact]
    public void Encode_SharedAttributeObjects_MatchesProtobufInEveryField()
    {
        // One object in point attributes, resource and scope attributes, exemplar attributes, metric metadata and a
        // kvlist: the copy of its first encoding gets the tag of each place it appears in.
        var shared = AttributeCache.Text("database_name", "db01");
        var request = AgentScrape(databases: 1, tables: 3);
        var rm = request.ResourceMetrics[0];
        rm.Resource.Attributes.Add(shared);
        rm.ScopeMetrics[0].Scope.Attributes.Add(shared);
        var metric = rm.ScopeMetrics[0].Metrics[0];
        metric.Metadata.Add(shared);
        var point = metric.Gauge.DataPoints[0];
        point.Exemplars.Add(new Exemplar { AsInt = 3, FilteredAttributes = { shared, shared } });
        point.Attributes.Add(new KeyValue { Key = "nested", Value = new AnyValue { KvlistValue = new KeyValueList { Values = { shared } } } });
        point.Attributes.Add(shared);
        AssertSameBytes(request);
    }

    [Fact]
    public void Encode_IntAndDoubleSums_MatchesProtobuf()
    {
        var metric = new Metric { Name = "postgresql.blocks_read", Unit = "{block}", Description = "Blocks read.", Sum = new Sum { AggregationTemporality = AggregationTemporality.Cumulative, IsMonotonic = true } };
        metric.Sum.DataPoints.Add(new NumberDataPoint { StartTimeUnixNano = 1, TimeUnixNano = ulong.MaxValue, AsInt = long.MinValue });
        metric.Sum.DataPoints.Add(new NumberDataPoint { TimeUnixNano = 2, AsInt = 0 });
        metric.Sum.DataPoints.Add(new NumberDataPoint { TimeUnixNano = 3, AsDouble = 0D });
        metric.Sum.DataPoints.Add(new NumberDataPoint { TimeUnixNano = 4, AsDouble = -0D, Flags = 1 });
        metric.Sum.DataPoints.Add(new NumberDataPoint { AsDouble = double.NaN, Flags = uint.MaxValue });
        metric.Sum.DataPoints.Add(new NumberDataPoint { AsDouble = double.NegativeInfinity });
        var delta = new Metric { Name = "delta", Sum = new Sum { AggregationTemporality = AggregationTemporality.Delta } };
        delta.Sum.DataPoints.Add(new NumberDataPoint { AsDouble = 1.5 });
        var undefined = new Metric { Name = "undefined temporality", Sum = new Sum { AggregationTemporality = (AggregationTemporality)(-1) } };
        AssertSameBytes(Wrap(metric, delta, undefined));
    }

    [Fact]
    public void Encode_Histograms_MatchesProtobuf()
    {
        var histogram = new Metric { Name = "h", Histogram = new Histogram { AggregationTemporality = AggregationTemporality.Cumulative } };
        histogram.Histogram.DataPoints.Add(new HistogramDataPoint
        {
            StartTimeUnixNano = 5, TimeUnixNano = 6, Count = 7, Sum = 8.5, Min = -1, Max = 0,
            BucketCounts = { 1, 0, ulong.MaxValue }, ExplicitBounds = { 0.5, -0D, double.MaxValue },
            Attributes = { AttributeCache.Text("le", "x") }, Flags = 1,
        });
        histogram.Histogram.DataPoints.Add(new HistogramDataPoint());

        var exponential = new Metric { Name = "e", ExponentialHistogram = new ExponentialHistogram { AggregationTemporality = AggregationTemporality.Delta } };
        exponential.ExponentialHistogram.DataPoints.Add(new ExponentialHistogramDataPoint
        {
            Attributes = { AttributeCache.Text("a", "b") }, StartTimeUnixNano = 1, TimeUnixNano = 2, Count = 3, Sum = 0, Scale = -3, ZeroCount = 4,
            Positive = new ExponentialHistogramDataPoint.Types.Buckets { Offset = -7, BucketCounts = { 0, 1, 300, ulong.MaxValue } },
            Negative = new ExponentialHistogramDataPoint.Types.Buckets(), Flags = 1, Min = 1, Max = 2, ZeroThreshold = 1e-9,
            Exemplars = { new Exemplar { AsDouble = 1.25, TimeUnixNano = 9 } },
        });
        exponential.ExponentialHistogram.DataPoints.Add(new ExponentialHistogramDataPoint { Scale = int.MaxValue, ZeroThreshold = -0D });

        var summary = new Metric { Name = "s", Summary = new Summary() };
        summary.Summary.DataPoints.Add(new SummaryDataPoint
        {
            TimeUnixNano = 1, Count = 2, Sum = 3,
            QuantileValues = { new SummaryDataPoint.Types.ValueAtQuantile { Quantile = 0.5, Value = 1 }, new SummaryDataPoint.Types.ValueAtQuantile() },
            Attributes = { AttributeCache.Text("query", "select 1") },
        });
        summary.Summary.DataPoints.Add(new SummaryDataPoint());
        AssertSameBytes(Wrap(histogram, exponential, summary));
    }

    [Fact]
    public void Encode_EveryAttributeValueKind_MatchesProtobuf()
    {
        var point = new NumberDataPoint { AsInt = 1 };
        point.Attributes.Add([
            new KeyValue { Key = "string", Value = new AnyValue { StringValue = "text" } },
            new KeyValue { Key = "empty string", Value = new AnyValue { StringValue = "" } },
            new KeyValue { Key = "true", Value = new AnyValue { BoolValue = true } },
            new KeyValue { Key = "false", Value = new AnyValue { BoolValue = false } },
            new KeyValue { Key = "int", Value = new AnyValue { IntValue = -1 } },
            new KeyValue { Key = "int zero", Value = new AnyValue { IntValue = 0 } },
            new KeyValue { Key = "int max", Value = new AnyValue { IntValue = long.MaxValue } },
            new KeyValue { Key = "double", Value = new AnyValue { DoubleValue = -2.5 } },
            new KeyValue { Key = "double zero", Value = new AnyValue { DoubleValue = 0 } },
            new KeyValue { Key = "array", Value = new AnyValue { ArrayValue = new ArrayValue { Values = { new AnyValue { IntValue = 1 }, new AnyValue(), new AnyValue { ArrayValue = new ArrayValue() } } } } },
            new KeyValue { Key = "kvlist", Value = new AnyValue { KvlistValue = new KeyValueList { Values = { new KeyValue { Key = "inner", Value = new AnyValue { BoolValue = true } }, new KeyValue() } } } },
            new KeyValue { Key = "empty kvlist", Value = new AnyValue { KvlistValue = new KeyValueList() } },
            new KeyValue { Key = "bytes", Value = new AnyValue { BytesValue = ByteString.CopyFrom(0, 1, 2, 255) } },
            new KeyValue { Key = "empty bytes", Value = new AnyValue { BytesValue = ByteString.Empty } },
            new KeyValue { Key = "string index", Value = new AnyValue { StringValueStrindex = 5 } },
            new KeyValue { Key = "negative string index", Value = new AnyValue { StringValueStrindex = -5 } },
            new KeyValue { Key = "no value kind", Value = new AnyValue() },
            new KeyValue { Key = "no value" },
            new KeyValue { KeyStrindex = 3, Value = new AnyValue { StringValue = "by index" } },
            new KeyValue { KeyStrindex = -1 },
            new KeyValue(),
        ]);
        var metric = new Metric { Name = "attributes", Gauge = new Gauge() };
        metric.Gauge.DataPoints.Add(point);
        AssertSameBytes(Wrap(metric));
    }

    [Fact]
    public void Encode_Exemplars_MatchesProtobuf()
    {
        var point = new NumberDataPoint { AsDouble = 1 };
        point.Exemplars.Add(new Exemplar
        {
            TimeUnixNano = 1, AsDouble = 2.5,
            SpanId = ByteString.CopyFrom(1, 2, 3, 4, 5, 6, 7, 8),
            TraceId = ByteString.CopyFrom(Enumerable.Range(0, 16).Select(i => (byte)i).ToArray()),
            FilteredAttributes = { AttributeCache.Text("k", "v") },
        });
        point.Exemplars.Add(new Exemplar { AsInt = -4 });
        point.Exemplars.Add(new Exemplar());
        var metric = new Metric { Name = "with exemplars", Gauge = new Gauge() };
        metric.Gauge.DataPoints.Add(point);
        AssertSameBytes(Wrap(metric));
    }

    [Fact]
    public void Encode_EmptyMessages_MatchesProtobuf()
    {
        AssertSameBytes(new ExportMetricsServiceRequest());

        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(new ResourceMetrics());
        request.ResourceMetrics.Add(new ResourceMetrics { Resource = new Resource(), SchemaUrl = "" });
        var scopes = new ResourceMetrics();
        scopes.ScopeMetrics.Add(new ScopeMetrics());
        scopes.ScopeMetrics.Add(new ScopeMetrics { Scope = new InstrumentationScope() });
        var metrics = new ScopeMetrics();
        metrics.Metrics.Add([new Metric(), new Metric { Gauge = new Gauge() }, new Metric { Sum = new Sum() }, new Metric { Histogram = new Histogram() },
            new Metric { ExponentialHistogram = new ExponentialHistogram() }, new Metric { Summary = new Summary() }]);
        var gauge = new Metric { Gauge = new Gauge() };
        gauge.Gauge.DataPoints.Add(new NumberDataPoint());
        metrics.Metrics.Add(gauge);
        scopes.ScopeMetrics.Add(metrics);
        request.ResourceMetrics.Add(scopes);
        AssertSameBytes(request);
    }

    [Fact]
    public void Encode_ResourceAndScopeFields_MatchesProtobuf()
    {
        var request = AgentScrape(databases: 1, tables: 2);
        var rm = request.ResourceMetrics[0];
        rm.SchemaUrl = "https://opentelemetry.io/schemas/1.26.0";
        rm.Resource.DroppedAttributesCount = 3;
        rm.Resource.EntityRefs.Add(new EntityRef { SchemaUrl = "s", Type = "service", IdKeys = { "service.name", "" }, DescriptionKeys = { "d" } });
        rm.Resource.EntityRefs.Add(new EntityRef());
        rm.ScopeMetrics[0].SchemaUrl = "scope schema";
        rm.ScopeMetrics[0].Scope.Version = "1.2.3";
        rm.ScopeMetrics[0].Scope.DroppedAttributesCount = 200;
        AssertSameBytes(request);
    }

    [Theory]
    [InlineData("ascii")]
    [InlineData("Größe")]
    [InlineData("таблица_заказов")]
    [InlineData("表名")]
    [InlineData("emoji 🐘 pair")]
    [InlineData("lone \ud800 surrogate")]
    [InlineData("reversed \udc00\ud800 pair")]
    public void Encode_UnicodeStrings_MatchesProtobuf(string text)
    {
        var metric = new Metric { Name = text, Unit = text, Description = text, Gauge = new Gauge() };
        var point = new NumberDataPoint { AsInt = 1 };
        point.Attributes.Add(AttributeCache.Text(text, text));
        metric.Gauge.DataPoints.Add(point);
        AssertSameBytes(Wrap(metric));
    }

    [Fact]
    public void Encode_LongStringsAndLengths_MatchesProtobuf()
    {
        // Lengths around the varint boundaries (127/128, 16383/16384) and a string far past the first buffer.
        var metric = new Metric { Name = new string('n', 127), Description = new string('d', 128), Unit = new string('u', 16384), Gauge = new Gauge() };
        var point = new NumberDataPoint { AsInt = 1 };
        point.Attributes.Add(AttributeCache.Text(new string('k', 16383), new string('é', 200_000)));
        metric.Gauge.DataPoints.Add(point);
        AssertSameBytes(Wrap(metric));
    }

    [Fact]
    public void Encode_RequestOver2MiB_MatchesProtobuf()
    {
        var request = AgentScrape(databases: 20, tables: 300);
        Assert.True(request.CalculateSize() > 2 << 20, $"{request.CalculateSize()} bytes");
        AssertSameBytes(request);

        // Again, now starting from the previous request's length.
        AssertSameBytes(request);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Encode_RandomRequests_MatchesProtobuf(int seed)
    {
        AssertSameBytes(RandomRequests.Build(new Random(seed)));
    }

    [Fact]
    public void SerializeRequest_ThroughGrpcMarshaller_WritesTheProtobufBytes()
    {
        var request = AgentScrape(databases: 2, tables: 10);
        var context = new CapturingContext();
        OtlpExporter.ExportMethod.RequestMarshaller.ContextualSerializer(request, context);

        Assert.Equal(request.CalculateSize(), context.PayloadLength);
        Assert.Equal(request.ToByteArray(), context.Payload);
        Assert.Equal(request, ExportMetricsServiceRequest.Parser.ParseFrom(context.Payload));
        Assert.Equal("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", OtlpExporter.ExportMethod.FullName);
    }

    [Fact]
    public void SerializeRequestZstd_ThroughGrpcMarshaller_WritesOneZstdFrameOfTheProtobufBytes()
    {
        var request = AgentScrape(databases: 3, tables: 40);
        var context = new CapturingContext();
        OtlpExporter.ZstdExportMethod.RequestMarshaller.ContextualSerializer(request, context);

        Assert.Equal(context.Payload!.Length, context.PayloadLength);
        using var decompressor = new ZstdSharp.Decompressor();
        Assert.Equal(request.ToByteArray(), decompressor.Unwrap(context.Payload).ToArray());
        Assert.Equal(OtlpExporter.ExportMethod.FullName, OtlpExporter.ZstdExportMethod.FullName);
    }

    [Fact]
    public void PrecompressedZstdProvider_Requests_PassThroughAndResponsesDecompress()
    {
        var provider = new PrecompressedZstdProvider();
        var compressed = new ZstdSharp.Compressor().Wrap(AgentScrape(databases: 1, tables: 5).ToByteArray()).ToArray();

        var output = new MemoryStream();
        using (var stream = provider.CreateCompressionStream(output, System.IO.Compression.CompressionLevel.Fastest))
        {
            stream.Write(compressed.AsSpan(0, 10));
            stream.Write(compressed.AsSpan(10));
        }

        Assert.Equal("zstd", provider.EncodingName);
        Assert.Equal(compressed, output.ToArray());
        var decompressed = new MemoryStream();
        provider.CreateDecompressionStream(new MemoryStream(compressed)).CopyTo(decompressed);
        Assert.Equal(AgentScrape(databases: 1, tables: 5).ToByteArray(), decompressed.ToArray());
    }

    [Fact]
    public void Dispose_Twice_ReturnsTheBufferOnce()
    {
        var encoded = OtlpRequestEncoder.Encode(AgentScrape(databases: 1, tables: 1));
        encoded.Dispose();
        encoded.Dispose();
        Assert.Throws<ObjectDisposedException>(() => encoded.Length);
    }

    private static void AssertSameBytes(ExportMetricsServiceRequest request)
    {
        var expected = request.ToByteArray();
        using var encoded = OtlpRequestEncoder.Encode(request);
        var actual = encoded.Span;
        var common = Math.Min(expected.Length, actual.Length);
        var first = expected.AsSpan(0, common).CommonPrefixLength(actual[..common]);
        Assert.True(expected.Length == actual.Length && first == common, $"expected {expected.Length} bytes, got {actual.Length}; first difference at byte {first}");
    }

    private static ExportMetricsServiceRequest Wrap(params Metric[] metrics)
    {
        var scope = new ScopeMetrics { Scope = new InstrumentationScope { Name = "test" } };
        scope.Metrics.Add(metrics);
        var rm = new ResourceMetrics { Resource = new Resource { Attributes = { AttributeCache.Text("service.name", "postgresql") } } };
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    /// <summary>A scrape as the agent builds it: the catalog's table metrics, attributes shared per name.</summary>
    private static ExportMetricsServiceRequest AgentScrape(int databases, int tables)
    {
        var set = new MetricSet(1_700_000_000_000_000_000UL, 1_600_000_000_000_000_000UL, static _ => true);
        var scan = AttributeCache.Text("scan_type", "sequential");
        var insert = AttributeCache.Text("operation", "insert");
        for (var d = 0; d < databases; d++)
        {
            var names = new AttributeCache($"db{d:D2}");
            var schema = names.Schema("public");
            for (var t = 0; t < tables; t++)
            {
                var table = names.Table($"t{t:D4}");
                set.Add(MetricCatalog.TableRows, 1000L + t, names.Database, schema, table);
                set.Add(MetricCatalog.TableDeadRows, -t, names.Database, schema, table);
                set.Add(MetricCatalog.TableSize, 8192L * t, names.Database, schema, table);
                set.Add(MetricCatalog.TableModifications, 5L * t, names.Database, schema, table, insert);
                set.Add(MetricCatalog.TableScans, 3L * t, names.Database, schema, table, scan);
                set.Add(MetricCatalog.TableLastVacuumAge, t * 0.25, names.Database, schema, table);
            }
        }

        set.Add(MetricCatalog.Up, 1L);
        set.Add(MetricCatalog.ScrapeDuration, 0.125);
        set.StampStart();
        var scope = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent/postgresql", Version = "0.1.0" } };
        scope.Metrics.Add(set.Metrics);
        var rm = new ResourceMetrics { Resource = new Resource() };
        rm.Resource.Attributes.Add([AttributeCache.Text("service.name", "postgresql"), AttributeCache.Text("service.instance.id", "pg-0001:5432")]);
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    private sealed class CapturingContext : SerializationContext
    {
        private readonly ArrayBufferWriter<byte> _writer = new();

        public int? PayloadLength { get; private set; }

        public byte[]? Payload { get; private set; }

        public override void SetPayloadLength(int payloadLength) => PayloadLength = payloadLength;

        public override IBufferWriter<byte> GetBufferWriter() => _writer;

        public override void Complete() => Payload = _writer.WrittenSpan.ToArray();

        public override void Complete(byte[] payload) => Payload = payload;
    }
}

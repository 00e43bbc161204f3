using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using ProtoMetric = OpenTelemetry.Proto.Metrics.V1.Metric;
using ProtoTemporality = OpenTelemetry.Proto.Metrics.V1.AggregationTemporality;
using OpenTelemetry.Resources;
using Xunit;

namespace PgOtelGateway.Shared.Tests.Protos;

/// <summary>
/// Our protos must be wire-identical to upstream: a request encoded by a third-party encoder (the OpenTelemetry
/// .NET SDK's OTLP exporter) decodes into the values that were recorded and re-encodes to the same bytes.
/// </summary>
public sealed class OtlpSdkRoundTripTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly ConcurrentQueue<byte[]> _frames = new();
    private WebApplication? _app;
    private Uri? _endpoint;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        _app = builder.Build();

        // A bare gRPC endpoint: keep the raw message frame exactly as it arrived, answer with an empty response.
        _app.MapPost("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", async (HttpContext ctx) =>
        {
            using var body = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(body, ctx.RequestAborted);
            _frames.Enqueue(body.ToArray());
            ctx.Response.ContentType = "application/grpc";
            await ctx.Response.Body.WriteAsync(new byte[5], ctx.RequestAborted);
            ctx.Response.AppendTrailer("grpc-status", "0");
        });
        await _app.StartAsync().WaitAsync(Timeout);
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _endpoint = new Uri(address);
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync().WaitAsync(Timeout);
            await _app.DisposeAsync();
        }
    }

    [Fact]
    public void Export_FromOpenTelemetrySdk_DecodesToRecordedValuesAndReencodesToTheSameCanonicalBytes()
    {
        var meterName = "pgotel.roundtrip." + Guid.NewGuid().ToString("N")[..8];
        using var meter = new Meter(meterName, "1.2.3");
        var counter = meter.CreateCounter<long>("pgotel.test.requests", unit: "{request}", description: "Requests seen.");
        var latency = meter.CreateHistogram<double>("pgotel.test.latency", unit: "ms");
        meter.CreateObservableGauge("pgotel.test.temperature", () => new Measurement<double>(21.5, new KeyValuePair<string, object?>("room", "a")));

        using (var provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(meterName)
            .ConfigureResource(r => r.Clear().AddService("roundtrip-test", serviceInstanceId: "inst-1"))
            .AddOtlpExporter((exporter, reader) =>
            {
                exporter.Endpoint = _endpoint!;
                exporter.Protocol = OtlpExportProtocol.Grpc;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 600_000;
            })
            .Build())
        {
            counter.Add(40, new KeyValuePair<string, object?>("route", "/users"));
            counter.Add(2, new KeyValuePair<string, object?>("route", "/users"));
            latency.Record(3.0);
            latency.Record(70.0);
            Assert.True(provider.ForceFlush(30_000), "the SDK did not flush within 30 s");
        }

        Assert.True(_frames.TryDequeue(out var frame), "no export reached the test endpoint");

        // gRPC framing: 1 byte compressed flag, 4 bytes big-endian length, then the protobuf message.
        Assert.Equal(0, frame[0]);
        var length = BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(1, 4));
        var message = frame.AsSpan(5, length).ToArray();
        Assert.Equal(frame.Length - 5, length);

        var request = ExportMetricsServiceRequest.Parser.ParseFrom(message);

        var resourceMetrics = Assert.Single(request.ResourceMetrics);
        Assert.Contains(resourceMetrics.Resource.Attributes, kv => kv.Key == "service.name" && kv.Value.StringValue == "roundtrip-test");
        Assert.Contains(resourceMetrics.Resource.Attributes, kv => kv.Key == "service.instance.id" && kv.Value.StringValue == "inst-1");
        var scope = Assert.Single(resourceMetrics.ScopeMetrics);
        Assert.Equal(meterName, scope.Scope.Name);
        Assert.Equal("1.2.3", scope.Scope.Version);

        var requests = Assert.Single(scope.Metrics, m => m.Name == "pgotel.test.requests");
        Assert.Equal("{request}", requests.Unit);
        Assert.Equal("Requests seen.", requests.Description);
        Assert.Equal(ProtoMetric.DataOneofCase.Sum, requests.DataCase);
        Assert.True(requests.Sum.IsMonotonic);
        Assert.Equal(ProtoTemporality.Cumulative, requests.Sum.AggregationTemporality);
        var point = Assert.Single(requests.Sum.DataPoints);
        Assert.Equal(42, point.AsInt);
        Assert.Equal("/users", Assert.Single(point.Attributes, kv => kv.Key == "route").Value.StringValue);
        Assert.True(point.TimeUnixNano >= point.StartTimeUnixNano && point.StartTimeUnixNano > 0);

        var histogram = Assert.Single(scope.Metrics, m => m.Name == "pgotel.test.latency").Histogram;
        var hp = Assert.Single(histogram.DataPoints);
        Assert.Equal(2UL, hp.Count);
        Assert.Equal(73.0, hp.Sum);
        Assert.Equal(3.0, hp.Min);
        Assert.Equal(70.0, hp.Max);
        Assert.Equal(hp.ExplicitBounds.Count + 1, hp.BucketCounts.Count);
        Assert.Equal(2UL, hp.BucketCounts.Aggregate(0UL, (a, b) => a + b));

        var gauge = Assert.Single(scope.Metrics, m => m.Name == "pgotel.test.temperature").Gauge;
        Assert.Equal(21.5, Assert.Single(gauge.DataPoints).AsDouble);

        // The SDK's bytes are valid but not canonical (padded lengths, its own field order, explicit defaults).
        // Put in canonical form, they and our encoding must be identical: no field lost, renumbered, retyped or
        // kept as unknown.
        var canonical = WireCanonicalizer.Canonicalize(message, ExportMetricsServiceRequest.Descriptor);
        var ours = Google.Protobuf.MessageExtensions.ToByteArray(request);
        Assert.Equal(Convert.ToHexString(canonical), Convert.ToHexString(ours));
        Assert.Equal(ours, Google.Protobuf.MessageExtensions.ToByteArray(ExportMetricsServiceRequest.Parser.ParseFrom(ours)));
    }
}

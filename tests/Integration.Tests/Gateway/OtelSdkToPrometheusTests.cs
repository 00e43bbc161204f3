using System.Diagnostics.Metrics;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// A third-party client (the OpenTelemetry .NET SDK's OTLP exporter) sends counters, gauges and histograms to a
/// gateway; the series must appear in the real Prometheus under the translated names with the right values.
/// </summary>
public sealed class OtelSdkToPrometheusTests
{
    [Theory]
    [InlineData(OtlpExportProtocol.Grpc, MetricReaderTemporalityPreference.Cumulative)]
    [InlineData(OtlpExportProtocol.HttpProtobuf, MetricReaderTemporalityPreference.Cumulative)]
    [InlineData(OtlpExportProtocol.Grpc, MetricReaderTemporalityPreference.Delta)]
    public async Task Export_FromOtelSdk_ArrivesInPrometheusTranslated(OtlpExportProtocol protocol, MetricReaderTemporalityPreference temporality)
    {
        await using var gateway = await TestGateway.StartAsync();
        var prefix = UniqueName.For("sdk_" + protocol + "_" + temporality);
        using var meter = new Meter(prefix);
        var requests = meter.CreateCounter<long>(prefix + ".requests", unit: "{request}");
        var latency = meter.CreateHistogram<double>(prefix + ".latency", unit: "ms");
        var temperature = 21.5;
        meter.CreateObservableGauge(prefix + ".temperature", () => temperature, unit: "Cel");

        using (var provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(prefix)
            .ConfigureResource(r => r.Clear().AddService("it-svc", serviceNamespace: "pgotel", serviceInstanceId: "inst-7"))
            .AddView(prefix + ".latency", new ExplicitBucketHistogramConfiguration { Boundaries = [10, 100] })
            .AddOtlpExporter((exporter, reader) =>
            {
                exporter.Endpoint = protocol == OtlpExportProtocol.Grpc ? gateway.GrpcUrl : gateway.HttpUrl;
                exporter.Protocol = protocol;
                reader.TemporalityPreference = temporality;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 600_000;
            })
            .Build())
        {
            requests.Add(40, new KeyValuePair<string, object?>("route", "/users"));
            latency.Record(5);
            latency.Record(50);
            latency.Record(500);
            Assert.True(provider.ForceFlush(30_000));

            // A second export: cumulative stays 42, delta 2 must be added to the 40 by the gateway.
            requests.Add(2, new KeyValuePair<string, object?>("route", "/users"));
            Assert.True(provider.ForceFlush(30_000));
        }

        using var prometheus = new PrometheusClient();
        var counter = await prometheus.WaitForAsync($"{prefix}_requests_total{{route=\"/users\"}}", r => r.Count == 1 && r[0].Value == 42);
        Assert.Equal("pgotel/it-svc", counter[0].Labels["job"]);
        Assert.Equal("inst-7", counter[0].Labels["instance"]);

        var gauge = await prometheus.WaitForAsync($"{prefix}_temperature_celsius", r => r.Count == 1);
        Assert.Equal(21.5, gauge[0].Value);

        var buckets = await prometheus.WaitForAsync($"{prefix}_latency_milliseconds_bucket", r => r.Count == 3);
        Assert.Equal(1, buckets.Single(s => s.Labels["le"] == "10").Value);
        Assert.Equal(2, buckets.Single(s => s.Labels["le"] == "100").Value);
        Assert.Equal(3, buckets.Single(s => s.Labels["le"] == "+Inf").Value);
        Assert.Equal(555, (await prometheus.WaitForAsync($"{prefix}_latency_milliseconds_sum", r => r.Count == 1))[0].Value);
        Assert.Equal(3, (await prometheus.WaitForAsync($"{prefix}_latency_milliseconds_count", r => r.Count == 1))[0].Value);

        var info = await prometheus.WaitForAsync($"target_info{{job=\"pgotel/it-svc\",instance=\"inst-7\"}}", r => r.Count >= 1);
        Assert.Equal(1, info[0].Value);

        var self = await gateway.SelfMetricsAsync();
        Assert.Contains("pgotel_receiver_accepted_points_total{receiver=\"otlp\",transport=\"" + (protocol == OtlpExportProtocol.Grpc ? "grpc" : "http") + "\"}", self, StringComparison.Ordinal);
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Gateway.Export.RemoteWrite;

namespace PgOtelGateway.Gateway.Tests.Export;

/// <summary>A remote-write exporter in front of a scripted receiver, and small requests for it.</summary>
internal static class RemoteWriteTestKit
{
    /// <summary>One sender, fast retries, no target_info: what a test sends is what the receiver sees, in order.</summary>
    public static RemoteWriteExporter Create(HttpMessageHandler receiver, string id = "prometheusremotewrite", int maxSamplesPerSend = 5000) => new(
        id,
        new RemoteWriteOptions
        {
            Endpoint = "http://receiver.invalid/api/v1/write",
            TargetInfo = new EnabledOption { Enabled = false },
            RetryOnFailure = new RetryOptions { InitialInterval = TimeSpan.FromMilliseconds(10), MaxInterval = TimeSpan.FromMilliseconds(50) },
            RemoteWriteQueue = new RemoteWriteQueueOptions { NumConsumers = 1, MaxSamplesPerSend = maxSamplesPerSend },
        },
        NullLogger<RemoteWriteExporter>.Instance,
        receiver);

    /// <summary><paramref name="series"/> gauge series of <paramref name="metric"/> (attribute i), one point each.</summary>
    public static ExportMetricsServiceRequest Request(string metric, int series)
    {
        var gauge = new Gauge();
        for (var i = 0; i < series; i++)
        {
            var point = new NumberDataPoint { AsDouble = i, TimeUnixNano = 1_700_000_000_000_000_000UL };
            point.Attributes.Add(new KeyValue { Key = "i", Value = new AnyValue { IntValue = i } });
            gauge.DataPoints.Add(point);
        }

        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(new ResourceMetrics
        {
            Resource = new Resource(),
            ScopeMetrics = { new ScopeMetrics { Metrics = { new Metric { Name = metric, Gauge = gauge } } } },
        });
        return request;
    }
}

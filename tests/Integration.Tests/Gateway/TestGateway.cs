using System.Globalization;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Gateway.Hosting;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>A gateway running in the test process on free loopback ports, configured from YAML like a real one.</summary>
internal sealed class TestGateway : IAsyncDisposable
{
    private readonly GatewayHost _host;
    private readonly TempDirectory? _ownQueue;

    private TestGateway(GatewayHost host, int grpc, int http, int metrics, int health, int admin, TempDirectory? ownQueue)
    {
        AdminPort = admin;
        _host = host;
        _ownQueue = ownQueue;
        GrpcPort = grpc;
        HttpPort = http;
        MetricsPort = metrics;
        HealthPort = health;
    }

    public int GrpcPort { get; }

    public int HttpPort { get; }

    public int MetricsPort { get; }

    public int HealthPort { get; }

    public int AdminPort { get; }

    public Uri GrpcUrl => new($"http://127.0.0.1:{GrpcPort}");

    public Uri HttpUrl => new($"http://127.0.0.1:{HttpPort}/v1/metrics");

    /// <summary>
    /// Starts a gateway. <paramref name="receiverExtra"/> and <paramref name="processors"/> are YAML fragments
    /// (indented for their place); the exporter is remote write to the harness's Prometheus (or <paramref name="writeUrl"/>).
    /// The durable queue lives in <paramref name="queueDirectory"/>, or in a temporary directory of its own;
    /// <paramref name="queueExtra"/> goes under <c>gateway.queue:</c> (e.g. <c>max_size</c>).
    /// <paramref name="gatewayExtra"/> goes under <c>gateway:</c> (e.g. a ring), <paramref name="exporterList"/> after
    /// the remote-write exporter in the pipeline (e.g. <c>", awss3"</c>, defined in <paramref name="exporters"/>, a YAML fragment
    /// under <c>exporters:</c>).
    /// </summary>
    public static async Task<TestGateway> StartAsync(
        string receiverExtra = "", string processors = "", string processorList = "", string exporterExtra = "",
        string? queueDirectory = null, Uri? writeUrl = null, string shutdownTimeout = "20s",
        string id = "test-gateway", string gatewayExtra = "", string exporters = "", string exporterList = "", int? grpcPort = null,
        string queueExtra = "")
    {
        // A port found free can be taken by a parallel test before we bind it; then try other ports.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await TryStartAsync(receiverExtra, processors, processorList, exporterExtra, queueDirectory, writeUrl, shutdownTimeout, id, gatewayExtra, exporters, exporterList, grpcPort, queueExtra);
            }
            catch (IOException ex) when (attempt < 5 && ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
            {
            }
        }
    }

    private static async Task<TestGateway> TryStartAsync(
        string receiverExtra, string processors, string processorList, string exporterExtra, string? queueDirectory, Uri? writeUrl, string shutdownTimeout,
        string id, string gatewayExtra, string exporters, string exporterList, int? grpcPort, string queueExtra)
    {
        int grpc = grpcPort ?? FreePort.Get(), http = FreePort.Get(), metrics = FreePort.Get(), health = FreePort.Get(), admin = FreePort.Get();
        writeUrl ??= new Uri(TestEnvironment.PrometheusUrl, "api/v1/write");
        var ownQueue = queueDirectory is null ? new TempDirectory("pgotel-gw-queue") : null;
        var yaml = string.Format(CultureInfo.InvariantCulture, """
            receivers:
              otlp:
                protocols:
                  grpc:
                    endpoint: 127.0.0.1:{0}
                  http:
                    endpoint: 127.0.0.1:{1}
            {4}
            processors:
              batch:
                timeout: 50ms
            {5}
            exporters:
              prometheusremotewrite:
                endpoint: {6}
                retry_on_failure:
                  initial_interval: 200ms
                  max_interval: 2s
            {7}
            {15}
            extensions:
              health_check:
                endpoint: 127.0.0.1:{3}
            gateway:
              id: {14}
              shutdown_timeout: {11}
              admin:
                endpoint: 127.0.0.1:{9}
              queue:
                directory: {10}
            {16}
            {12}
            service:
              extensions: [health_check]
              pipelines:
                metrics:
                  receivers: [otlp]
                  processors: [{8}batch]
                  exporters: [prometheusremotewrite{13}]
              telemetry:
                logs:
                  level: warn
                metrics:
                  address: 127.0.0.1:{2}
            """, grpc, http, metrics, health, Indent(receiverExtra, 4), Indent(processors, 2), writeUrl, Indent(exporterExtra, 4), processorList, admin, queueDirectory ?? ownQueue!.Path, shutdownTimeout,
            Indent(gatewayExtra, 2), exporterList, id, Indent(exporters, 2), Indent(queueExtra, 4));

        var config = ConfigLoader.Load(yaml, GatewayComponents.CreateRegistry());
        var host = GatewayHost.Create(config, logging => logging.SetMinimumLevel(LogLevel.Warning));
        try
        {
            await host.StartAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
        }
        catch
        {
            await host.DisposeAsync();
            ownQueue?.Dispose();
            throw;
        }

        return new TestGateway(host, grpc, http, metrics, health, admin, ownQueue);
    }

    private static string Indent(string fragment, int spaces)
    {
        if (fragment.Length == 0)
        {
            return "";
        }

        var pad = new string(' ', spaces);
        return string.Join('\n', fragment.Split('\n').Select(l => l.Length == 0 ? l : pad + l));
    }

    /// <summary>The gateway's own /metrics text.</summary>
    public async Task<string> SelfMetricsAsync()
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Short };
        return await http.GetStringAsync(new Uri($"http://127.0.0.1:{MetricsPort}/metrics"));
    }

    /// <summary>This gateway's exporter counters from its admin API (self-metrics are shared by every gateway in the process).</summary>
    public async Task<(long Sent, long Failed, long Dropped)> ExporterCountsAsync(string exporter = "prometheusremotewrite")
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Short };
        using var doc = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(new Uri($"http://127.0.0.1:{AdminPort}/api/v1/exporters")));
        foreach (var e in doc.RootElement.GetProperty("exporters").EnumerateArray())
        {
            if (e.GetProperty("name").GetString() == exporter)
            {
                return (e.GetProperty("sent_points").GetInt64(), e.GetProperty("failed_points").GetInt64(), e.GetProperty("dropped_points").GetInt64());
            }
        }

        throw new InvalidOperationException($"exporter {exporter} is not in the admin API's list");
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Pipeline);
        await _host.DisposeAsync();
        _ownQueue?.Dispose();
    }

    /// <summary>This gateway's view of one exporter's durable queue from its admin API.</summary>
    public async Task<(long Records, long Bytes, double? OldestSeconds)> QueueOfAsync(string exporter = "prometheusremotewrite")
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Short };
        using var doc = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(new Uri($"http://127.0.0.1:{AdminPort}/api/v1/exporters")));
        foreach (var e in doc.RootElement.GetProperty("exporters").EnumerateArray())
        {
            if (e.GetProperty("name").GetString() == exporter)
            {
                return (e.GetProperty("queue_records").GetInt64(), e.GetProperty("queue_bytes").GetInt64(), OldestSeconds(e));
            }
        }

        throw new InvalidOperationException($"exporter {exporter} is not in the admin API's list");
    }

    private static double? OldestSeconds(System.Text.Json.JsonElement exporter) =>
        exporter.GetProperty("oldest_item_age_seconds") is { ValueKind: System.Text.Json.JsonValueKind.Number } age ? age.GetDouble() : null;
}

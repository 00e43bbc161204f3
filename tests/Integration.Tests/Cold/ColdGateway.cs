using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Gateway.Hosting;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;

namespace PgOtelGateway.Integration.Tests.Cold;

/// <summary>One exporter's row of <c>GET /api/v1/exporters</c>.</summary>
internal sealed record ExporterRow(long QueueRecords, long QueueBytes, double? OldestAgeSeconds, long Sent, long Failed, long Dropped, string? LastError);

/// <summary>A gateway in the test process with the exporters a cold-tier test asks for, on free loopback ports.</summary>
internal sealed class ColdGateway : IAsyncDisposable
{
    private readonly GatewayHost _host;
    private readonly TempDirectory _queue;

    private ColdGateway(GatewayHost host, TempDirectory queue, int grpc, int admin)
    {
        _host = host;
        _queue = queue;
        GrpcPort = grpc;
        AdminPort = admin;
    }

    public int GrpcPort { get; }

    public int AdminPort { get; }

    /// <summary>The awss3 exporter's YAML for the harness's s3rver (keys from the config, path style).</summary>
    public static string S3Exporter(string prefix, string stagingDirectory, string extra = "") => $"""
        awss3:
          s3uploader:
            region: us-east-1
            s3_bucket: {TestEnvironment.S3.Bucket}
            s3_prefix: {prefix}
            s3_partition: minute
            endpoint: {TestEnvironment.S3.ServiceUrl}
            s3_force_path_style: true
            access_key_id: {TestEnvironment.S3.AccessKey}
            secret_access_key: {TestEnvironment.S3.SecretKey}
          file_max_age: 2s
          staging:
            directory: {stagingDirectory}
          retry_on_failure:
            initial_interval: 200ms
            max_interval: 2s
        {extra}
        """;

    /// <summary>The remote write exporter's YAML for the harness's Prometheus.</summary>
    public static string RemoteWriteExporter() => $"""
        prometheusremotewrite:
          endpoint: {new Uri(TestEnvironment.PrometheusUrl, "api/v1/write")}
          retry_on_failure:
            initial_interval: 200ms
            max_interval: 2s
        """;

    /// <summary>Starts a gateway whose <c>exporters:</c> section is <paramref name="exportersYaml"/>, all in the pipeline.</summary>
    public static async Task<ColdGateway> StartAsync(string exportersYaml, IReadOnlyList<string> exporters)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await TryStartAsync(exportersYaml, exporters);
            }
            catch (IOException ex) when (attempt < 5 && ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
            {
            }
        }
    }

    private static async Task<ColdGateway> TryStartAsync(string exportersYaml, IReadOnlyList<string> exporters)
    {
        int grpc = FreePort.Get(), admin = FreePort.Get();
        // Each gateway its own durable queue: the tests share a gateway id, and a queue left behind would replay.
        var queue = new TempDirectory("cold-queue");
        var indented = string.Join('\n', exportersYaml.Split('\n').Select(l => l.Length == 0 ? l : "  " + l));
        var yaml = string.Format(CultureInfo.InvariantCulture, """
            receivers:
              otlp:
                protocols:
                  grpc:
                    endpoint: 127.0.0.1:{0}
            processors:
              batch:
                timeout: 50ms
            exporters:
            {2}
            gateway:
              id: cold-test
              shutdown_timeout: 20s
              admin:
                endpoint: 127.0.0.1:{1}
              queue:
                directory: {4}
            service:
              pipelines:
                metrics:
                  receivers: [otlp]
                  processors: [batch]
                  exporters: [{3}]
              telemetry:
                logs:
                  level: warn
                metrics:
                  address: ""
            """, grpc, admin, indented, string.Join(", ", exporters), queue.Path);
        var config = ConfigLoader.Load(yaml, GatewayComponents.CreateRegistry());
        var host = GatewayHost.Create(config, logging => logging.SetMinimumLevel(LogLevel.Warning));
        try
        {
            await host.StartAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
        }
        catch
        {
            await host.DisposeAsync();
            queue.Dispose();
            throw;
        }

        return new ColdGateway(host, queue, grpc, admin);
    }

    /// <summary>This gateway's row for <paramref name="exporter"/> in the admin API.</summary>
    public async Task<ExporterRow> ExporterAsync(string exporter)
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Short };
        using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri($"http://127.0.0.1:{AdminPort}/api/v1/exporters")));
        foreach (var e in doc.RootElement.GetProperty("exporters").EnumerateArray())
        {
            if (e.GetProperty("name").GetString() == exporter)
            {
                var age = e.GetProperty("oldest_item_age_seconds");
                return new ExporterRow(
                    e.GetProperty("queue_records").GetInt64(),
                    e.GetProperty("queue_bytes").GetInt64(),
                    age.ValueKind == JsonValueKind.Number ? age.GetDouble() : null,
                    e.GetProperty("sent_points").GetInt64(),
                    e.GetProperty("failed_points").GetInt64(),
                    e.GetProperty("dropped_points").GetInt64(),
                    e.GetProperty("last_error").GetString());
            }
        }

        throw new InvalidOperationException($"exporter {exporter} is not in the admin API's list");
    }

    /// <summary>Waits until the exporter has delivered <paramref name="points"/> points and nothing waits.</summary>
    public Task WaitForSentAsync(string exporter, long points, TimeSpan timeout) =>
        TestTimeouts.WaitUntilAsync(async () =>
        {
            var row = await ExporterAsync(exporter);
            return row.Sent >= points && row.QueueRecords == 0;
        }, timeout, $"{points} points delivered by {exporter}", TimeSpan.FromMilliseconds(500));

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Pipeline);
        await _host.DisposeAsync();
        _queue.Dispose();
    }
}

using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Agent.Configuration;
using PgOtelGateway.Agent.Hosting;
using PgOtelGateway.Agent.Scrape;
using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>The prometheus receiver against the harness's real prometheus-postgres-exporter, and the agent's other receivers end to end.</summary>
public sealed class PrometheusReceiverTests
{
    private static Uri Exporter => TestEnvironment.PostgresExporterUrl;

    private static PrometheusReceiverOptions Options(string job, string relabel, string target = "")
    {
        var yaml = $"""
            receivers:
              prometheus:
                config:
                  scrape_configs:
                    - job_name: '{job}'
                      scrape_interval: 15s
                      scrape_timeout: 10s
                      metrics_path: {Exporter.AbsolutePath}
                      static_configs:
                        - targets: ['{(target.Length > 0 ? target : Exporter.Authority)}']
                          labels:
                            cluster_label: it
                      metric_relabel_configs:
            {relabel}
            exporters:
              debug:
            service:
              pipelines:
                metrics:
                  receivers: [prometheus]
                  exporters: [debug]
            """;
        return ConfigLoader.Load(yaml, AgentComponents.CreateRegistry()).Receivers["prometheus"].OptionsAs<PrometheusReceiverOptions>();
    }

    private const string KeepPg = """
                        - source_labels: [__name__]
                          regex: 'pg_.*'
                          action: keep
        """;

    private static async Task<ExportMetricsServiceRequest> OnceAsync(PrometheusReceiverOptions options)
    {
        await using var receiver = new PrometheusReceiver(options, new Discard(), NullLoggerFactory.Instance, TimeProvider.System);
        return await receiver.ScrapeOnceAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
    }

    private static List<Metric> Metrics(ExportMetricsServiceRequest r) => r.ResourceMetrics.SelectMany(rm => rm.ScopeMetrics).SelectMany(s => s.Metrics).ToList();

    private static string Attr(Google.Protobuf.Collections.RepeatedField<OpenTelemetry.Proto.Common.V1.KeyValue> attrs, string key) =>
        attrs.SingleOrDefault(a => a.Key == key)?.Value.StringValue ?? "<absent>";

    [Fact]
    public async Task ScrapeOnce_PostgresExporter_PgSeriesArriveAsOtlpWithTheirLabels()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.ExecuteAsync("CREATE TABLE t (id int)");
        for (var i = 0; i < 5; i++)
        {
            await db.ExecuteAsync($"INSERT INTO t VALUES ({i})");
        }

        var job = UniqueName.For();
        var options = Options(job, KeepPg);
        ExportMetricsServiceRequest request = new();
        double before = 0, after = 0;
        await TestTimeouts.WaitUntilAsync(async () =>
        {
            before = await db.ScalarAsync<long>($"SELECT xact_commit FROM pg_stat_database WHERE datname = '{db.Name}'");
            request = await OnceAsync(options);
            after = await db.ScalarAsync<long>($"SELECT xact_commit FROM pg_stat_database WHERE datname = '{db.Name}'");
            return Metrics(request).Any(m => m.Name == "pg_stat_database_xact_commit" && m.Sum.DataPoints.Any(p => Attr(p.Attributes, "datname") == db.Name));
        }, TestTimeouts.Pipeline, "the exporter to show the test database");

        var rm = Assert.Single(request.ResourceMetrics);
        Assert.Equal(job, Attr(rm.Resource.Attributes, "service.name"));
        Assert.Equal(Exporter.Authority, Attr(rm.Resource.Attributes, "service.instance.id"));
        var metrics = Metrics(request);

        var pgUp = metrics.Single(m => m.Name == "pg_up");
        Assert.Equal(1, pgUp.Gauge.DataPoints.Single().AsDouble);
        Assert.Equal("it", Attr(pgUp.Gauge.DataPoints.Single().Attributes, "cluster_label"));
        Assert.Equal(1, metrics.Single(m => m.Name == "up").Gauge.DataPoints.Single().AsDouble);

        var commits = metrics.Single(m => m.Name == "pg_stat_database_xact_commit");
        Assert.False(string.IsNullOrEmpty(commits.Description));
        Assert.True(commits.Sum.IsMonotonic);
        Assert.Equal(AggregationTemporality.Cumulative, commits.Sum.AggregationTemporality);
        var point = commits.Sum.DataPoints.Single(p => Attr(p.Attributes, "datname") == db.Name);
        Assert.True(point.StartTimeUnixNano > 0 && point.StartTimeUnixNano <= point.TimeUnixNano);
        Assert.InRange(point.AsDouble, before, after);
        Assert.True(point.AsDouble >= 5);
        Assert.NotEqual("<absent>", Attr(point.Attributes, "server"));
        Assert.NotEqual("<absent>", Attr(point.Attributes, "datid"));

        // The keep rule left only pg_* (and the series every scrape adds).
        Assert.All(metrics, m => Assert.True(m.Name.StartsWith("pg_", StringComparison.Ordinal) || m.Name is "up" || m.Name.StartsWith("scrape_", StringComparison.Ordinal), m.Name));
        Assert.Contains(metrics, m => m.Name == "pg_settings_max_connections");
        var scraped = metrics.Single(m => m.Name == "scrape_samples_scraped").Gauge.DataPoints.Single().AsDouble;
        var kept = metrics.Single(m => m.Name == "scrape_samples_post_metric_relabeling").Gauge.DataPoints.Single().AsDouble;
        Assert.True(kept < scraped && kept > 50, $"{kept} of {scraped}");

        // Timestamps sit on the 15 s grid.
        Assert.Equal(0UL, point.TimeUnixNano / 1_000_000 % 15_000);
    }

    [Fact]
    public async Task ScrapeOnce_DropRule_RemovesTheMatchingSeriesOnly()
    {
        const string dropSystemDatabases = """
                        - source_labels: [__name__, datname]
                          separator: '@'
                          regex: 'pg_stat_database_.*@(postgres|template1)'
                          action: drop
        """;
        var request = await OnceAsync(Options(UniqueName.For(), KeepPg + "\n" + dropSystemDatabases));
        var metrics = Metrics(request);
        Assert.Contains(metrics, m => m.Name == "pg_up");
        var commits = metrics.Single(m => m.Name == "pg_stat_database_xact_commit").Sum.DataPoints;
        Assert.DoesNotContain(commits, p => Attr(p.Attributes, "datname") is "postgres" or "template1");
        Assert.Contains(commits, p => Attr(p.Attributes, "datname") == "template0");
        Assert.DoesNotContain(metrics, m => m.Name.StartsWith("go_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ScrapeOnce_TargetDown_ReportsUpZeroAndNothingElse()
    {
        var request = await OnceAsync(Options(UniqueName.For(), KeepPg, target: $"127.0.0.1:{FreePort.Get()}"));
        var metrics = Metrics(request);
        Assert.Equal(0, metrics.Single(m => m.Name == "up").Gauge.DataPoints.Single().AsDouble);
        Assert.All(metrics, m => Assert.True(m.Name is "up" || m.Name.StartsWith("scrape_", StringComparison.Ordinal), m.Name));
    }

    [Fact]
    public async Task Run_PrometheusAndHostmetricsThroughTheGateway_ArriveInPrometheus()
    {
        await using var gateway = await TestGateway.StartAsync();
        var job = UniqueName.For();
        var host = UniqueName.For() + "-host";
        var yaml = $"""
            receivers:
              prometheus:
                config:
                  scrape_configs:
                    - job_name: {job}
                      scrape_interval: 2s
                      metrics_path: {Exporter.AbsolutePath}
                      static_configs:
                        - targets: ['{Exporter.Authority}']
                      metric_relabel_configs:
            {KeepPg}
              hostmetrics:
                collection_interval: 2s
                initial_delay: 0s
                scrapers:
                  cpu:
                  memory:
                  disk:
                  network:
                  filesystem:
                  load:
                resource:
                  host_name: {host}
            processors:
              batch:
                timeout: 200ms
            exporters:
              otlp:
                endpoint: 127.0.0.1:{gateway.GrpcPort}
            service:
              pipelines:
                metrics:
                  receivers: [prometheus, hostmetrics]
                  processors: [batch]
                  exporters: [otlp]
              telemetry:
                metrics:
                  address: ""
            """;
        await using var agent = AgentHost.Create(ConfigLoader.Load(yaml, AgentComponents.CreateRegistry()), l => l.SetMinimumLevel(LogLevel.Warning));
        await agent.StartAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
        try
        {
            using var prometheus = new PrometheusClient();
            await prometheus.WaitForAsync($"pg_up{{job=\"{job}\",instance=\"{Exporter.Authority}\"}}", r => r.Count == 1 && r[0].Value == 1);
            await prometheus.WaitForAsync($"pg_stat_database_xact_commit_total{{job=\"{job}\",datname=\"postgres\"}}", r => r.Count == 1 && r[0].Value > 0);
            await prometheus.WaitForAsync($"system_cpu_time_seconds_total{{job=\"hostmetrics\",instance=\"{host}\",cpu=\"cpu0\",state=\"user\"}}", r => r.Count == 1 && r[0].Value > 0);
            var memory = await prometheus.WaitForAsync($"system_memory_usage_bytes{{job=\"hostmetrics\",instance=\"{host}\"}}", r => r.Count >= 4);
            Assert.Contains(memory, s => s.Labels["state"] == "used" && s.Value > 0);
            await prometheus.WaitForAsync($"system_network_io_bytes_total{{job=\"hostmetrics\",instance=\"{host}\",device=\"lo\",direction=\"receive\"}}", r => r.Count == 1 && r[0].Value > 0);
            var counts = await gateway.ExporterCountsAsync();
            Assert.Equal(0, counts.Dropped);
        }
        finally
        {
            await agent.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
        }
    }

    [Fact]
    public async Task Run_WithTheDebugExporter_PrintsTheDataOnStdout()
    {
        using var dir = new TempDirectory();
        var config = dir.File("agent.yaml");
        await File.WriteAllTextAsync(config, $"""
            receivers:
              prometheus:
                config:
                  scrape_configs:
                    - job_name: {UniqueName.For()}
                      scrape_interval: 1s
                      metrics_path: {Exporter.AbsolutePath}
                      static_configs:
                        - targets: ['{Exporter.Authority}']
              hostmetrics:
                collection_interval: 1s
                initial_delay: 0s
                scrapers:
                  memory:
            exporters:
              debug:
                verbosity: detailed
            service:
              pipelines:
                metrics:
                  receivers: [prometheus, hostmetrics]
                  exporters: [debug]
              telemetry:
                metrics:
                  address: ""
            """);
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "PgOtelGateway.Agent.dll"));
        info.ArgumentList.Add("--config");
        info.ArgumentList.Add(config);
        using var process = Process.Start(info)!;
        var stdout = new System.Text.StringBuilder();
        var stderr = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (stdout) { stdout.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (stderr) { stderr.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            string Out() { lock (stdout) { return stdout.ToString(); } }
            await TestTimeouts.WaitUntilAsync(() => Task.FromResult(Out().Contains("\"pg_up\"", StringComparison.Ordinal) && Out().Contains("\"system.memory.usage\"", StringComparison.Ordinal)),
                TestTimeouts.Pipeline, "the debug exporter's OTLP/JSON on stdout");
            lock (stderr)
            {
                Assert.DoesNotContain("\"pg_up\"", stderr.ToString(), StringComparison.Ordinal);
            }
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().WaitAsync(TestTimeouts.Short);
        }
    }

    [Fact]
    public async Task CollectOnce_WithPrometheusAndHostmetrics_PrintsBothAsOtlpJson()
    {
        using var dir = new TempDirectory();
        var config = dir.File("agent.yaml");
        var job = UniqueName.For();
        await File.WriteAllTextAsync(config, $"""
            receivers:
              prometheus:
                config:
                  scrape_configs:
                    - job_name: {job}
                      scrape_interval: 10s
                      metrics_path: {Exporter.AbsolutePath}
                      static_configs:
                        - targets: ['{Exporter.Authority}']
              hostmetrics:
                scrapers:
                  cpu:
                  memory:
            exporters:
              debug:
            service:
              pipelines:
                metrics:
                  receivers: [prometheus, hostmetrics]
                  exporters: [debug]
              telemetry:
                metrics:
                  address: ""
            """);
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "PgOtelGateway.Agent.dll"));
        foreach (var a in new[] { "collect-once", "--config", config })
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TestTimeouts.Pipeline);
        Assert.True(process.ExitCode == 0, await stderr);

        // One OTLP/JSON document per receiver, one per line.
        var documents = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => System.Text.Json.JsonDocument.Parse(l)).ToList();
        Assert.Equal(2, documents.Count);
        var names = documents.SelectMany(d => d.RootElement.GetProperty("resourceMetrics").EnumerateArray())
            .SelectMany(rm => rm.GetProperty("scopeMetrics").EnumerateArray()).SelectMany(s => s.GetProperty("metrics").EnumerateArray())
            .Select(m => m.GetProperty("name").GetString()).ToHashSet();
        Assert.Contains("pg_up", names);
        Assert.Contains("go_goroutines", names);
        Assert.Contains("system.cpu.time", names);
        Assert.Contains("system.memory.usage", names);
        foreach (var d in documents)
        {
            d.Dispose();
        }
    }

    private sealed class Discard : PgOtelGateway.Shared.Pipeline.IMetricsConsumer
    {
        public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

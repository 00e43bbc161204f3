using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using PgOtelGateway.Integration.Tests.Cold;
using PgOtelGateway.Tests.Common;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// Nothing acknowledged is lost on kill -9: the gateway runs as its own process and is killed every 10–30 s
/// (about a minute in CI, ten under PGOTEL_TEST_SOAK=1) while senders write numbered points and retry whatever
/// was not acknowledged. Prometheus is stopped for the middle half of the run, so acknowledged points must
/// survive kills while they exist only in the gateway's queue. The gateway also runs the <c>awss3</c> exporter to
/// the harness's s3rver, its staging directory kept across the restarts like the queue. Afterwards every
/// acknowledged point is in Prometheus and in the Parquet files; duplicates in Parquet (a record replayed after a
/// kill) are counted and reported, not failed on.
/// </summary>
[Collection(ServiceFaultCollection.Name)]
[Trait("Category", ServiceFaultCollection.Category)]
public sealed class GatewayKillTests(ITestOutputHelper output)
{
    private const int Senders = 3;

    [Fact]
    public async Task KillNine_InALoopWhileSendersRetry_EveryAcknowledgedPointArrives()
    {
        var duration = TimeSpan.FromSeconds(TestEnvironment.Soak ? 600 : 60);
        using var dir = new TempDirectory("pgotel-kill");
        var metric = UniqueName.For();
        var started = DateTimeOffset.UtcNow;
        int grpc = FreePort.Get(), health = FreePort.Get(), admin = FreePort.Get(), metrics = FreePort.Get();
        var configPath = dir.File("gateway.yaml");
        var prefix = "kill-" + metric;
        await File.WriteAllTextAsync(configPath, Config(grpc, health, admin, metrics, dir.File("queue"), ColdGateway.S3Exporter(prefix, dir.File("staging"))));

        await using var gateway = new GatewayProcess(configPath, health);
        await gateway.StartAsync();

        using var stopSending = new CancellationTokenSource();
        var acked = new ConcurrentDictionary<int, int>[Senders];
        var senders = new Task[Senders];
        for (var s = 0; s < Senders; s++)
        {
            acked[s] = new ConcurrentDictionary<int, int>();
            var sender = s;
            senders[s] = Task.Run(() => SendAsync($"{metric}_s{sender}", grpc, acked[sender], stopSending.Token));
        }

        var outage = Task.Run(async () =>
        {
            await Task.Delay(duration / 4);
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss} Prometheus stopped");
            await ServiceControl.StopAsync("prometheus");
            try
            {
                await Task.Delay(duration / 2);
            }
            finally
            {
                await ServiceControl.StartAsync("prometheus");
                output.WriteLine($"{DateTime.UtcNow:HH:mm:ss} Prometheus started");
            }
        });

        var kills = 0;
        var until = DateTime.UtcNow + duration;
        while (DateTime.UtcNow < until)
        {
            await Task.Delay(TimeSpan.FromSeconds(Random.Shared.Next(10, 31)));
            gateway.KillNine();
            kills++;
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss} kill -9 #{kills}; acknowledged so far: {string.Join(", ", acked.Select(a => a.Count))}");
            await gateway.StartAsync();
        }

        // Let the senders see the last incarnation accept data, then stop them.
        await outage.WaitAsync(TestTimeouts.Pipeline);
        await Task.Delay(TimeSpan.FromSeconds(3));
        await stopSending.CancelAsync();
        await Task.WhenAll(senders).WaitAsync(TestTimeouts.Short);

        Assert.True(kills >= 2, $"only {kills} kills");
        using var prometheus = new PrometheusClient();
        for (var s = 0; s < Senders; s++)
        {
            var name = $"{metric}_s{s}";
            var expected = acked[s].Keys.Order().ToList();
            Assert.True(expected.Count > 10, $"{name}: only {expected.Count} points were acknowledged");
            var missing = expected;
            try
            {
                await TestTimeouts.WaitUntilAsync(async () =>
                {
                    var series = await prometheus.RawSamplesAsync(name, DateTimeOffset.UtcNow - started + TimeSpan.FromMinutes(1));
                    var values = series.SelectMany(x => x.Samples).Select(x => (int)x.Value).ToHashSet();
                    missing = [.. expected.Where(v => !values.Contains(v))];
                    return missing.Count == 0;
                }, TestTimeouts.Pipeline, $"{name}: all {expected.Count} acknowledged points in Prometheus");
            }
            catch (TimeoutException)
            {
                Assert.Fail($"{name}: {missing.Count} of {expected.Count} acknowledged points never reached Prometheus, e.g. {string.Join(", ", missing.Take(20))}");
            }

            output.WriteLine($"{name}: {expected.Count} acknowledged points, all in Prometheus");
        }

        // The last incarnation stops gracefully once the queue has handed everything to awss3, so its open journal
        // is converted and uploaded; then every acknowledged point must be in the Parquet files.
        await TestTimeouts.WaitUntilAsync(async () => await QueueRecordsAsync(admin, "awss3") == 0, TestTimeouts.Pipeline, "awss3 has taken everything from the queue", TimeSpan.FromMilliseconds(500));
        await gateway.StopGracefullyAsync();
        var waiting = Directory.Exists(dir.File("staging"))
            ? Directory.EnumerateFiles(dir.File("staging"), "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) is not ("sequence" or "lock")).ToList()
            : [];
        output.WriteLine($"left in staging after the graceful stop: {(waiting.Count == 0 ? "nothing" : string.Join(", ", waiting.Select(Path.GetFileName)))}");

        using var cold = new TempDirectory("pgotel-kill-cold");
        var keys = await ColdData.DownloadAsync(prefix, cold.Path);
        Assert.True(keys.Count > 0, $"no objects under {prefix}/ in s3rver; gateway log:\n{gateway.LogTail}");
        var rows = ColdData.Query($"""
            SELECT metric_name, CAST(value_double AS INTEGER) AS k, count(*) AS n
            FROM read_parquet({ColdData.Literal(Path.Combine(cold.Path, "**", "*.parquet"))}, hive_partitioning = true)
            WHERE metric_name LIKE {ColdData.Literal(metric + "_s%")}
            GROUP BY ALL
            """);
        var duplicates = 0L;
        for (var s = 0; s < Senders; s++)
        {
            var name = $"{metric}_s{s}";
            var inParquet = new Dictionary<int, long>();
            foreach (var row in rows)
            {
                if ((string)row[0]! == name)
                {
                    inParquet[Convert.ToInt32(row[1], CultureInfo.InvariantCulture)] = Convert.ToInt64(row[2], CultureInfo.InvariantCulture);
                }
            }

            var expected = acked[s].Keys.Order().ToList();
            var missing = expected.Where(k => !inParquet.ContainsKey(k)).ToList();
            Assert.True(missing.Count == 0, $"{name}: {missing.Count} of {expected.Count} acknowledged points are not in the {keys.Count} Parquet files, e.g. {string.Join(", ", missing.Take(20))}; {waiting.Count} files left in staging");
            var twice = inParquet.Values.Where(n => n > 1).Sum(n => n - 1);
            duplicates += twice;
            output.WriteLine($"{name}: {expected.Count} acknowledged points, all in Parquet ({inParquet.Count} distinct points, {twice} duplicate rows)");
        }

        output.WriteLine($"Parquet: {keys.Count} files, {duplicates} duplicate rows in all");
        output.WriteLine($"{kills} kills; what the gateways said about the queue and rejected samples:\n{gateway.Notable}");
    }

    /// <summary>The exporter's <c>queue_records</c> in <c>GET /api/v1/exporters</c>.</summary>
    private static async Task<long> QueueRecordsAsync(int adminPort, string exporter)
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Short };
        using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri($"http://127.0.0.1:{adminPort}/api/v1/exporters")));
        foreach (var e in doc.RootElement.GetProperty("exporters").EnumerateArray())
        {
            if (e.GetProperty("name").GetString() == exporter)
            {
                return e.GetProperty("queue_records").GetInt64();
            }
        }

        throw new InvalidOperationException($"exporter {exporter} is not in the admin API's list");
    }

    /// <summary>Sends point 0, 1, 2… of one series, one per request; a point not acknowledged is sent again, unchanged.</summary>
    private static async Task SendAsync(string name, int port, ConcurrentDictionary<int, int> acked, CancellationToken stop)
    {
        var lastMs = 0L;
        for (var k = 0; !stop.IsCancellationRequested; k++)
        {
            var ms = Math.Max(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), lastMs + 1);
            lastMs = ms;
            var value = k;
            var body = RawOtlpClient.Request(name, 1, (p, _) =>
            {
                p.AsDouble = value;
                p.TimeUnixNano = (ulong)ms * 1_000_000UL;
                p.Attributes.Clear();
            }).ToByteArray();
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var answer = await RawOtlpClient.GrpcAsync(port, body).WaitAsync(TimeSpan.FromSeconds(10), stop);
                    if (answer.Code == 0)
                    {
                        acked[k] = 1;
                        break;
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or TimeoutException or IOException)
                {
                    // The gateway is down or was killed mid-request: not acknowledged, so send the same point again.
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                await Task.Delay(100, CancellationToken.None);
            }

            await Task.Delay(20, CancellationToken.None);
        }
    }

    private static string Config(int grpc, int health, int admin, int metrics, string queue, string s3Exporter)
    {
        var writeUrl = new Uri(TestEnvironment.PrometheusUrl, "api/v1/write");
        var s3 = string.Join('\n', s3Exporter.Split('\n').Select(l => l.Length == 0 ? l : "  " + l));
        return string.Format(CultureInfo.InvariantCulture, """
            receivers:
              otlp:
                protocols:
                  grpc:
                    endpoint: 127.0.0.1:{0}
            processors:
              batch:
                timeout: 50ms
            exporters:
              prometheusremotewrite:
                endpoint: {4}
                retry_on_failure:
                  initial_interval: 200ms
                  max_interval: 2s
            {6}
            extensions:
              health_check:
                endpoint: 127.0.0.1:{1}
            gateway:
              id: kill-test
              shutdown_timeout: 30s
              admin:
                endpoint: 127.0.0.1:{2}
              queue:
                directory: {5}
                fsync: group
            service:
              extensions: [health_check]
              pipelines:
                metrics:
                  receivers: [otlp]
                  processors: [batch]
                  exporters: [prometheusremotewrite, awss3]
              telemetry:
                logs:
                  level: info
                metrics:
                  address: 127.0.0.1:{3}
            """, grpc, health, admin, metrics, writeUrl, queue, s3);
    }

    /// <summary>The real gateway binary (next to the tests) as a child process that can be killed with SIGKILL.</summary>
    private sealed class GatewayProcess(string configPath, int healthPort) : IAsyncDisposable
    {
        private readonly StringBuilder _log = new();
        private readonly StringBuilder _notable = new();
        private Process? _process;

        public string LogTail
        {
            get
            {
                lock (_log)
                {
                    var text = _log.ToString();
                    return text.Length > 4000 ? text[^4000..] : text;
                }
            }
        }

        /// <summary>Log lines about the durable queue (replay, torn tails) and samples the receiver rejected.</summary>
        public string Notable
        {
            get
            {
                lock (_log)
                {
                    return _notable.ToString();
                }
            }
        }

        public async Task StartAsync()
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "PgOtelGateway.Gateway.dll");
            Assert.True(File.Exists(dll), $"{dll} was not built next to the tests");
            for (var attempt = 1; ; attempt++)
            {
                var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
                info.ArgumentList.Add(dll);
                info.ArgumentList.Add("run");
                info.ArgumentList.Add("--config");
                info.ArgumentList.Add(configPath);
                var process = Process.Start(info)!;
                process.OutputDataReceived += (_, e) => Append(e.Data);
                process.ErrorDataReceived += (_, e) => Append(e.Data);
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
                _process = process;
                if (await WaitReadyAsync(process))
                {
                    return;
                }

                // A port of the killed process may take a moment to be free again.
                Assert.True(attempt < 5, $"the gateway did not become ready; log:\n{LogTail}");
                await Task.Delay(1000);
            }
        }

        public void KillNine()
        {
            // Process.Kill sends SIGKILL on Unix: no shutdown code runs.
            _process!.Kill();
            _process.WaitForExit(30_000);
            _process.Dispose();
            _process = null;
        }

        /// <summary>SIGTERM, then waits for a clean exit: the exporters flush what they hold.</summary>
        public async Task StopGracefullyAsync()
        {
            var process = _process!;
            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)])!)
            {
                await kill.WaitForExitAsync().WaitAsync(TestTimeouts.Short);
            }

            await process.WaitForExitAsync().WaitAsync(TestTimeouts.Pipeline);
            Assert.True(process.ExitCode == 0, $"the gateway exited with {process.ExitCode} on SIGTERM; log:\n{LogTail}");
            process.Dispose();
            _process = null;
        }

        private async Task<bool> WaitReadyAsync(Process process)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (DateTime.UtcNow < deadline)
            {
                if (process.HasExited)
                {
                    return false;
                }

                try
                {
                    using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{healthPort}/ready"));
                    if (response.IsSuccessStatusCode)
                    {
                        return true;
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                }

                await Task.Delay(200);
            }

            return false;
        }

        private void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_log)
            {
                if (line.Contains("Durable queue", StringComparison.Ordinal) || line.Contains("rejected", StringComparison.Ordinal))
                {
                    _notable.AppendLine(line.Length > 400 ? line[..400] : line);
                }

                _log.AppendLine(line);
                if (_log.Length > 200_000)
                {
                    _log.Remove(0, 100_000);
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_process is { HasExited: false } process)
            {
                process.Kill();
                await process.WaitForExitAsync().WaitAsync(TestTimeouts.Short);
            }

            _process?.Dispose();
        }
    }
}

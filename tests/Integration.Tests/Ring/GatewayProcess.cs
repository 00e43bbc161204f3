using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using PgOtelGateway.Tests.Common;

namespace PgOtelGateway.Integration.Tests.Ring;

/// <summary>
/// A gateway as its own process (<c>dotnet PgOtelGateway.Gateway.dll --config …</c>) on free loopback ports,
/// so it can be killed with SIGKILL and has self-metrics of its own.
/// </summary>
internal sealed class GatewayProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private readonly string _configPath;
    private Process? _process;

    private GatewayProcess(string id, string directory)
    {
        Id = id;
        _configPath = Path.Combine(directory, id + ".yaml");
    }

    public string Id { get; }

    public int GrpcPort { get; } = FreePort.Get();

    public int MetricsPort { get; } = FreePort.Get();

    public int HealthPort { get; } = FreePort.Get();

    public int AdminPort { get; } = FreePort.Get();

    public string Address => $"127.0.0.1:{GrpcPort}";

    public bool HasExited => _process?.HasExited ?? true;

    public int ExitCode => _process?.ExitCode ?? -1;

    public int Pid => _process?.Id ?? 0;

    /// <summary>What the process printed (for assertion messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Gateways with ids <c>{prefix}-0</c>…, not started yet; <paramref name="ringYaml"/> is written with
    /// <c>{members}</c> replaced by the static member list.</summary>
    public static List<GatewayProcess> Create(string prefix, int count, string directory)
    {
        var list = new List<GatewayProcess>();
        for (var i = 0; i < count; i++)
        {
            list.Add(new GatewayProcess($"{prefix}-{i}", directory));
        }

        return list;
    }

    /// <summary>The static member list of <paramref name="gateways"/> as a YAML flow sequence.</summary>
    public static string StaticMembers(IEnumerable<GatewayProcess> gateways) =>
        "[" + string.Join(", ", gateways.Select(g => $"\"{g.Id}={g.Address}\"")) + "]";

    /// <summary>
    /// Writes the config with <paramref name="members"/> as the <c>gateway.ring.members</c> block and starts the
    /// process; returns once /ready answers. <paramref name="processors"/> is extra YAML under <c>processors:</c>
    /// (beside <c>batch</c>) and <paramref name="processorList"/> is put before <c>batch</c> in the pipeline
    /// (e.g. <c>"dedupe, "</c>).
    /// </summary>
    /// <param name="rateLimiting">The receiver's <c>rate_limiting</c> block (YAML under it); off by default.</param>
    public async Task StartAsync(string members, string ringExtra = "", string processors = "", string processorList = "", string rateLimiting = "enabled: false")
    {
        var writeUrl = new Uri(TestEnvironment.PrometheusUrl, "api/v1/write");
        var yaml = string.Format(CultureInfo.InvariantCulture, """
            receivers:
              otlp:
                protocols:
                  grpc:
                    endpoint: 127.0.0.1:{0}
                rate_limiting:
            {11}
            processors:
            {9}
              batch:
                timeout: 50ms
            exporters:
              prometheusremotewrite:
                endpoint: {1}
                target_info:
                  enabled: false
                retry_on_failure:
                  initial_interval: 200ms
                  max_interval: 2s
            extensions:
              health_check:
                endpoint: 127.0.0.1:{2}
            gateway:
              id: {3}
              shutdown_timeout: 20s
              admin:
                endpoint: 127.0.0.1:{4}
              queue:
                directory: {8}
              ring:
                forward_timeout: 2s
                leave_grace: 2s
            {6}
                members:
            {7}
            service:
              extensions: [health_check]
              pipelines:
                metrics:
                  receivers: [otlp]
                  processors: [{10}batch]
                  exporters: [prometheusremotewrite]
              telemetry:
                logs:
                  level: info
                metrics:
                  address: 127.0.0.1:{5}
            """, GrpcPort, writeUrl, HealthPort, Id, AdminPort, MetricsPort, Indent(ringExtra, 4), Indent(members, 6),
            Path.Combine(Path.GetDirectoryName(_configPath)!, $"queue-{Id}"), Indent(processors, 2), processorList, Indent(rateLimiting, 6));
        await File.WriteAllTextAsync(_configPath, yaml);

        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "PgOtelGateway.Gateway.dll"));
        info.ArgumentList.Add("--config");
        info.ArgumentList.Add(_configPath);
        _process?.Dispose();
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await TestTimeouts.WaitUntilAsync(async () =>
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"gateway {Id} exited with {_process.ExitCode}: {Output}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{HealthPort}/ready"));
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TestTimeouts.Pipeline, $"gateway {Id} to be ready");
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private static string Indent(string fragment, int spaces)
    {
        var pad = new string(' ', spaces);
        return string.Join('\n', fragment.Split('\n').Select(l => l.Length == 0 ? l : pad + l));
    }

    /// <summary>SIGKILL: no drain, no goodbye.</summary>
    public async Task KillAsync()
    {
        _process!.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync().WaitAsync(TestTimeouts.Short);
    }

    /// <summary>Waits for the process to exit on its own.</summary>
    public Task WaitForExitAsync(TimeSpan timeout) => _process!.WaitForExitAsync().WaitAsync(timeout);

    /// <summary><c>GET /api/v1/ring</c>: (id, state, owned fraction, self) per member.</summary>
    public async Task<List<(string Id, string State, double Owned, bool Self)>> RingAsync()
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Short };
        using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri($"http://127.0.0.1:{AdminPort}/api/v1/ring")));
        var list = new List<(string, string, double, bool)>();
        foreach (var m in doc.RootElement.GetProperty("members").EnumerateArray())
        {
            list.Add((m.GetProperty("id").GetString()!, m.GetProperty("state").GetString()!, m.GetProperty("owned_fraction").GetDouble(), m.GetProperty("self").GetBoolean()));
        }

        return list;
    }

    /// <summary>Waits until this gateway's ring lists exactly <paramref name="active"/> as ACTIVE members and nothing else.</summary>
    public Task WaitForRingAsync(params GatewayProcess[] active) => TestTimeouts.WaitUntilAsync(async () =>
    {
        var ring = await RingAsync();
        return ring.Count == active.Length && ring.All(m => m.State == "ACTIVE") && active.All(a => ring.Any(m => m.Id == a.Id));
    }, TestTimeouts.Pipeline, $"{Id} to see the ring [{string.Join(", ", active.Select(a => a.Id))}]");

    /// <summary>The sum of a self-metric's samples whose label set contains <paramref name="labelFilter"/>.</summary>
    public async Task<double> MetricAsync(string name, string labelFilter = "")
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Short };
        return MetricsText.Sum(await http.GetStringAsync(new Uri($"http://127.0.0.1:{MetricsPort}/metrics")), name, labelFilter);
    }

    /// <summary>This gateway's remote-write counters from its admin API.</summary>
    public async Task<(long Sent, long Dropped, long Queued)> ExporterAsync()
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Short };
        using var doc = JsonDocument.Parse(await http.GetStringAsync(new Uri($"http://127.0.0.1:{AdminPort}/api/v1/exporters")));
        foreach (var e in doc.RootElement.GetProperty("exporters").EnumerateArray())
        {
            if (e.GetProperty("name").GetString() == "prometheusremotewrite")
            {
                return (e.GetProperty("sent_points").GetInt64(), e.GetProperty("dropped_points").GetInt64(), e.GetProperty("queue_records").GetInt64());
            }
        }

        throw new InvalidOperationException("no prometheusremotewrite exporter");
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is null)
        {
            return;
        }

        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TestTimeouts.Short);
        }

        _process.Dispose();
    }
}

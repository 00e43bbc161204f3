using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Agent.Collection;

namespace PgOtelGateway.Agent.HostMetrics;

/// <summary>
/// Reads the host's statistics from <c>/proc</c> into OTLP with the names, units and attributes of the
/// OpenTelemetry host-metrics semantic conventions (<c>system.cpu.time{cpu,state}</c> and so on). Counters are
/// monotonic cumulative sums that start at boot (<c>btime</c>); levels are non-monotonic sums or gauges.
/// A scraper whose source cannot be read costs one log line per failure streak and its metrics, never the rest.
/// </summary>
internal sealed partial class HostMetricsScraper
{
    /// <summary>Linux reports /proc/stat in USER_HZ ticks, 100 per second on every mainstream architecture.</summary>
    private const double TicksPerSecond = 100;
    private const int SectorBytes = 512;

    private static readonly string[] CpuStates = ["user", "nice", "system", "idle", "wait", "interrupt", "softirq", "steal"];
    private static readonly string[] TcpStates =
        ["", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"];

    private readonly HostMetricsReceiverOptions _options;
    private readonly ILogger _logger;
    private readonly string _proc;
    private readonly Resource _resource;
    private readonly Regex[] _diskExcludes;
    private readonly Regex[] _networkExcludes;
    private readonly Regex[] _mountExcludes;
    private readonly HashSet<string> _failing = new(StringComparer.Ordinal);
    private Dictionary<string, double[]>? _previousCpu;

    public HostMetricsScraper(HostMetricsReceiverOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
        _proc = Path.Combine(options.RootPath.Length > 0 ? options.RootPath : "/", "proc");
        _diskExcludes = Compile(options.Scrapers.Disk?.ExcludeDevices);
        _networkExcludes = Compile(options.Scrapers.Network?.ExcludeDevices);
        _mountExcludes = Compile(options.Scrapers.Filesystem?.ExcludeMountPoints);
        _resource = BuildResource(options.Resource);
    }

    private static Regex[] Compile(List<string>? patterns)
    {
        if (patterns is null)
        {
            return [];
        }

        var compiled = new Regex[patterns.Count];
        for (var i = 0; i < compiled.Length; i++)
        {
            compiled[i] = new Regex("^(?:" + patterns[i] + ")$", RegexOptions.CultureInvariant);
        }

        return compiled;
    }

    private static Resource BuildResource(PgResourceOptions options)
    {
        var host = options.HostName.Length > 0 ? options.HostName : Environment.MachineName.ToLowerInvariant();
        var resource = new Resource();
        void Add(string key, string value)
        {
            if (value.Length > 0)
            {
                resource.Attributes.Add(new KeyValue { Key = key, Value = new AnyValue { StringValue = value } });
            }
        }

        Add("service.name", "hostmetrics");
        Add("service.instance.id", host);
        Add("host.name", host);
        Add("os.type", "linux");
        Add("db.cluster", options.Cluster);
        Add("deployment.environment", options.Environment);
        Add("agent.id", options.AgentId.Length > 0 ? options.AgentId : Environment.MachineName.ToLowerInvariant());
        foreach (var (key, value) in options.Attributes)
        {
            Add(key, value);
        }

        return resource;
    }

    /// <summary>One scrape of every configured scraper, every point stamped with <paramref name="at"/>.</summary>
    public ResourceMetrics Scrape(DateTimeOffset at)
    {
        var set = new HostMetricSet((ulong)at.ToUnixTimeMilliseconds() * 1_000_000);
        var scrapers = _options.Scrapers;
        Run("cpu", scrapers.Cpu is not null, () => ScrapeCpu(set, scrapers.Cpu!));
        Run("memory", scrapers.Memory is not null, () => ScrapeMemory(set, scrapers.Memory!));
        Run("disk", scrapers.Disk is not null, () => ScrapeDisks(set));
        Run("network", scrapers.Network is not null, () => ScrapeNetwork(set, scrapers.Network!));
        Run("filesystem", scrapers.Filesystem is not null, () => ScrapeFilesystems(set, scrapers.Filesystem!));
        Run("load", scrapers.Load is not null, () => ScrapeLoad(set));
        var scope = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent/hostmetrics", Version = typeof(HostMetricsScraper).Assembly.GetName().Version?.ToString(3) ?? "" } };
        scope.Metrics.Add(set.Metrics);
        var rm = new ResourceMetrics { Resource = _resource.Clone() };
        rm.ScopeMetrics.Add(scope);
        return rm;
    }

    private void Run(string scraper, bool enabled, Action scrape)
    {
        if (!enabled)
        {
            return;
        }

        try
        {
            scrape();
            if (_failing.Remove(scraper))
            {
                LogRecovered(_logger, scraper);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or OverflowException)
        {
            AgentMetrics.HostScrapeErrors.WithLabels(scraper).Inc();
            if (_failing.Add(scraper))
            {
                LogScraperFailed(_logger, scraper, ex.Message);
            }
        }
    }

    private string ProcFile(string name) => Path.Combine(_proc, name);

    /// <summary>Boot time from /proc/stat's btime, the start of every host counter.</summary>
    private ulong BootTimeNanos(string stat)
    {
        foreach (var line in stat.Split('\n'))
        {
            if (line.StartsWith("btime ", StringComparison.Ordinal))
            {
                return ulong.Parse(line.AsSpan(6).Trim(), CultureInfo.InvariantCulture) * 1_000_000_000;
            }
        }

        return 0;
    }

    private void ScrapeCpu(HostMetricSet set, CpuScraperOptions options)
    {
        var stat = File.ReadAllText(ProcFile("stat"));
        set.Start = BootTimeNanos(stat);
        var current = new Dictionary<string, double[]>(StringComparer.Ordinal);
        var count = 0;
        foreach (var line in stat.Split('\n'))
        {
            // Per-CPU lines only ("cpu0 ..."); the "cpu " total line is their sum.
            if (!line.StartsWith("cpu", StringComparison.Ordinal) || line.Length < 4 || !char.IsAsciiDigit(line[3]))
            {
                continue;
            }

            var fields = Fields(line);
            var cpu = fields[0];
            var seconds = new double[CpuStates.Length];
            for (var i = 0; i < seconds.Length && i + 1 < fields.Length; i++)
            {
                seconds[i] = ulong.Parse(fields[i + 1], CultureInfo.InvariantCulture) / TicksPerSecond;
                set.Counter("system.cpu.time", "s", "Seconds each logical CPU spent in each state.", seconds[i], ("cpu", cpu), ("state", CpuStates[i]));
            }

            current[cpu] = seconds;
            count++;
        }

        set.Gauge("system.cpu.logical.count", "{cpu}", "Logical CPUs.", count);
        if (options.Utilization && _previousCpu is not null)
        {
            foreach (var (cpu, now) in current)
            {
                if (!_previousCpu.TryGetValue(cpu, out var before))
                {
                    continue;
                }

                double total = 0;
                for (var i = 0; i < now.Length; i++)
                {
                    total += now[i] - before[i];
                }

                if (total <= 0)
                {
                    continue;
                }

                for (var i = 0; i < now.Length; i++)
                {
                    set.Gauge("system.cpu.utilization", "1", "Share of time each logical CPU spent in each state since the previous scrape.", (now[i] - before[i]) / total, ("cpu", cpu), ("state", CpuStates[i]));
                }
            }
        }

        _previousCpu = current;
    }

    private void ScrapeMemory(HostMetricSet set, MemoryScraperOptions options)
    {
        var info = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(ProcFile("meminfo")))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }

            var value = line.AsSpan(colon + 1).Trim();
            var kb = value.EndsWith(" kB", StringComparison.Ordinal);
            if (long.TryParse(kb ? value[..^3] : value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
            {
                info[line[..colon]] = kb ? n * 1024 : n;
            }
        }

        var total = info.GetValueOrDefault("MemTotal");
        var free = info.GetValueOrDefault("MemFree");
        var buffers = info.GetValueOrDefault("Buffers");
        var reclaimable = info.GetValueOrDefault("SReclaimable");

        // As the collector does: page cache includes reclaimable slab, and used + free + buffered + cached = total;
        // the slab states overlap the others and are reported for detail.
        var cached = info.GetValueOrDefault("Cached") + reclaimable;
        var used = total - free - buffers - cached;
        (string State, long Bytes)[] states =
        [
            ("used", used), ("free", free), ("buffered", buffers), ("cached", cached),
            ("slab_reclaimable", reclaimable), ("slab_unreclaimable", info.GetValueOrDefault("SUnreclaim")),
        ];
        foreach (var (state, bytes) in states)
        {
            set.UpDown("system.memory.usage", "By", "Bytes of memory in use, by state.", bytes, ("state", state));
        }

        set.UpDown("system.memory.limit", "By", "Total memory of the host.", total);
        if (options.Utilization && total > 0)
        {
            foreach (var (state, bytes) in states)
            {
                set.Gauge("system.memory.utilization", "1", "Share of memory in each state.", (double)bytes / total, ("state", state));
            }
        }
    }

    private void ScrapeDisks(HostMetricSet set)
    {
        EnsureStart(set);
        foreach (var line in File.ReadLines(ProcFile("diskstats")))
        {
            var f = Fields(line);
            if (f.Length < 14 || Excluded(_diskExcludes, f[2]))
            {
                continue;
            }

            var device = ("device", (string?)f[2]);
            double V(int i) => ulong.Parse(f[i], CultureInfo.InvariantCulture);
            set.Counter("system.disk.io", "By", "Bytes read from and written to the disk.", V(5) * SectorBytes, device, ("direction", "read"));
            set.Counter("system.disk.io", "By", "Bytes read from and written to the disk.", V(9) * SectorBytes, device, ("direction", "write"));
            set.Counter("system.disk.operations", "{operation}", "Read and write operations completed.", V(3), device, ("direction", "read"));
            set.Counter("system.disk.operations", "{operation}", "Read and write operations completed.", V(7), device, ("direction", "write"));
            set.Counter("system.disk.merged", "{operation}", "Adjacent operations merged by the kernel.", V(4), device, ("direction", "read"));
            set.Counter("system.disk.merged", "{operation}", "Adjacent operations merged by the kernel.", V(8), device, ("direction", "write"));
            set.Counter("system.disk.operation_time", "s", "Time spent on reads and writes (summed over concurrent operations).", V(6) / 1000, device, ("direction", "read"));
            set.Counter("system.disk.operation_time", "s", "Time spent on reads and writes (summed over concurrent operations).", V(10) / 1000, device, ("direction", "write"));
            set.UpDown("system.disk.pending_operations", "{operation}", "Operations in progress.", (long)V(11), device);
            set.Counter("system.disk.io_time", "s", "Time the disk was busy.", V(12) / 1000, device);
            set.Counter("system.disk.weighted_io_time", "s", "Busy time weighted by the operations in progress.", V(13) / 1000, device);
        }
    }

    private void ScrapeNetwork(HostMetricSet set, NetworkScraperOptions options)
    {
        EnsureStart(set);
        foreach (var line in File.ReadLines(ProcFile("net/dev")))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                continue;
            }

            var name = line[..colon].Trim();
            if (Excluded(_networkExcludes, name))
            {
                continue;
            }

            var f = Fields(line[(colon + 1)..]);
            var device = ("device", (string?)name);
            double V(int i) => ulong.Parse(f[i], CultureInfo.InvariantCulture);
            set.Counter("system.network.io", "By", "Bytes received and transmitted.", V(0), device, ("direction", "receive"));
            set.Counter("system.network.io", "By", "Bytes received and transmitted.", V(8), device, ("direction", "transmit"));
            set.Counter("system.network.packets", "{packet}", "Packets received and transmitted.", V(1), device, ("direction", "receive"));
            set.Counter("system.network.packets", "{packet}", "Packets received and transmitted.", V(9), device, ("direction", "transmit"));
            set.Counter("system.network.errors", "{error}", "Receive and transmit errors.", V(2), device, ("direction", "receive"));
            set.Counter("system.network.errors", "{error}", "Receive and transmit errors.", V(10), device, ("direction", "transmit"));
            set.Counter("system.network.dropped", "{packet}", "Packets dropped.", V(3), device, ("direction", "receive"));
            set.Counter("system.network.dropped", "{packet}", "Packets dropped.", V(11), device, ("direction", "transmit"));
        }

        if (options.Connections)
        {
            var counts = new long[TcpStates.Length];
            foreach (var file in (ReadOnlySpan<string>)["net/tcp", "net/tcp6"])
            {
                var path = ProcFile(file);
                if (!File.Exists(path))
                {
                    continue;
                }

                foreach (var line in File.ReadLines(path))
                {
                    var f = Fields(line);
                    if (f.Length > 3 && int.TryParse(f[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var state) && state > 0 && state < counts.Length)
                    {
                        counts[state]++;
                    }
                }
            }

            for (var i = 1; i < counts.Length; i++)
            {
                set.UpDown("system.network.connections", "{connection}", "TCP connections by state.", counts[i], ("protocol", "tcp"), ("state", TcpStates[i]));
            }
        }
    }

    private void ScrapeFilesystems(HostMetricSet set, FilesystemScraperOptions options)
    {
        var mounts = new Dictionary<string, (string Device, string Type, string Mode)>(StringComparer.Ordinal);
        var order = new List<string>();
        var mountsFile = _options.RootPath.Length > 0 ? ProcFile("1/mounts") : ProcFile("mounts");
        foreach (var line in File.ReadLines(mountsFile))
        {
            var f = Fields(line);
            if (f.Length < 4 || options.ExcludeFsTypes.Contains(f[2]))
            {
                continue;
            }

            var mountPoint = UnescapeMount(f[1]);
            if (Excluded(_mountExcludes, mountPoint))
            {
                continue;
            }

            // A path mounted twice shows the last mount; one series per mount point.
            if (!mounts.ContainsKey(mountPoint))
            {
                order.Add(mountPoint);
            }

            mounts[mountPoint] = (UnescapeMount(f[0]), f[2], f[3].StartsWith("ro", StringComparison.Ordinal) && (f[3].Length == 2 || f[3][2] == ',') ? "ro" : "rw");
        }

        foreach (var mountPoint in order)
        {
            var (device, type, mode) = mounts[mountPoint];
            long total, available, free;
            try
            {
                var drive = new DriveInfo(_options.RootPath.Length > 0 ? Path.Join(_options.RootPath, mountPoint) : mountPoint);
                total = drive.TotalSize;
                available = drive.AvailableFreeSpace;
                free = drive.TotalFreeSpace;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
            {
                continue; // A mount we may not stat (another namespace, a stale NFS handle): leave it out.
            }

            if (total <= 0)
            {
                continue;
            }

            (string, string?)[] attrs(string state) => [("device", device), ("mountpoint", mountPoint), ("type", type), ("mode", mode), ("state", state)];
            var used = total - free;
            set.UpDown("system.filesystem.usage", "By", "Filesystem space by state (reserved: free only to root).", used, attrs("used"));
            set.UpDown("system.filesystem.usage", "By", "Filesystem space by state (reserved: free only to root).", available, attrs("free"));
            set.UpDown("system.filesystem.usage", "By", "Filesystem space by state (reserved: free only to root).", free - available, attrs("reserved"));
            if (used + available > 0)
            {
                set.Gauge("system.filesystem.utilization", "1", "Share of the space available to users that is used.", (double)used / (used + available),
                    ("device", device), ("mountpoint", mountPoint), ("type", type), ("mode", mode));
            }
        }
    }

    private void ScrapeLoad(HostMetricSet set)
    {
        var f = Fields(File.ReadAllText(ProcFile("loadavg")));
        set.Gauge("system.cpu.load_average.1m", "{thread}", "Load average over 1 minute.", double.Parse(f[0], CultureInfo.InvariantCulture));
        set.Gauge("system.cpu.load_average.5m", "{thread}", "Load average over 5 minutes.", double.Parse(f[1], CultureInfo.InvariantCulture));
        set.Gauge("system.cpu.load_average.15m", "{thread}", "Load average over 15 minutes.", double.Parse(f[2], CultureInfo.InvariantCulture));
    }

    private void EnsureStart(HostMetricSet set)
    {
        if (set.Start == 0)
        {
            set.Start = BootTimeNanos(File.ReadAllText(ProcFile("stat")));
        }
    }

    private static bool Excluded(Regex[] excludes, string name)
    {
        foreach (var r in excludes)
        {
            if (r.IsMatch(name))
            {
                return true;
            }
        }

        return false;
    }

    private static string[] Fields(string line) => line.Split((char[]?)[' ', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>/proc/mounts writes space, tab, newline and backslash as octal escapes (\040).</summary>
    private static string UnescapeMount(string text)
    {
        if (!text.Contains('\\', StringComparison.Ordinal))
        {
            return text;
        }

        var sb = new System.Text.StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 3 < text.Length && IsOctal(text[i + 1]) && IsOctal(text[i + 2]) && IsOctal(text[i + 3]))
            {
                sb.Append((char)(((text[i + 1] - '0') * 64) + ((text[i + 2] - '0') * 8) + (text[i + 3] - '0')));
                i += 3;
            }
            else
            {
                sb.Append(text[i]);
            }
        }

        return sb.ToString();

        static bool IsOctal(char c) => c is >= '0' and <= '7';
    }

    [LoggerMessage(EventId = 3301, Level = LogLevel.Warning, Message = "hostmetrics: the {Scraper} scraper could not read its source: {Reason}")]
    private static partial void LogScraperFailed(ILogger logger, string scraper, string reason);

    [LoggerMessage(EventId = 3302, Level = LogLevel.Information, Message = "hostmetrics: the {Scraper} scraper reads its source again.")]
    private static partial void LogRecovered(ILogger logger, string scraper);
}

using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Agent.Configuration;
using PgOtelGateway.Agent.HostMetrics;
using PgOtelGateway.Shared.Configuration;
using Xunit;

namespace PgOtelGateway.Agent.Tests.HostMetrics;

/// <summary>The hostmetrics scrapers against this machine's /proc, read again by the test for comparison.</summary>
public sealed class HostMetricsScraperTests
{
    private static HostMetricsReceiverOptions Options(string scrapers = "cpu:\n      memory:\n      disk:\n      network:\n      filesystem:\n      load:") =>
        ConfigLoader.Load($"""
            receivers:
              hostmetrics:
                collection_interval: 30s
                scrapers:
                  {scrapers}
            exporters:
              debug:
            service:
              pipelines:
                metrics:
                  receivers: [hostmetrics]
                  exporters: [debug]
            """, AgentComponents.CreateRegistry()).Receivers["hostmetrics"].OptionsAs<HostMetricsReceiverOptions>();

    private static ResourceMetrics Scrape(HostMetricsScraper scraper) => scraper.Scrape(DateTimeOffset.UtcNow);

    private static Metric Metric(ResourceMetrics rm, string name) => rm.ScopeMetrics[0].Metrics.Single(m => m.Name == name);

    private static string Attr(NumberDataPoint p, string key) => p.Attributes.Single(a => a.Key == key).Value.StringValue;

    private static double Value(NumberDataPoint p) => p.ValueCase == NumberDataPoint.ValueOneofCase.AsInt ? p.AsInt : p.AsDouble;

    private static double Point(ResourceMetrics rm, string metric, params (string Key, string Value)[] match)
    {
        var m = Metric(rm, metric);
        var points = m.DataCase == OpenTelemetry.Proto.Metrics.V1.Metric.DataOneofCase.Sum ? m.Sum.DataPoints : m.Gauge.DataPoints;
        return Value(points.Single(p => match.All(kv => Attr(p, kv.Key) == kv.Value)));
    }

    private static string[] Fields(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void Scrape_Cpu_TimeLiesBetweenTwoReadsOfProcStat()
    {
        var scraper = new HostMetricsScraper(Options("cpu:"), NullLogger.Instance);
        var before = File.ReadAllLines("/proc/stat").First(l => l.StartsWith("cpu0 ", StringComparison.Ordinal));
        var rm = Scrape(scraper);
        var after = File.ReadAllLines("/proc/stat").First(l => l.StartsWith("cpu0 ", StringComparison.Ordinal));

        var time = Metric(rm, "system.cpu.time");
        Assert.Equal("s", time.Unit);
        Assert.True(time.Sum.IsMonotonic);
        Assert.All(time.Sum.DataPoints, p => Assert.True(p.StartTimeUnixNano > 0 && p.StartTimeUnixNano < p.TimeUnixNano));
        string[] states = ["user", "nice", "system", "idle", "wait", "interrupt", "softirq", "steal"];
        for (var i = 0; i < states.Length; i++)
        {
            var low = double.Parse(Fields(before)[i + 1], CultureInfo.InvariantCulture) / 100;
            var high = double.Parse(Fields(after)[i + 1], CultureInfo.InvariantCulture) / 100;
            var value = Point(rm, "system.cpu.time", ("cpu", "cpu0"), ("state", states[i]));
            Assert.InRange(value, low, high);
        }

        Assert.Equal(Environment.ProcessorCount, Point(rm, "system.cpu.logical.count"));
        Assert.Equal(8 * Environment.ProcessorCount, time.Sum.DataPoints.Count);

        // Utilization needs two scrapes; its states add up to one per CPU.
        Thread.Sleep(200);
        var second = Scrape(scraper);
        var cpu0 = Metric(second, "system.cpu.utilization").Gauge.DataPoints.Where(p => Attr(p, "cpu") == "cpu0").Sum(p => p.AsDouble);
        Assert.InRange(cpu0, 0.999, 1.001);
    }

    [Fact]
    public void Scrape_Memory_StatesAddUpToMemTotal()
    {
        var rm = Scrape(new HostMetricsScraper(Options("memory:"), NullLogger.Instance));
        var total = long.Parse(Fields(File.ReadAllLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal)))[1], CultureInfo.InvariantCulture) * 1024;
        var usage = Metric(rm, "system.memory.usage");
        Assert.Equal("By", usage.Unit);
        Assert.False(usage.Sum.IsMonotonic);
        var sum = 0L;
        foreach (var state in new[] { "used", "free", "buffered", "cached" })
        {
            var v = (long)Point(rm, "system.memory.usage", ("state", state));
            Assert.True(v >= 0, state);
            sum += v;
        }

        Assert.Equal(total, sum);
        Assert.Equal(total, (long)Point(rm, "system.memory.limit"));
        Assert.InRange(Point(rm, "system.memory.utilization", ("state", "used")), 0.0001, 1);
    }

    [Fact]
    public void Scrape_Disk_BytesLieBetweenTwoReadsOfDiskstats()
    {
        var device = File.ReadAllLines("/proc/diskstats").Select(Fields).First(f => !f[2].StartsWith("loop", StringComparison.Ordinal) && !f[2].StartsWith("ram", StringComparison.Ordinal));
        var rm = Scrape(new HostMetricsScraper(Options("disk:"), NullLogger.Instance));
        var after = File.ReadAllLines("/proc/diskstats").Select(Fields).First(f => f[2] == device[2]);

        var read = Point(rm, "system.disk.io", ("device", device[2]), ("direction", "read"));
        var written = Point(rm, "system.disk.io", ("device", device[2]), ("direction", "write"));
        Assert.InRange(read, double.Parse(device[5], CultureInfo.InvariantCulture) * 512, double.Parse(after[5], CultureInfo.InvariantCulture) * 512);
        Assert.InRange(written, double.Parse(device[9], CultureInfo.InvariantCulture) * 512, double.Parse(after[9], CultureInfo.InvariantCulture) * 512);
        Assert.InRange(Point(rm, "system.disk.operations", ("device", device[2]), ("direction", "read")), double.Parse(device[3], CultureInfo.InvariantCulture), double.Parse(after[3], CultureInfo.InvariantCulture));
        Assert.Equal("By", Metric(rm, "system.disk.io").Unit);
        Assert.True(Metric(rm, "system.disk.io").Sum.IsMonotonic);
        Assert.DoesNotContain(Metric(rm, "system.disk.io").Sum.DataPoints, p => Attr(p, "device").StartsWith("loop", StringComparison.Ordinal));
    }

    [Fact]
    public void Scrape_Network_LoopbackBytesLieBetweenTwoReadsAndGrowWithTraffic()
    {
        static double LoReceived() => double.Parse(Fields(File.ReadAllLines("/proc/net/dev").First(l => l.TrimStart().StartsWith("lo:", StringComparison.Ordinal)).Split(':')[1])[0], CultureInfo.InvariantCulture);
        var scraper = new HostMetricsScraper(Options("network:"), NullLogger.Instance);
        var before = LoReceived();
        var first = Scrape(scraper);
        var after = LoReceived();
        var value = Point(first, "system.network.io", ("device", "lo"), ("direction", "receive"));
        Assert.InRange(value, before, after);

        // 64 KiB over loopback shows up in the next scrape.
        using (var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            listener.Start();
            using var client = new System.Net.Sockets.TcpClient();
            client.Connect((System.Net.IPEndPoint)listener.LocalEndpoint);
            using var server = listener.AcceptTcpClient();
            client.GetStream().Write(new byte[65536]);
            var buffer = new byte[65536];
            var got = 0;
            while (got < buffer.Length)
            {
                got += server.GetStream().Read(buffer, got, buffer.Length - got);
            }

            var connections = Scrape(scraper);
            Assert.True(Point(connections, "system.network.connections", ("protocol", "tcp"), ("state", "ESTABLISHED")) >= 2);
            Assert.True(Point(connections, "system.network.connections", ("protocol", "tcp"), ("state", "LISTEN")) >= 1);
        }

        var second = Scrape(scraper);
        Assert.True(Point(second, "system.network.io", ("device", "lo"), ("direction", "receive")) >= value + 65536);
        Assert.True(Metric(second, "system.network.io").Sum.IsMonotonic);
    }

    [Fact]
    public void Scrape_FilesystemAndLoad_ReportTheRootFilesystemAndLoadAverages()
    {
        var rm = Scrape(new HostMetricsScraper(Options("filesystem:\n      load:"), NullLogger.Instance));
        var root = new DriveInfo("/");
        var used = Point(rm, "system.filesystem.usage", ("mountpoint", "/"), ("state", "used"));
        var free = Point(rm, "system.filesystem.usage", ("mountpoint", "/"), ("state", "free"));
        var reserved = Point(rm, "system.filesystem.usage", ("mountpoint", "/"), ("state", "reserved"));
        Assert.Equal(root.TotalSize, used + free + reserved);
        Assert.True(used > 0);
        Assert.DoesNotContain(Metric(rm, "system.filesystem.usage").Sum.DataPoints, p => Attr(p, "type") is "proc" or "sysfs" or "cgroup");
        var load = double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[2], CultureInfo.InvariantCulture);
        Assert.InRange(Point(rm, "system.cpu.load_average.15m"), load - 0.5, load + 0.5);
    }

    [Fact]
    public void Scrape_Resource_NamesTheHost()
    {
        var rm = Scrape(new HostMetricsScraper(Options("load:"), NullLogger.Instance));
        Assert.Equal("hostmetrics", rm.Resource.Attributes.Single(a => a.Key == "service.name").Value.StringValue);
        Assert.Equal(Environment.MachineName.ToLowerInvariant(), rm.Resource.Attributes.Single(a => a.Key == "host.name").Value.StringValue);
    }

    [Fact]
    public void Load_NoScraper_IsAConfigError()
    {
        var ex = Assert.Throws<ConfigException>(() => Options("{}").Scrapers);
        Assert.Contains("scrapers must name at least one", ex.Message, StringComparison.Ordinal);
    }
}

using System.Text.RegularExpressions;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Agent.HostMetrics;

/// <summary>
/// <c>receivers.hostmetrics</c>: the database host's CPU, memory, disks, network, filesystems and load, read from
/// <c>/proc</c> (and statfs). A scraper runs when its key is present, even empty (<c>cpu:</c>).
/// </summary>
internal sealed class HostMetricsReceiverOptions : IValidatableOptions
{
    public TimeSpan CollectionInterval { get; set; } = TimeSpan.FromMinutes(1);

    public TimeSpan InitialDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Where the host's root is mounted when the agent runs in a container (e.g. <c>/hostfs</c>); <c>/proc</c> is read below it.</summary>
    public string RootPath { get; set; } = "";

    public HostScrapersOptions Scrapers { get; set; } = new();

    /// <summary>Resource attributes (service.name is <c>hostmetrics</c>, service.instance.id the host name).</summary>
    public PgResourceOptions Resource { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        if (CollectionInterval < TimeSpan.FromSeconds(1))
        {
            yield return "collection_interval must be at least 1s";
        }

        if (Scrapers.Cpu is null && Scrapers.Memory is null && Scrapers.Disk is null && Scrapers.Network is null && Scrapers.Filesystem is null && Scrapers.Load is null)
        {
            yield return "scrapers must name at least one of cpu, memory, disk, network, filesystem, load";
        }

        foreach (var (key, patterns) in new[] { ("disk", Scrapers.Disk?.ExcludeDevices), ("network", Scrapers.Network?.ExcludeDevices), ("filesystem", Scrapers.Filesystem?.ExcludeMountPoints) })
        {
            foreach (var pattern in patterns ?? [])
            {
                string? problem = null;
                try
                {
                    _ = new Regex(pattern, RegexOptions.CultureInvariant);
                }
                catch (ArgumentException ex)
                {
                    problem = $"scrapers.{key}: '{pattern}' is not a valid regular expression: {ex.Message}";
                }

                if (problem is not null)
                {
                    yield return problem;
                }
            }
        }
    }
}

internal sealed class HostScrapersOptions
{
    public CpuScraperOptions? Cpu { get; set; }

    public MemoryScraperOptions? Memory { get; set; }

    public DiskScraperOptions? Disk { get; set; }

    public NetworkScraperOptions? Network { get; set; }

    public FilesystemScraperOptions? Filesystem { get; set; }

    public LoadScraperOptions? Load { get; set; }
}

internal sealed class CpuScraperOptions
{
    /// <summary>Also report <c>system.cpu.utilization</c> (share of each state since the previous scrape).</summary>
    public bool Utilization { get; set; } = true;
}

internal sealed class MemoryScraperOptions
{
    /// <summary>Also report <c>system.memory.utilization</c>.</summary>
    public bool Utilization { get; set; } = true;
}

internal sealed class DiskScraperOptions
{
    /// <summary>Devices whose name matches any of these (anchored) regexes are left out.</summary>
    public List<string> ExcludeDevices { get; set; } = ["(ram|loop|fd|zram)\\d+"];
}

internal sealed class NetworkScraperOptions
{
    /// <summary>Interfaces whose name matches any of these (anchored) regexes are left out.</summary>
    public List<string> ExcludeDevices { get; set; } = [];

    /// <summary>Also report <c>system.network.connections{protocol=tcp,state}</c> from /proc/net/tcp and tcp6.</summary>
    public bool Connections { get; set; } = true;
}

internal sealed class FilesystemScraperOptions
{
    /// <summary>Filesystem types left out (pseudo filesystems by default).</summary>
    public List<string> ExcludeFsTypes { get; set; } =
    [
        "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs", "securityfs", "pstore", "bpf",
        "configfs", "fusectl", "hugetlbfs", "autofs", "binfmt_misc", "nsfs", "rpc_pipefs", "selinuxfs", "devtmpfs", "squashfs",
    ];

    /// <summary>Mount points whose path matches any of these (anchored) regexes are left out.</summary>
    public List<string> ExcludeMountPoints { get; set; } = [];
}

internal sealed class LoadScraperOptions
{
}

using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Shared.Processing;

/// <summary><c>processors.memory_limiter</c> (the collector's options).</summary>
public sealed class MemoryLimiterOptions : IValidatableOptions
{
    /// <summary>How often memory is measured.</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Hard limit in MiB (wins over <see cref="LimitPercentage"/>).</summary>
    public long LimitMib { get; set; }

    /// <summary>Headroom below the hard limit where refusing starts, in MiB.</summary>
    public long SpikeLimitMib { get; set; }

    /// <summary>Hard limit as a percentage of the container's (cgroup) or machine's memory.</summary>
    public int LimitPercentage { get; set; }

    /// <summary>Headroom as a percentage of the same total.</summary>
    public int SpikeLimitPercentage { get; set; }

    public IEnumerable<string> Validate()
    {
        if (LimitMib <= 0 && LimitPercentage <= 0)
        {
            yield return "set limit_mib or limit_percentage";
        }

        if (LimitPercentage is < 0 or > 100 || SpikeLimitPercentage is < 0 or > 100)
        {
            yield return "limit_percentage and spike_limit_percentage are between 0 and 100";
        }

        if (CheckInterval <= TimeSpan.Zero)
        {
            yield return "check_interval must be positive";
        }
    }
}

/// <summary>
/// Refuses data (UNAVAILABLE / 503 with a retry delay, so nothing is lost) while the process uses more memory
/// than the soft limit (hard limit minus spike), and forces a garbage collection above the hard limit. Memory
/// is measured on a timer, never per request.
/// </summary>
public sealed partial class MemoryLimiterProcessor : IMetricsConsumer, IDisposable
{
    private readonly string _id;
    private readonly IMetricsConsumer _next;
    private readonly ILogger _logger;
    private readonly long _hardBytes;
    private readonly long _softBytes;
    private readonly TimeSpan _retryAfter;
    private readonly ITimer _timer;
    private volatile bool _refusing;

    public MemoryLimiterProcessor(string id, MemoryLimiterOptions options, IMetricsConsumer next, ILogger<MemoryLimiterProcessor> logger, TimeProvider time)
    {
        _id = id;
        _next = next;
        _logger = logger;
        (_hardBytes, _softBytes) = Limits(options, TotalMemoryBytes());
        _retryAfter = options.CheckInterval * 2;
        Check();
        _timer = time.CreateTimer(_ => Check(), null, options.CheckInterval, options.CheckInterval);
    }

    /// <summary>Whether data is being refused now.</summary>
    public bool Refusing => _refusing;

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        if (_refusing)
        {
            throw new PipelineRefusedException(RefusalReason.MemoryLimit,
                $"memory_limiter '{_id}': memory use is above the soft limit of {_softBytes / (1024 * 1024)} MiB", _retryAfter);
        }

        return _next.ConsumeAsync(request, cancellationToken);
    }

    private void Check()
    {
        var used = Environment.WorkingSet;
        if (used > _hardBytes)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            used = Environment.WorkingSet;
        }

        var refusing = used > _softBytes;
        if (refusing != _refusing)
        {
            _refusing = refusing;
            if (refusing)
            {
                LogRefusing(_logger, _id, used / (1024 * 1024), _softBytes / (1024 * 1024));
            }
            else
            {
                LogResumed(_logger, _id, used / (1024 * 1024));
            }
        }
    }

    /// <summary>The hard and soft limits in bytes for a container or machine of <paramref name="totalBytes"/>.</summary>
    internal static (long Hard, long Soft) Limits(MemoryLimiterOptions options, long totalBytes)
    {
        var hard = options.LimitMib > 0 ? options.LimitMib * 1024 * 1024 : totalBytes * options.LimitPercentage / 100;
        var spike = options.SpikeLimitMib > 0 ? options.SpikeLimitMib * 1024 * 1024
            : options.SpikeLimitPercentage > 0 ? totalBytes * options.SpikeLimitPercentage / 100 : hard / 5;
        return (hard, Math.Max(0, hard - spike));
    }

    /// <summary>The container's memory limit (cgroup v2 or v1), else what the runtime says the machine has.</summary>
    internal static long TotalMemoryBytes()
    {
        foreach (var path in (string[])["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
        {
            try
            {
                var text = File.ReadAllText(path).Trim();
                if (long.TryParse(text, out var bytes) && bytes > 0 && bytes < (1L << 60))
                {
                    return bytes;
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    public void Dispose() => _timer.Dispose();

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Memory limiter {Processor} is refusing data: {UsedMiB} MiB in use, soft limit {SoftMiB} MiB.")]
    private static partial void LogRefusing(ILogger logger, string processor, long usedMiB, long softMiB);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Memory limiter {Processor} accepts data again: {UsedMiB} MiB in use.")]
    private static partial void LogResumed(ILogger logger, string processor, long usedMiB);
}

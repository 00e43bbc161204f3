using System.Reflection;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Admin;

/// <summary>
/// <see cref="IPipelineStatus"/> from the loaded configuration and a readiness probe: the pipelines never
/// change after start, so only uptime and readiness are read live.
/// </summary>
internal sealed class ConfigPipelineStatus : IPipelineStatus
{
    private readonly string _id;
    private readonly Func<bool> _ready;
    private readonly TimeProvider _time;
    private readonly DateTimeOffset _startedAt;
    private readonly IReadOnlyList<PipelineSummary> _pipelines;

    /// <summary>Creates the status of gateway <paramref name="gatewayId"/>, started now.</summary>
    public ConfigPipelineStatus(string gatewayId, PipelineConfig config, Func<bool> ready, TimeProvider? time = null)
    {
        _id = gatewayId;
        _ready = ready;
        _time = time ?? TimeProvider.System;
        _startedAt = _time.GetUtcNow();
        var pipelines = new List<PipelineSummary>(config.Service.Pipelines.Count);
        foreach (var (id, pipeline) in config.Service.Pipelines.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            pipelines.Add(new PipelineSummary(id, [.. pipeline.Receivers], [.. pipeline.Processors], [.. pipeline.Exporters]));
        }

        _pipelines = pipelines;
    }

    /// <summary>The build version of the gateway (informational version without the source hash).</summary>
    public static string Version { get; } = ReadVersion();

    /// <inheritdoc />
    public PipelineStatusSnapshot Snapshot()
    {
        var now = _time.GetUtcNow();
        return new PipelineStatusSnapshot(_id, Version, _startedAt, now - _startedAt, _ready(), _pipelines);
    }

    private static string ReadVersion()
    {
        var assembly = typeof(ConfigPipelineStatus).Assembly;
        var informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        if (!string.IsNullOrEmpty(informational))
        {
            var plus = informational.IndexOf('+', StringComparison.Ordinal);
            return plus < 0 ? informational : informational[..plus];
        }

        return assembly.GetName().Version?.ToString(3) ?? "0.0.0";
    }
}

using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Admin;

/// <summary>
/// Everything the admin API reads. A component that is not configured stays null or empty, and its endpoint
/// answers <c>enabled: false</c> rather than an error.
/// </summary>
internal sealed class AdminSources
{
    /// <summary>Id, version, uptime, readiness and pipelines.</summary>
    public required IPipelineStatus Pipeline { get; init; }

    /// <summary>The ring; null when <c>gateway.ring</c> is not configured.</summary>
    public IRingStatus? Ring { get; init; }

    /// <summary>Every <c>ha_tracker</c> processor.</summary>
    public IReadOnlyList<IHaStatus> Ha { get; init; } = [];

    /// <summary>Every <c>dedupe</c> processor.</summary>
    public IReadOnlyList<IDedupStatus> Dedup { get; init; } = [];

    /// <summary>Every running exporter.</summary>
    public IReadOnlyList<IExporterStatus> Exporters { get; init; } = [];

    /// <summary>The PostgreSQL instances seen; null when no tracker runs.</summary>
    public InstanceTracker? Instances { get; init; }

    /// <summary>Where the configuration came from (file path or <c>embedded defaults</c>).</summary>
    public string ConfigSource { get; init; } = "";

    /// <summary>The effective configuration with secrets redacted (<see cref="PipelineConfig.RedactedYaml"/>).</summary>
    public string RedactedConfigYaml { get; init; } = "";

    /// <summary>Removes configured secrets from every string the API sends.</summary>
    public SecretScrubber Scrubber { get; init; } = SecretScrubber.None;

    /// <summary>
    /// The sources for a loaded configuration: its redacted YAML, a scrubber that knows its secrets, and the
    /// component views that exist (leave the others null).
    /// </summary>
    public static AdminSources For(
        PipelineConfig config,
        IPipelineStatus pipeline,
        IRingStatus? ring = null,
        IReadOnlyList<IHaStatus>? ha = null,
        IReadOnlyList<IDedupStatus>? dedup = null,
        IReadOnlyList<IExporterStatus>? exporters = null,
        InstanceTracker? instances = null) => new()
        {
            Pipeline = pipeline,
            Ring = ring,
            Ha = ha ?? [],
            Dedup = dedup ?? [],
            Exporters = exporters ?? [],
            Instances = instances,
            ConfigSource = config.Source,
            RedactedConfigYaml = config.RedactedYaml,
            Scrubber = SecretScrubber.FromConfig(config),
        };
}

namespace PgOtelGateway.Shared.Translation;

/// <summary>How OTLP data becomes Prometheus series.</summary>
public sealed class TranslationOptions
{
    /// <summary>Copy every resource attribute onto every series (the collector's resource_to_telemetry_conversion).</summary>
    public bool ResourceToTelemetry { get; init; }

    /// <summary>Copy just these resource attributes onto every series (when <see cref="ResourceToTelemetry"/> is off).</summary>
    public IReadOnlyList<string> CopyResourceAttributes { get; init; } = [];

    /// <summary>Emit one <c>target_info</c> series per resource carrying its attributes.</summary>
    public bool TargetInfo { get; init; } = true;

    /// <summary>Labels added to every series unless the series already has them.</summary>
    public IReadOnlyDictionary<string, string> ExternalLabels { get; init; } = new Dictionary<string, string>();
}

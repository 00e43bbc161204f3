namespace PgOtelGateway.Shared.Configuration;

/// <summary>One configured component: <c>otlp/agents</c> has type <c>otlp</c> and name <c>agents</c>.</summary>
public sealed record ComponentConfig(string Id, string Type, string Name, object Options, int Line)
{
    /// <summary>The options, typed.</summary>
    public T OptionsAs<T>() where T : class =>
        Options as T ?? throw new InvalidOperationException($"component '{Id}' has options of type {Options.GetType().Name}, not {typeof(T).Name}");
}

/// <summary>A metrics pipeline: the components it runs, in order.</summary>
public sealed class PipelineOptions
{
    /// <summary>Receiver ids feeding this pipeline.</summary>
    public List<string> Receivers { get; set; } = [];

    /// <summary>Processor ids, applied in the order given.</summary>
    public List<string> Processors { get; set; } = [];

    /// <summary>Exporter ids; each receives every batch.</summary>
    public List<string> Exporters { get; set; } = [];
}

/// <summary><c>service.telemetry.logs</c>.</summary>
public sealed class LogsTelemetryOptions
{
    /// <summary>Minimum level: debug, info, warn, error.</summary>
    public string Level { get; set; } = "info";

    /// <summary><c>json</c> (structured, the default) or <c>console</c>.</summary>
    public string Encoding { get; set; } = "json";

    /// <summary>Fields added to every log line.</summary>
    public Dictionary<string, string> InitialFields { get; set; } = [];
}

/// <summary><c>service.telemetry.metrics</c>: where the process's own Prometheus metrics are served.</summary>
public sealed class MetricsTelemetryOptions
{
    /// <summary>Listen address of <c>/metrics</c>; empty turns it off.</summary>
    public string Address { get; set; } = "0.0.0.0:8888";

    /// <summary>Accepted for collector compatibility: none, basic, normal, detailed.</summary>
    public string Level { get; set; } = "detailed";
}

/// <summary><c>service.telemetry</c>.</summary>
public sealed class TelemetryOptions
{
    /// <summary>Logging.</summary>
    public LogsTelemetryOptions Logs { get; set; } = new();

    /// <summary>Self-metrics.</summary>
    public MetricsTelemetryOptions Metrics { get; set; } = new();
}

/// <summary>The <c>service:</c> section.</summary>
public sealed class ServiceOptions
{
    /// <summary>Extension ids to start.</summary>
    public List<string> Extensions { get; set; } = [];

    /// <summary>Pipelines by id (<c>metrics</c> or <c>metrics/NAME</c>).</summary>
    public Dictionary<string, PipelineOptions> Pipelines { get; set; } = [];

    /// <summary>The process's own logs and metrics.</summary>
    public TelemetryOptions Telemetry { get; set; } = new();
}

/// <summary>A loaded, validated configuration.</summary>
public sealed class PipelineConfig
{
    internal PipelineConfig(
        IReadOnlyDictionary<string, ComponentConfig> receivers,
        IReadOnlyDictionary<string, ComponentConfig> processors,
        IReadOnlyDictionary<string, ComponentConfig> exporters,
        IReadOnlyDictionary<string, ComponentConfig> extensions,
        ServiceOptions service,
        IReadOnlyDictionary<string, object> sections,
        string redactedYaml,
        string source)
    {
        Receivers = receivers;
        Processors = processors;
        Exporters = exporters;
        Extensions = extensions;
        Service = service;
        Sections = sections;
        RedactedYaml = redactedYaml;
        Source = source;
    }

    /// <summary>Receivers by id.</summary>
    public IReadOnlyDictionary<string, ComponentConfig> Receivers { get; }

    /// <summary>Processors by id.</summary>
    public IReadOnlyDictionary<string, ComponentConfig> Processors { get; }

    /// <summary>Exporters by id.</summary>
    public IReadOnlyDictionary<string, ComponentConfig> Exporters { get; }

    /// <summary>Extensions by id.</summary>
    public IReadOnlyDictionary<string, ComponentConfig> Extensions { get; }

    /// <summary>The <c>service:</c> section.</summary>
    public ServiceOptions Service { get; }

    /// <summary>Bound top-level sections by name.</summary>
    public IReadOnlyDictionary<string, object> Sections { get; }

    /// <summary>The effective configuration as YAML, environment expanded, every secret replaced by <c>&lt;redacted&gt;</c>.</summary>
    public string RedactedYaml { get; }

    /// <summary>The file it came from, or <c>embedded defaults</c>.</summary>
    public string Source { get; }

    /// <summary>A top-level section, with its defaults when the file does not have it.</summary>
    public T Section<T>(string name) where T : class, new() =>
        Sections.TryGetValue(name, out var value) ? (T)value : new T();

    /// <summary>The components of one kind.</summary>
    public IReadOnlyDictionary<string, ComponentConfig> Components(ComponentKind kind) => kind switch
    {
        ComponentKind.Receiver => Receivers,
        ComponentKind.Processor => Processors,
        ComponentKind.Exporter => Exporters,
        _ => Extensions,
    };
}

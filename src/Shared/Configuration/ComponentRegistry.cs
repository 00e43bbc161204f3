namespace PgOtelGateway.Shared.Configuration;

/// <summary>The kinds of component a pipeline is made of, as the collector names its config sections.</summary>
public enum ComponentKind
{
    /// <summary>Brings data in (<c>receivers:</c>).</summary>
    Receiver,

    /// <summary>Changes data on its way (<c>processors:</c>).</summary>
    Processor,

    /// <summary>Sends data out (<c>exporters:</c>).</summary>
    Exporter,

    /// <summary>Runs beside the pipelines (<c>extensions:</c>).</summary>
    Extension,
}

/// <summary>
/// What one binary understands: component types per kind, each with its options class, and the extra
/// top-level sections (such as <c>gateway:</c>). Anything not registered is an error naming its line.
/// </summary>
public sealed class ComponentRegistry
{
    private readonly Dictionary<ComponentKind, Dictionary<string, Type>> _components = new()
    {
        [ComponentKind.Receiver] = new(StringComparer.Ordinal),
        [ComponentKind.Processor] = new(StringComparer.Ordinal),
        [ComponentKind.Exporter] = new(StringComparer.Ordinal),
        [ComponentKind.Extension] = new(StringComparer.Ordinal),
    };

    private readonly Dictionary<string, Type> _sections = new(StringComparer.Ordinal);

    /// <summary>Registers a receiver type, e.g. <c>otlp</c>.</summary>
    public ComponentRegistry AddReceiver<TOptions>(string type) where TOptions : class, new() =>
        Add(ComponentKind.Receiver, type, typeof(TOptions));

    /// <summary>Registers a processor type, e.g. <c>batch</c>.</summary>
    public ComponentRegistry AddProcessor<TOptions>(string type) where TOptions : class, new() =>
        Add(ComponentKind.Processor, type, typeof(TOptions));

    /// <summary>Registers an exporter type, e.g. <c>prometheusremotewrite</c>.</summary>
    public ComponentRegistry AddExporter<TOptions>(string type) where TOptions : class, new() =>
        Add(ComponentKind.Exporter, type, typeof(TOptions));

    /// <summary>Registers an extension type, e.g. <c>health_check</c>.</summary>
    public ComponentRegistry AddExtension<TOptions>(string type) where TOptions : class, new() =>
        Add(ComponentKind.Extension, type, typeof(TOptions));

    /// <summary>Registers a top-level section with its options class, e.g. <c>gateway</c>.</summary>
    public ComponentRegistry AddSection<TOptions>(string name) where TOptions : class, new()
    {
        _sections[name] = typeof(TOptions);
        return this;
    }

    /// <summary>Registers a component type of the given kind.</summary>
    public ComponentRegistry Add(ComponentKind kind, string type, Type optionsType)
    {
        _components[kind][type] = optionsType;
        return this;
    }

    internal bool TryGetComponent(ComponentKind kind, string type, out Type optionsType) =>
        _components[kind].TryGetValue(type, out optionsType!);

    internal IEnumerable<string> ComponentTypes(ComponentKind kind) => _components[kind].Keys;

    internal IReadOnlyDictionary<string, Type> Sections => _sections;
}

using System.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace PgOtelGateway.Shared.Configuration;

/// <summary>
/// Loads collector-style YAML (<c>receivers</c> / <c>processors</c> / <c>exporters</c> / <c>extensions</c> /
/// <c>service.pipelines</c> plus the binary's own sections) into typed options, reporting every problem with
/// its key path and line.
/// </summary>
public static class ConfigLoader
{
    /// <summary>The text shown as the source of an embedded default configuration.</summary>
    public const string EmbeddedSource = "embedded defaults";

    private static readonly (string Key, ComponentKind Kind, string Noun)[] ComponentSections =
    [
        ("receivers", ComponentKind.Receiver, "receiver"),
        ("processors", ComponentKind.Processor, "processor"),
        ("exporters", ComponentKind.Exporter, "exporter"),
        ("extensions", ComponentKind.Extension, "extension"),
    ];

    /// <summary>Loads and validates a file.</summary>
    /// <exception cref="ConfigException">The file is missing, unreadable or invalid.</exception>
    public static PipelineConfig LoadFile(string path, ComponentRegistry registry, Func<string, string?>? environment = null)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot read config file '{path}': {ex.Message}", ex);
        }

        return Load(text, registry, path, Path.GetDirectoryName(Path.GetFullPath(path)), environment);
    }

    /// <summary>Loads and validates YAML text.</summary>
    /// <exception cref="ConfigException">The text is invalid.</exception>
    public static PipelineConfig Load(
        string yaml,
        ComponentRegistry registry,
        string source = EmbeddedSource,
        string? baseDirectory = null,
        Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var errors = new List<ConfigError>();
        var secrets = new HashSet<YamlNode>();

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException ex)
        {
            throw new ConfigException([new ConfigError("", (int)ex.Start.Line, "YAML syntax error: " + ex.Message)]);
        }

        YamlMappingNode root;
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            root = new YamlMappingNode();
        }
        else if (stream.Documents[0].RootNode is YamlMappingNode mapping)
        {
            root = mapping;
        }
        else
        {
            throw new ConfigException([new ConfigError("", (int)stream.Documents[0].RootNode.Start.Line, "the top level must be a mapping")]);
        }

        ExpandEnvironment(root, environment, errors);

        var binder = new ConfigBinder(errors, secrets, baseDirectory);
        var components = new Dictionary<ComponentKind, Dictionary<string, ComponentConfig>>();
        foreach (var (_, kind, _) in ComponentSections)
        {
            components[kind] = new Dictionary<string, ComponentConfig>(StringComparer.Ordinal);
        }

        var sections = new Dictionary<string, object>(StringComparer.Ordinal);
        ServiceOptions? service = null;
        YamlNode? serviceNode = null;

        foreach (var (keyNode, valueNode) in root.Children)
        {
            var key = ((YamlScalarNode)keyNode).Value ?? "";
            var componentSection = Array.Find(ComponentSections, s => s.Key == key);
            if (componentSection.Key is not null)
            {
                BindComponents(componentSection.Kind, componentSection.Noun, key, valueNode, registry, binder, components[componentSection.Kind], errors);
            }
            else if (key == "service")
            {
                serviceNode = valueNode;
                service = (ServiceOptions)binder.Bind(typeof(ServiceOptions), valueNode, "service");
            }
            else if (registry.Sections.TryGetValue(key, out var sectionType))
            {
                sections[key] = binder.Bind(sectionType, valueNode, key);
            }
            else
            {
                var known = ComponentSections.Select(s => s.Key).Append("service").Concat(registry.Sections.Keys);
                var suggestion = ConfigBinder.Suggest(key, known);
                errors.Add(new ConfigError(key, (int)keyNode.Start.Line, suggestion is null
                    ? $"unknown top-level section '{key}'"
                    : $"unknown top-level section '{key}' (did you mean '{suggestion}'?)"));
            }
        }

        service ??= new ServiceOptions();
        ValidateService(service, serviceNode, components, errors);

        if (errors.Count > 0)
        {
            errors.Sort((a, b) => a.Line.CompareTo(b.Line));
            throw new ConfigException(errors);
        }

        return new PipelineConfig(
            components[ComponentKind.Receiver],
            components[ComponentKind.Processor],
            components[ComponentKind.Exporter],
            components[ComponentKind.Extension],
            service,
            sections,
            Redact(stream, secrets),
            source);
    }

    private static void BindComponents(
        ComponentKind kind,
        string noun,
        string sectionKey,
        YamlNode node,
        ComponentRegistry registry,
        ConfigBinder binder,
        Dictionary<string, ComponentConfig> into,
        List<ConfigError> errors)
    {
        if (ConfigBinder.IsNull(node))
        {
            return;
        }

        if (node is not YamlMappingNode mapping)
        {
            errors.Add(new ConfigError(sectionKey, (int)node.Start.Line, "expected a mapping of component ids to their settings"));
            return;
        }

        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            var id = ((YamlScalarNode)keyNode).Value ?? "";
            var slash = id.IndexOf('/', StringComparison.Ordinal);
            var type = slash < 0 ? id : id[..slash];
            var name = slash < 0 ? "" : id[(slash + 1)..];
            var path = sectionKey + "." + id;
            if (!registry.TryGetComponent(kind, type, out var optionsType))
            {
                var suggestion = ConfigBinder.Suggest(type, registry.ComponentTypes(kind));
                var known = string.Join(", ", registry.ComponentTypes(kind).Order(StringComparer.Ordinal));
                errors.Add(new ConfigError(path, (int)keyNode.Start.Line,
                    $"unknown {noun} type '{type}'" + (suggestion is null ? "" : $" (did you mean '{suggestion}'?)") +
                    $"; known {noun}s: {known}"));
                continue;
            }

            var options = binder.Bind(optionsType, valueNode, path);
            into[id] = new ComponentConfig(id, type, name, options, (int)keyNode.Start.Line);
        }
    }

    private static void ValidateService(
        ServiceOptions service,
        YamlNode? serviceNode,
        Dictionary<ComponentKind, Dictionary<string, ComponentConfig>> components,
        List<ConfigError> errors)
    {
        var serviceLine = serviceNode is null ? 0 : (int)serviceNode.Start.Line;
        foreach (var (pipelineId, pipeline) in service.Pipelines)
        {
            var path = "service.pipelines." + pipelineId;
            var line = LineOf(serviceNode, "pipelines", pipelineId) ?? serviceLine;
            var signal = pipelineId.Split('/')[0];
            if (signal != "metrics")
            {
                errors.Add(new ConfigError(path, line, $"only metrics pipelines are supported, not '{signal}'"));
                continue;
            }

            if (pipeline.Receivers.Count == 0)
            {
                errors.Add(new ConfigError(path + ".receivers", line, "a pipeline needs at least one receiver"));
            }

            if (pipeline.Exporters.Count == 0)
            {
                errors.Add(new ConfigError(path + ".exporters", line, "a pipeline needs at least one exporter"));
            }

            CheckReferences(pipeline.Receivers, components[ComponentKind.Receiver], path + ".receivers", "receiver", line, errors);
            CheckReferences(pipeline.Processors, components[ComponentKind.Processor], path + ".processors", "processor", line, errors);
            CheckReferences(pipeline.Exporters, components[ComponentKind.Exporter], path + ".exporters", "exporter", line, errors);
        }

        CheckReferences(service.Extensions, components[ComponentKind.Extension], "service.extensions", "extension",
            LineOf(serviceNode, "extensions") ?? serviceLine, errors);
    }

    /// <summary>The line of the key at <paramref name="keys"/> below <paramref name="node"/>, if it is there.</summary>
    private static int? LineOf(YamlNode? node, params string[] keys)
    {
        foreach (var key in keys)
        {
            if (node is not YamlMappingNode mapping)
            {
                return null;
            }

            YamlNode? next = null;
            foreach (var (k, v) in mapping.Children)
            {
                if (k is YamlScalarNode { Value: var name } && name == key)
                {
                    node = k;
                    next = v;
                    break;
                }
            }

            if (next is null)
            {
                return null;
            }

            if (key == keys[^1])
            {
                return (int)node.Start.Line;
            }

            node = next;
        }

        return null;
    }

    private static void CheckReferences(
        List<string> ids,
        Dictionary<string, ComponentConfig> defined,
        string path,
        string noun,
        int line,
        List<ConfigError> errors)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            if (!defined.ContainsKey(id))
            {
                errors.Add(new ConfigError(path, line, $"{noun} '{id}' is used here but not configured under the {noun}s section"));
            }
            else if (!seen.Add(id))
            {
                errors.Add(new ConfigError(path, line, $"{noun} '{id}' is listed twice"));
            }
        }
    }

    private static void ExpandEnvironment(YamlNode node, Func<string, string?> environment, List<ConfigError> errors)
    {
        switch (node)
        {
            case YamlScalarNode scalar when scalar.Value is not null:
                var unset = new List<string>();
                var expanded = EnvSubstitution.Expand(scalar.Value, environment, unset, out var error);
                if (error is not null)
                {
                    errors.Add(new ConfigError("", (int)scalar.Start.Line, error));
                }

                if (!ReferenceEquals(expanded, scalar.Value))
                {
                    scalar.Value = expanded;

                    // An expanded value is data, not YAML: `${env:X}` that is empty must not read as null.
                    if (scalar.Style == ScalarStyle.Plain && expanded.Length == 0)
                    {
                        scalar.Style = ScalarStyle.DoubleQuoted;
                    }
                }

                break;
            case YamlMappingNode mapping:
                foreach (var child in mapping.Children.Values)
                {
                    ExpandEnvironment(child, environment, errors);
                }

                break;
            case YamlSequenceNode sequence:
                foreach (var child in sequence.Children)
                {
                    ExpandEnvironment(child, environment, errors);
                }

                break;
        }
    }

    private static string Redact(YamlStream stream, HashSet<YamlNode> secrets)
    {
        var originals = new List<(YamlScalarNode Node, string? Value)>();
        foreach (var node in secrets)
        {
            if (node is YamlScalarNode scalar && !string.IsNullOrEmpty(scalar.Value))
            {
                originals.Add((scalar, scalar.Value));
                scalar.Value = "<redacted>";
            }
        }

        // `*_file` keys hold paths, not secrets, and stay visible.
        var sb = new StringBuilder();
        using (var writer = new StringWriter(sb))
        {
            stream.Save(writer, assignAnchors: false);
        }

        foreach (var (node, value) in originals)
        {
            node.Value = value;
        }

        var text = sb.ToString();
        return text.EndsWith("...\n", StringComparison.Ordinal) ? text[..^4] : text;
    }
}

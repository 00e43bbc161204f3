using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text;
using YamlDotNet.RepresentationModel;

namespace PgOtelGateway.Shared.Configuration;

/// <summary>
/// Binds a YAML node tree onto plain options classes. Keys are the snake_case form of property names (or
/// <see cref="ConfigKeyAttribute"/>); unknown keys, wrong types and missing required values are collected as
/// errors with their line, so one run reports everything that is wrong.
/// </summary>
internal sealed class ConfigBinder
{
    private readonly List<ConfigError> _errors;
    private readonly HashSet<YamlNode> _secretNodes;
    private readonly string? _baseDirectory;

    public ConfigBinder(List<ConfigError> errors, HashSet<YamlNode> secretNodes, string? baseDirectory)
    {
        _errors = errors;
        _secretNodes = secretNodes;
        _baseDirectory = baseDirectory;
    }

    /// <summary>Creates an instance of <paramref name="type"/> with its defaults and binds <paramref name="node"/> onto it.</summary>
    public object Bind(Type type, YamlNode? node, string path)
    {
        var instance = Activator.CreateInstance(type)
            ?? throw new InvalidOperationException($"cannot create {type.Name}");
        if (node is not null && !IsNull(node))
        {
            BindObject(instance, node, path);
        }
        else
        {
            CheckRequired(instance, path, (int)(node?.Start.Line ?? 0), present: []);
        }

        if (instance is IValidatableOptions validatable)
        {
            foreach (var message in validatable.Validate())
            {
                Add(path, node, message);
            }
        }

        return instance;
    }

    private void BindObject(object instance, YamlNode node, string path)
    {
        if (node is not YamlMappingNode mapping)
        {
            Add(path, node, "expected a mapping of keys to values");
            return;
        }

        var properties = PropertiesOf(instance.GetType());
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            var key = ((YamlScalarNode)keyNode).Value ?? "";
            var keyPath = Join(path, key);
            if (properties.TryGetValue(key, out var property))
            {
                present.Add(key);
                if (property.GetCustomAttribute<SecretAttribute>() is not null)
                {
                    MarkSecret(valueNode);
                }

                SetProperty(instance, property, valueNode, keyPath);
                continue;
            }

            // `password_file: /run/secrets/x` fills the secret `password` from a file.
            if (key.EndsWith("_file", StringComparison.Ordinal) &&
                properties.TryGetValue(key[..^5], out var secret) &&
                secret.GetCustomAttribute<SecretAttribute>() is not null &&
                secret.PropertyType == typeof(string))
            {
                present.Add(key[..^5]);
                var content = ReadSecretFile(valueNode, keyPath);
                if (content is not null)
                {
                    secret.SetValue(instance, content);
                }

                continue;
            }

            var suggestion = Suggest(key, properties.Keys);
            Add(keyPath, keyNode, suggestion is null
                ? $"unknown key '{key}'"
                : $"unknown key '{key}' (did you mean '{suggestion}'?)");
        }

        CheckRequired(instance, path, (int)node.Start.Line, present);
    }

    private void CheckRequired(object instance, string path, int line, HashSet<string> present)
    {
        foreach (var (key, property) in PropertiesOf(instance.GetType()))
        {
            if (property.GetCustomAttribute<ConfigRequiredAttribute>() is null)
            {
                continue;
            }

            var value = property.GetValue(instance);
            var missing = value is null || (value is string s && s.Length == 0) || (value is ICollection c && c.Count == 0);
            if (missing)
            {
                _errors.Add(new ConfigError(Join(path, key), (int)line,
                    present.Contains(key) ? "a value is required but it is empty" : "a value is required but the key is missing"));
            }
        }
    }

    private void SetProperty(object instance, PropertyInfo property, YamlNode valueNode, string path)
    {
        var type = property.PropertyType;
        if (IsNull(valueNode))
        {
            // `cpu:` with nothing after it means "present, with defaults" for a nested block.
            if (IsOptionsClass(type))
            {
                property.SetValue(instance, Bind(type, null, path));
            }
            else if (type == typeof(string) && new NullabilityInfoContext().Create(property).WriteState != NullabilityState.Nullable)
            {
                // `storage_dir: ${env:DIR:-}` expands to nothing: an empty string, never null in a non-nullable option.
                property.SetValue(instance, "");
            }
            else if (Nullable.GetUnderlyingType(type) is not null || !type.IsValueType)
            {
                property.SetValue(instance, null);
            }

            return;
        }

        if (IsOptionsClass(type))
        {
            property.SetValue(instance, Bind(type, valueNode, path));
            return;
        }

        if (TryConvert(type, valueNode, path, out var value))
        {
            property.SetValue(instance, value);
        }
    }

    private bool TryConvert(Type type, YamlNode node, string path, out object? value)
    {
        value = null;
        var underlying = Nullable.GetUnderlyingType(type) ?? type;

        if (IsOptionsClass(underlying))
        {
            value = Bind(underlying, node, path);
            return true;
        }

        if (underlying.IsGenericType && underlying.GetGenericTypeDefinition() is var def &&
            (def == typeof(List<>) || def == typeof(IList<>) || def == typeof(IReadOnlyList<>)))
        {
            return TryConvertList(underlying.GetGenericArguments()[0], node, path, out value);
        }

        if (underlying.IsGenericType && underlying.GetGenericTypeDefinition() is var ddef &&
            (ddef == typeof(Dictionary<,>) || ddef == typeof(IDictionary<,>) || ddef == typeof(IReadOnlyDictionary<,>)))
        {
            return TryConvertDictionary(underlying.GetGenericArguments()[1], node, path, out value);
        }

        if (node is not YamlScalarNode scalar)
        {
            Add(path, node, $"expected a single value ({Describe(underlying)})");
            return false;
        }

        var text = scalar.Value ?? "";
        if (TryParseScalar(underlying, text, out value))
        {
            return true;
        }

        Add(path, node, $"'{(_secretNodes.Contains(node) ? "<redacted>" : text)}' is not {Describe(underlying)}");
        return false;
    }

    private bool TryConvertList(Type elementType, YamlNode node, string path, out object? value)
    {
        value = null;
        var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(elementType))!;
        if (node is not YamlSequenceNode sequence)
        {
            Add(path, node, $"expected a list of {Describe(elementType)}");
            return false;
        }

        var index = 0;
        foreach (var item in sequence.Children)
        {
            var itemPath = $"{path}[{index++}]";
            if (IsOptionsClass(elementType))
            {
                list.Add(Bind(elementType, item, itemPath));
            }
            else if (TryConvert(elementType, item, itemPath, out var element))
            {
                list.Add(element);
            }
        }

        value = list;
        return true;
    }

    private bool TryConvertDictionary(Type valueType, YamlNode node, string path, out object? value)
    {
        value = null;
        var dictionary = (IDictionary)Activator.CreateInstance(
            typeof(Dictionary<,>).MakeGenericType(typeof(string), valueType), StringComparer.Ordinal)!;
        if (node is not YamlMappingNode mapping)
        {
            Add(path, node, "expected a mapping of keys to values");
            return false;
        }

        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            var key = ((YamlScalarNode)keyNode).Value ?? "";
            var itemPath = Join(path, key);
            if (IsNull(valueNode) && IsOptionsClass(valueType))
            {
                dictionary[key] = Bind(valueType, null, itemPath);
            }
            else if (TryConvert(valueType, valueNode, itemPath, out var element))
            {
                dictionary[key] = element;
            }
        }

        value = dictionary;
        return true;
    }

    /// <summary>Parses one scalar into a supported leaf type.</summary>
    internal static bool TryParseScalar(Type type, string text, out object? value)
    {
        value = null;
        if (type == typeof(string))
        {
            value = text;
            return true;
        }

        if (type == typeof(bool))
        {
            switch (text.Trim().ToLowerInvariant())
            {
                case "true" or "yes" or "on":
                    value = true;
                    return true;
                case "false" or "no" or "off":
                    value = false;
                    return true;
                default:
                    return false;
            }
        }

        if (type == typeof(int) && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i))
        {
            value = i;
            return true;
        }

        if (type == typeof(long) && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l))
        {
            value = l;
            return true;
        }

        if (type == typeof(double) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
        {
            value = d;
            return true;
        }

        if (type == typeof(TimeSpan) && Duration.TryParse(text, out var ts))
        {
            value = ts;
            return true;
        }

        if (type == typeof(ByteSize) && ByteSize.TryParse(text, out var size))
        {
            value = size;
            return true;
        }

        if (type.IsEnum)
        {
            var wanted = Normalize(text);
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static))
            {
                var name = field.GetCustomAttribute<ConfigKeyAttribute>()?.Key ?? field.Name;
                if (Normalize(name) == wanted)
                {
                    value = field.GetValue(null);
                    return true;
                }
            }
        }

        return false;
    }

    private string? ReadSecretFile(YamlNode node, string path)
    {
        if (node is not YamlScalarNode { Value: { Length: > 0 } file })
        {
            Add(path, node, "expected a file path");
            return null;
        }

        var resolved = Path.IsPathRooted(file) || _baseDirectory is null ? file : Path.Combine(_baseDirectory, file);
        try
        {
            // Only the path goes into errors, never the content.
            return File.ReadAllText(resolved).TrimEnd('\r', '\n');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Add(path, node, $"cannot read secret file '{file}': {ex.GetType().Name}");
            return null;
        }
    }

    private void MarkSecret(YamlNode node)
    {
        switch (node)
        {
            case YamlScalarNode:
                _secretNodes.Add(node);
                break;
            case YamlMappingNode mapping:
                foreach (var child in mapping.Children.Values)
                {
                    MarkSecret(child);
                }

                break;
            case YamlSequenceNode sequence:
                foreach (var child in sequence.Children)
                {
                    MarkSecret(child);
                }

                break;
        }
    }

    private void Add(string path, YamlNode? node, string message) =>
        _errors.Add(new ConfigError(path, node is null ? 0 : (int)node.Start.Line, message));

    internal static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Value: null or "" or "~" or "null", Style: YamlDotNet.Core.ScalarStyle.Plain };

    internal static bool IsOptionsClass(Type type) =>
        type.IsClass && type != typeof(string) && !typeof(IEnumerable).IsAssignableFrom(type) &&
        type.GetConstructor(Type.EmptyTypes) is not null;

    internal static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    private static readonly Dictionary<Type, Dictionary<string, PropertyInfo>> PropertyCache = [];

    internal static Dictionary<string, PropertyInfo> PropertiesOf(Type type)
    {
        lock (PropertyCache)
        {
            if (!PropertyCache.TryGetValue(type, out var map))
            {
                map = new Dictionary<string, PropertyInfo>(StringComparer.Ordinal);
                foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
                {
                    if (p.CanWrite && p.GetSetMethod() is not null)
                    {
                        map[p.GetCustomAttribute<ConfigKeyAttribute>()?.Key ?? ToSnakeCase(p.Name)] = p;
                    }
                }

                PropertyCache[type] = map;
            }

            return map;
        }
    }

    /// <summary>Converts <c>SendBatchMaxSize</c> to <c>send_batch_max_size</c>.</summary>
    internal static string ToSnakeCase(string name)
    {
        var sb = new StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c))
            {
                var previousLower = i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]));
                var nextLower = i + 1 < name.Length && char.IsLower(name[i + 1]) && i > 0 && char.IsUpper(name[i - 1]);
                if (previousLower || nextLower)
                {
                    sb.Append('_');
                }

                sb.Append(char.ToLowerInvariant(c));
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    private static string Normalize(string s) =>
        s.Replace("_", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal).ToLowerInvariant();

    internal static string Describe(Type type)
    {
        if (type == typeof(bool))
        {
            return "true or false";
        }

        if (type == typeof(int) || type == typeof(long))
        {
            return "a whole number";
        }

        if (type == typeof(double))
        {
            return "a number";
        }

        if (type == typeof(TimeSpan))
        {
            return "a duration like 10s, 500ms or 1m";
        }

        if (type == typeof(ByteSize))
        {
            return "a size like 64MiB or 512KB";
        }

        if (type.IsEnum)
        {
            var names = new List<string>();
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static))
            {
                names.Add(field.GetCustomAttribute<ConfigKeyAttribute>()?.Key ?? ToSnakeCase(field.Name));
            }

            return "one of " + string.Join(", ", names);
        }

        return type == typeof(string) ? "a string" : "a " + ToSnakeCase(type.Name);
    }

    /// <summary>The closest known key within edit distance 2, to help with typos.</summary>
    internal static string? Suggest(string key, IEnumerable<string> known)
    {
        string? best = null;
        var bestDistance = 3;
        foreach (var candidate in known)
        {
            var distance = Levenshtein(key, candidate);
            if (distance < bestDistance)
            {
                bestDistance = distance;
                best = candidate;
            }
        }

        return best;
    }

    private static int Levenshtein(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}

using System.Collections;
using System.Reflection;
using System.Text.RegularExpressions;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Admin;

/// <summary>
/// The admin API's last line of defence: every string it sends passes through here, and any configured secret
/// value (every <c>[Secret]</c> option of every component and section) or URL password in it is replaced by
/// <c>&lt;redacted&gt;</c>. The configuration view is already redacted at load; this catches secrets that leak
/// through free text such as an exporter's last error.
/// </summary>
internal sealed partial class SecretScrubber
{
    /// <summary>What a secret is replaced by.</summary>
    public const string Redacted = "<redacted>";

    // Shorter values would mangle ordinary text; such secrets are no protection anyway.
    private const int MinimumSecretLength = 4;

    private readonly string[] _secrets;

    /// <summary>Creates a scrubber for the given secret values.</summary>
    public SecretScrubber(IEnumerable<string> secrets)
    {
        // Longest first, so a secret that contains another is replaced whole.
        _secrets = [.. secrets
            .Where(s => s.Length >= MinimumSecretLength)
            .Distinct(StringComparer.Ordinal)
            .OrderByDescending(s => s.Length)];
    }

    /// <summary>A scrubber that only removes URL passwords.</summary>
    public static SecretScrubber None { get; } = new([]);

    /// <summary>How many distinct secret values it knows.</summary>
    public int Count => _secrets.Length;

    /// <summary>Collects every secret value of a loaded configuration.</summary>
    public static SecretScrubber FromConfig(PipelineConfig config)
    {
        var secrets = new List<string>();
        var visited = new HashSet<object>(ReferenceEqualityComparer.Instance);
        foreach (var kind in new[] { ComponentKind.Receiver, ComponentKind.Processor, ComponentKind.Exporter, ComponentKind.Extension })
        {
            foreach (var component in config.Components(kind).Values)
            {
                Collect(component.Options, secrets, visited, 0);
            }
        }

        foreach (var section in config.Sections.Values)
        {
            Collect(section, secrets, visited, 0);
        }

        return new SecretScrubber(secrets);
    }

    /// <summary>The text with every known secret and every URL password replaced.</summary>
    public string Scrub(string text)
    {
        if (text.Length == 0)
        {
            return text;
        }

        foreach (var secret in _secrets)
        {
            if (text.Contains(secret, StringComparison.Ordinal))
            {
                text = text.Replace(secret, Redacted, StringComparison.Ordinal);
            }
        }

        return text.Contains("://", StringComparison.Ordinal) && text.Contains('@', StringComparison.Ordinal)
            ? UrlPassword().Replace(text, "://${user}:" + Redacted + "@")
            : text;
    }

    /// <summary>Null stays null.</summary>
    public string? ScrubNullable(string? text) => text is null ? null : Scrub(text);

    private static void Collect(object? options, List<string> secrets, HashSet<object> visited, int depth)
    {
        if (options is null || depth > 16 || options is string || options.GetType().IsValueType || !visited.Add(options))
        {
            return;
        }

        if (options is IDictionary dictionary)
        {
            foreach (var value in dictionary.Values)
            {
                Collect(value, secrets, visited, depth + 1);
            }

            return;
        }

        if (options is IEnumerable sequence)
        {
            foreach (var item in sequence)
            {
                Collect(item, secrets, visited, depth + 1);
            }

            return;
        }

        foreach (var property in options.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || !property.CanRead)
            {
                continue;
            }

            var value = property.GetValue(options);
            if (property.GetCustomAttribute<SecretAttribute>() is not null)
            {
                AddSecretValues(value, secrets);
            }
            else
            {
                Collect(value, secrets, visited, depth + 1);
            }
        }
    }

    private static void AddSecretValues(object? value, List<string> secrets)
    {
        switch (value)
        {
            case string s when s.Length > 0:
                secrets.Add(s);

                // An Authorization header's credentials may show up without their scheme.
                var space = s.IndexOf(' ', StringComparison.Ordinal);
                if (space > 0 && space < s.Length - 1)
                {
                    secrets.Add(s[(space + 1)..]);
                }

                break;
            case IDictionary dictionary:
                foreach (var item in dictionary.Values)
                {
                    AddSecretValues(item, secrets);
                }

                break;
            case IEnumerable sequence and not string:
                foreach (var item in sequence)
                {
                    AddSecretValues(item, secrets);
                }

                break;
        }
    }

    // scheme://user:password@host → keeps the user, drops the password.
    [GeneratedRegex(@"://(?<user>[^/@\s:]*):[^/@\s]+@", RegexOptions.CultureInvariant)]
    private static partial Regex UrlPassword();
}

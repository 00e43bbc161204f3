using System.Text;

namespace PgOtelGateway.Shared.Configuration;

/// <summary>
/// Expands <c>${env:NAME}</c> and <c>${env:NAME:-default}</c> in configuration values; <c>$$</c> is a literal
/// dollar. An unset variable without a default expands to the empty string and is reported, so a required key
/// left empty says which variable was missing.
/// </summary>
public static class EnvSubstitution
{
    /// <summary>Expands the references in <paramref name="text"/>.</summary>
    /// <param name="text">The raw value.</param>
    /// <param name="lookup">Reads a variable; null when it is unset.</param>
    /// <param name="unset">Receives the names of referenced variables that were unset and had no default.</param>
    /// <param name="error">Set when a reference is malformed.</param>
    public static string Expand(string text, Func<string, string?> lookup, List<string> unset, out string? error)
    {
        error = null;
        if (!text.Contains('$', StringComparison.Ordinal))
        {
            return text;
        }

        var sb = new StringBuilder(text.Length);
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (c != '$')
            {
                sb.Append(c);
                i++;
                continue;
            }

            if (i + 1 < text.Length && text[i + 1] == '$')
            {
                sb.Append('$');
                i += 2;
                continue;
            }

            if (i + 1 < text.Length && text[i + 1] == '{')
            {
                var close = text.IndexOf('}', i + 2);
                if (close < 0)
                {
                    error = $"unterminated '${{' in value '{text}'";
                    return text;
                }

                var inner = text.Substring(i + 2, close - i - 2);
                if (!inner.StartsWith("env:", StringComparison.Ordinal))
                {
                    error = $"unsupported reference '${{{inner}}}'; use ${{env:NAME}} or ${{env:NAME:-default}}";
                    return text;
                }

                var spec = inner[4..];
                string name;
                string? fallback = null;
                var dash = spec.IndexOf(":-", StringComparison.Ordinal);
                if (dash >= 0)
                {
                    name = spec[..dash];
                    fallback = spec[(dash + 2)..];
                }
                else
                {
                    name = spec;
                }

                if (!IsValidName(name))
                {
                    error = $"invalid environment variable name '{name}'";
                    return text;
                }

                var value = lookup(name);
                if (string.IsNullOrEmpty(value))
                {
                    if (fallback is null && value is null)
                    {
                        unset.Add(name);
                    }

                    value = fallback ?? value ?? "";
                }

                sb.Append(value);
                i = close + 1;
                continue;
            }

            sb.Append(c);
            i++;
        }

        return sb.ToString();
    }

    private static bool IsValidName(string name)
    {
        if (name.Length == 0 || char.IsAsciiDigit(name[0]))
        {
            return false;
        }

        foreach (var ch in name)
        {
            if (!char.IsAsciiLetterOrDigit(ch) && ch != '_')
            {
                return false;
            }
        }

        return true;
    }
}

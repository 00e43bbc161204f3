using System.Runtime.CompilerServices;

namespace PgOtelGateway.Tests.Common;

/// <summary>
/// Names that no other test (or earlier run against the same servers) uses: databases, metric names, key
/// prefixes. Lower-case letters, digits and underscores only, so they fit PostgreSQL, Prometheus and S3.
/// </summary>
public static class UniqueName
{
    /// <summary>A name built from the calling test's name and a random suffix, at most 48 characters.</summary>
    public static string For([CallerMemberName] string test = "")
    {
        var chars = new char[Math.Min(test.Length, 36)];
        for (var i = 0; i < chars.Length; i++)
        {
            var c = char.ToLowerInvariant(test[i]);
            chars[i] = char.IsAsciiLetterOrDigit(c) ? c : '_';
        }

        var prefix = new string(chars);
        if (prefix.Length == 0 || char.IsAsciiDigit(prefix[0]))
        {
            prefix = "t" + prefix;
        }

        return prefix + "_" + Guid.NewGuid().ToString("N")[..10];
    }
}

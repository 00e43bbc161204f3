using System.Collections.Concurrent;
using System.Text;

namespace PgOtelGateway.Shared.Translation;

/// <summary>
/// OTLP metric and attribute names to Prometheus names (DESIGN.md §6, after the OpenTelemetry→Prometheus
/// compatibility rules): sanitized to <c>[a-zA-Z0-9_:]</c>, runs of <c>_</c> collapsed, a unit suffix from the UCUM
/// unit, <c>_ratio</c> for unit <c>1</c> on gauges, <c>_total</c> for monotonic counters.
/// </summary>
public static class PrometheusNaming
{
    private static readonly Dictionary<string, string> UnitNames = new(StringComparer.Ordinal)
    {
        ["d"] = "days",
        ["h"] = "hours",
        ["min"] = "minutes",
        ["s"] = "seconds",
        ["ms"] = "milliseconds",
        ["us"] = "microseconds",
        ["ns"] = "nanoseconds",
        ["By"] = "bytes",
        ["KiBy"] = "kibibytes",
        ["MiBy"] = "mebibytes",
        ["GiBy"] = "gibibytes",
        ["TiBy"] = "tibibytes",
        ["KBy"] = "kilobytes",
        ["MBy"] = "megabytes",
        ["GBy"] = "gigabytes",
        ["TBy"] = "terabytes",
        ["B"] = "bytes",
        ["bytes"] = "bytes",
        ["m"] = "meters",
        ["V"] = "volts",
        ["A"] = "amperes",
        ["J"] = "joules",
        ["W"] = "watts",
        ["g"] = "grams",
        ["Cel"] = "celsius",
        ["Hz"] = "hertz",
        ["%"] = "percent",
    };

    private static readonly Dictionary<string, string> PerUnitNames = new(StringComparer.Ordinal)
    {
        ["s"] = "second",
        ["m"] = "minute",
        ["h"] = "hour",
        ["d"] = "day",
        ["w"] = "week",
        ["mo"] = "month",
        ["y"] = "year",
    };

    private static readonly ConcurrentDictionary<(string Name, string Unit, MetricKind Kind), string> NameCache = new();
    private static readonly ConcurrentDictionary<string, string> LabelCache = new(StringComparer.Ordinal);

    /// <summary>How a metric is exposed, which decides its suffixes.</summary>
    public enum MetricKind
    {
        /// <summary>A gauge (also a non-monotonic sum).</summary>
        Gauge,

        /// <summary>A monotonic counter: gets <c>_total</c>.</summary>
        Counter,

        /// <summary>A histogram or summary: suffixes are added per series (<c>_bucket</c>, <c>_sum</c>, <c>_count</c>).</summary>
        Distribution,
    }

    /// <summary>The Prometheus metric name for an OTLP metric; cached, as the set of names is small.</summary>
    public static string MetricName(string name, string unit, MetricKind kind)
    {
        if (NameCache.TryGetValue((name, unit, kind), out var cached))
        {
            return cached;
        }

        var result = BuildMetricName(name, unit, kind);
        if (NameCache.Count < 100_000)
        {
            NameCache[(name, unit, kind)] = result;
        }

        return result;
    }

    private static string BuildMetricName(string name, string unit, MetricKind kind)
    {
        var baseName = Sanitize(name, allowColon: true);
        var parts = new List<string> { baseName };

        var unitSuffix = UnitSuffix(unit);
        if (unitSuffix.Length > 0)
        {
            AddSuffix(parts, unitSuffix);
        }
        else if (unit == "1" && kind == MetricKind.Gauge)
        {
            AddSuffix(parts, "ratio");
        }

        if (kind == MetricKind.Counter)
        {
            AddSuffix(parts, "total");
        }

        return Collapse(string.Join('_', parts));
    }

    // A suffix is not added twice: "pg.size" in bytes becomes pg_size_bytes, "pg.size_bytes" stays as it is.
    private static void AddSuffix(List<string> parts, string suffix)
    {
        var current = string.Join('_', parts);
        if (!current.EndsWith("_" + suffix, StringComparison.Ordinal) && current != suffix)
        {
            parts.Add(suffix);
        }
    }

    /// <summary>The unit's suffix: <c>By</c> → bytes, <c>By/s</c> → bytes_per_second, <c>{connection}</c> → none.</summary>
    public static string UnitSuffix(string unit)
    {
        var trimmed = RemoveAnnotations(unit).Trim();
        if (trimmed.Length == 0 || trimmed == "1")
        {
            return "";
        }

        var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return MainUnit(trimmed);
        }

        var main = MainUnit(trimmed[..slash]);
        var perRaw = trimmed[(slash + 1)..];
        var per = PerUnitNames.TryGetValue(perRaw, out var p) ? p : Sanitize(perRaw, allowColon: false).Trim('_');
        if (per.Length == 0)
        {
            return main;
        }

        return main.Length == 0 ? "per_" + per : main + "_per_" + per;
    }

    private static string MainUnit(string unit) =>
        UnitNames.TryGetValue(unit, out var name) ? name : Sanitize(unit, allowColon: false).Trim('_');

    private static string RemoveAnnotations(string unit)
    {
        if (!unit.Contains('{', StringComparison.Ordinal))
        {
            return unit;
        }

        var sb = new StringBuilder(unit.Length);
        var depth = 0;
        foreach (var c in unit)
        {
            if (c == '{')
            {
                depth++;
            }
            else if (c == '}')
            {
                depth = Math.Max(0, depth - 1);
            }
            else if (depth == 0)
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }

    /// <summary>A Prometheus label name for an attribute key: <c>[a-zA-Z0-9_]</c>, not starting with a digit.</summary>
    public static string LabelName(string key)
    {
        if (LabelCache.TryGetValue(key, out var cached))
        {
            return cached;
        }

        var name = Sanitize(key, allowColon: false);
        if (name.Length > 0 && char.IsAsciiDigit(name[0]))
        {
            name = "key_" + name;
        }
        else if (name.StartsWith('_') && !name.StartsWith("__", StringComparison.Ordinal))
        {
            name = "key" + name;
        }

        if (LabelCache.Count < 100_000)
        {
            LabelCache[key] = name;
        }

        return name;
    }

    private static string Sanitize(string text, bool allowColon)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            var ok = char.IsAsciiLetterOrDigit(c) || c == '_' || (allowColon && c == ':');
            sb.Append(ok ? c : '_');
        }

        var result = sb.ToString();
        if (allowColon)
        {
            // Metric names: "pg.size." and "pg..size" both read pg_size.
            result = Collapse(result).Trim('_');
            if (result.Length > 0 && char.IsAsciiDigit(result[0]))
            {
                result = "_" + result;
            }
        }

        return result;
    }

    private static string Collapse(string name)
    {
        if (!name.Contains("__", StringComparison.Ordinal))
        {
            return name;
        }

        var sb = new StringBuilder(name.Length);
        var previousUnderscore = false;
        foreach (var c in name)
        {
            if (c == '_' && previousUnderscore)
            {
                continue;
            }

            previousUnderscore = c == '_';
            sb.Append(c);
        }

        return sb.ToString();
    }
}

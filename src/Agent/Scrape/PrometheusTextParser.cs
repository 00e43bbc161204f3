using System.Globalization;

namespace PgOtelGateway.Agent.Scrape;

/// <summary>The <c># TYPE</c> of a metric family in the text exposition format.</summary>
internal enum PromMetricType
{
    Untyped,
    Counter,
    Gauge,
    Histogram,
    Summary,
}

/// <summary>One label of a sample.</summary>
internal readonly record struct PromLabel(string Name, string Value);

/// <summary>One sample line: <c>name{labels} value [timestamp]</c>.</summary>
internal readonly record struct PromSample(string Name, PromLabel[] Labels, double Value, long? TimestampMs);

/// <summary>The samples of one metric family, with its help text and type.</summary>
internal sealed class PromFamily(string name, PromMetricType type)
{
    public string Name { get; } = name;

    public PromMetricType Type { get; set; } = type;

    public string Help { get; set; } = "";

    public List<PromSample> Samples { get; } = [];

    /// <summary>Whether a sample called <paramref name="sample"/> belongs to this family (<c>_bucket</c>, <c>_sum</c>, <c>_count</c>).</summary>
    public bool Owns(ReadOnlySpan<char> sample)
    {
        if (sample.SequenceEqual(Name))
        {
            return Type != PromMetricType.Histogram;
        }

        if (!sample.StartsWith(Name, StringComparison.Ordinal))
        {
            return false;
        }

        var suffix = sample[Name.Length..];
        if (Type == PromMetricType.Counter)
        {
            // OpenMetrics-style exposition: "# TYPE foo counter" with the sample "foo_total".
            return suffix.SequenceEqual("_total");
        }

        if (Type is not (PromMetricType.Histogram or PromMetricType.Summary))
        {
            return false;
        }

        return suffix.SequenceEqual("_sum") || suffix.SequenceEqual("_count") || (Type == PromMetricType.Histogram && suffix.SequenceEqual("_bucket"));
    }
}

/// <summary>
/// Parses the Prometheus text exposition format (0.0.4): <c># HELP</c> and <c># TYPE</c> lines, samples with
/// optional labels (escaped values), NaN / ±Inf, and optional millisecond timestamps. Names and label values
/// repeat from scrape to scrape, so they are interned in a bounded cache: a steady scrape allocates the
/// samples and their label arrays, not their strings.
/// </summary>
internal sealed class PrometheusTextParser
{
    private const int MaxInterned = 200_000;
    private readonly HashSet<string> _interned = new(StringComparer.Ordinal);
    private readonly List<PromLabel> _labels = [];
    private char[] _unescape = new char[256];

    /// <summary>A line that could not be parsed is skipped; the count of such lines from the last parse.</summary>
    public int InvalidLines { get; private set; }

    /// <summary>The first problem of the last parse, for the log.</summary>
    public string? FirstProblem { get; private set; }

    /// <summary>Parses a whole exposition into families in their order of appearance.</summary>
    public List<PromFamily> Parse(ReadOnlySpan<char> text)
    {
        InvalidLines = 0;
        FirstProblem = null;
        if (_interned.Count > MaxInterned)
        {
            // Bound the cache: churning label values (e.g. query ids) must not grow it forever.
            _interned.Clear();
        }

        var families = new List<PromFamily>();
        var byName = new Dictionary<string, PromFamily>(StringComparer.Ordinal);
        PromFamily? current = null;
        var lineNumber = 0;
        while (text.Length > 0)
        {
            lineNumber++;
            var end = text.IndexOf('\n');
            var line = end < 0 ? text : text[..end];
            text = end < 0 ? [] : text[(end + 1)..];
            if (line.Length > 0 && line[^1] == '\r')
            {
                line = line[..^1];
            }

            line = line.TrimStart(" \t");
            if (line.IsEmpty)
            {
                continue;
            }

            if (line[0] == '#')
            {
                ParseComment(line, families, byName, ref current);
                continue;
            }

            if (!TryParseSample(line, out var sample, out var problem))
            {
                InvalidLines++;
                FirstProblem ??= $"line {lineNumber}: {problem}";
                continue;
            }

            if (current is null || !current.Owns(sample.Name))
            {
                current = FamilyFor(sample.Name, families, byName);
            }

            current.Samples.Add(sample);
        }

        return families;
    }

    private PromFamily FamilyFor(string sampleName, List<PromFamily> families, Dictionary<string, PromFamily> byName)
    {
        if (byName.TryGetValue(sampleName, out var family) && family.Owns(sampleName))
        {
            return family;
        }

        // A _sum / _count / _bucket of a family declared earlier but interrupted by another family.
        foreach (var suffix in (ReadOnlySpan<string>)["_bucket", "_sum", "_count", "_total"])
        {
            if (sampleName.EndsWith(suffix, StringComparison.Ordinal) && byName.TryGetValue(sampleName[..^suffix.Length], out family) && family.Owns(sampleName))
            {
                return family;
            }
        }

        family = new PromFamily(sampleName, PromMetricType.Untyped);
        if (!byName.TryAdd(sampleName, family))
        {
            // A second block of an untyped family: keep both under one name.
            family = byName[sampleName];
            return family;
        }

        families.Add(family);
        return family;
    }

    private void ParseComment(ReadOnlySpan<char> line, List<PromFamily> families, Dictionary<string, PromFamily> byName, ref PromFamily? current)
    {
        var rest = line[1..].TrimStart(" \t");
        var isHelp = rest.StartsWith("HELP ", StringComparison.Ordinal) || rest.StartsWith("HELP\t", StringComparison.Ordinal);
        var isType = rest.StartsWith("TYPE ", StringComparison.Ordinal) || rest.StartsWith("TYPE\t", StringComparison.Ordinal);
        if (!isHelp && !isType)
        {
            return; // An ordinary comment.
        }

        rest = rest[5..].TrimStart(" \t");
        var nameEnd = rest.IndexOfAny(' ', '\t');
        var name = nameEnd < 0 ? rest : rest[..nameEnd];
        if (name.IsEmpty)
        {
            return;
        }

        var argument = nameEnd < 0 ? [] : rest[(nameEnd + 1)..].TrimStart(" \t");
        var nameText = Intern(name);
        if (!byName.TryGetValue(nameText, out var family))
        {
            family = new PromFamily(nameText, PromMetricType.Untyped);
            byName[nameText] = family;
            families.Add(family);
        }

        current = family;
        if (isHelp)
        {
            family.Help = UnescapeHelp(argument);
        }
        else
        {
            family.Type = argument.TrimEnd(" \t") switch
            {
                "counter" => PromMetricType.Counter,
                "gauge" => PromMetricType.Gauge,
                "histogram" => PromMetricType.Histogram,
                "summary" => PromMetricType.Summary,
                _ => PromMetricType.Untyped,
            };
        }
    }

    private bool TryParseSample(ReadOnlySpan<char> line, out PromSample sample, out string problem)
    {
        sample = default;
        var i = 0;
        while (i < line.Length && IsNameChar(line[i], i == 0))
        {
            i++;
        }

        if (i == 0)
        {
            problem = "a sample must start with a metric name";
            return false;
        }

        var name = Intern(line[..i]);
        _labels.Clear();
        var rest = line[i..].TrimStart(" \t");
        if (rest.Length > 0 && rest[0] == '{')
        {
            var consumed = ParseLabels(rest, out problem);
            if (consumed < 0)
            {
                return false;
            }

            rest = rest[consumed..].TrimStart(" \t");
        }

        var valueEnd = rest.IndexOfAny(' ', '\t');
        var valueText = valueEnd < 0 ? rest : rest[..valueEnd];
        if (!TryParseValue(valueText, out var value))
        {
            problem = $"'{valueText}' is not a sample value";
            return false;
        }

        long? timestamp = null;
        if (valueEnd >= 0)
        {
            var tsText = rest[(valueEnd + 1)..].Trim(" \t");
            if (tsText.Length > 0)
            {
                if (!long.TryParse(tsText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var ts))
                {
                    problem = $"'{tsText}' is not a timestamp in milliseconds";
                    return false;
                }

                timestamp = ts;
            }
        }

        sample = new PromSample(name, _labels.Count == 0 ? [] : [.. _labels], value, timestamp);
        problem = "";
        return true;
    }

    /// <summary>Parses <c>{a="b",c="d"}</c>; returns the characters consumed, or -1.</summary>
    private int ParseLabels(ReadOnlySpan<char> text, out string problem)
    {
        var i = 1;
        while (true)
        {
            while (i < text.Length && text[i] is ' ' or '\t')
            {
                i++;
            }

            if (i >= text.Length)
            {
                problem = "unterminated label set";
                return -1;
            }

            if (text[i] == '}')
            {
                problem = "";
                return i + 1;
            }

            var start = i;
            while (i < text.Length && IsLabelChar(text[i], i == start))
            {
                i++;
            }

            if (i == start)
            {
                problem = "a label name is expected";
                return -1;
            }

            var labelName = Intern(text[start..i]);
            while (i < text.Length && text[i] is ' ' or '\t')
            {
                i++;
            }

            if (i >= text.Length || text[i] != '=')
            {
                problem = $"label {labelName}: '=' expected";
                return -1;
            }

            i++;
            while (i < text.Length && text[i] is ' ' or '\t')
            {
                i++;
            }

            if (i >= text.Length || text[i] != '"')
            {
                problem = $"label {labelName}: a quoted value expected";
                return -1;
            }

            i++;
            var valueStart = i;
            var escaped = false;
            while (i < text.Length && text[i] != '"')
            {
                if (text[i] == '\\')
                {
                    escaped = true;
                    i++;
                }

                i++;
            }

            if (i >= text.Length)
            {
                problem = $"label {labelName}: unterminated value";
                return -1;
            }

            var raw = text[valueStart..i];
            _labels.Add(new PromLabel(labelName, escaped ? Intern(UnescapeLabel(raw)) : Intern(raw)));
            i++;
            while (i < text.Length && text[i] is ' ' or '\t')
            {
                i++;
            }

            if (i < text.Length && text[i] == ',')
            {
                i++;
            }
            else if (i < text.Length && text[i] != '}')
            {
                problem = "',' or '}' expected after a label";
                return -1;
            }
        }
    }

    internal static bool TryParseValue(ReadOnlySpan<char> text, out double value)
    {
        switch (text)
        {
            case "NaN" or "nan":
                value = double.NaN;
                return true;
            case "+Inf" or "Inf" or "+inf" or "inf":
                value = double.PositiveInfinity;
                return true;
            case "-Inf" or "-inf":
                value = double.NegativeInfinity;
                return true;
            default:
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
        }
    }

    private ReadOnlySpan<char> UnescapeLabel(ReadOnlySpan<char> raw)
    {
        var buffer = Buffer(raw.Length);
        var n = 0;
        for (var i = 0; i < raw.Length; i++)
        {
            var c = raw[i];
            if (c == '\\' && i + 1 < raw.Length)
            {
                var next = raw[++i];
                switch (next)
                {
                    case 'n':
                        buffer[n++] = '\n';
                        break;
                    case '\\' or '"':
                        buffer[n++] = next;
                        break;
                    default:
                        // Unknown escapes are kept as written.
                        buffer[n++] = '\\';
                        buffer[n++] = next;
                        break;
                }
            }
            else
            {
                buffer[n++] = c;
            }
        }

        return buffer.AsSpan(0, n);
    }

    private string UnescapeHelp(ReadOnlySpan<char> raw)
    {
        if (raw.IndexOf('\\') < 0)
        {
            return Intern(raw);
        }

        var buffer = Buffer(raw.Length);
        var n = 0;
        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] == '\\' && i + 1 < raw.Length && raw[i + 1] is 'n' or '\\')
            {
                buffer[n++] = raw[++i] == 'n' ? '\n' : '\\';
            }
            else
            {
                buffer[n++] = raw[i];
            }
        }

        return Intern(buffer.AsSpan(0, n));
    }

    private char[] Buffer(int length)
    {
        if (_unescape.Length < length * 2)
        {
            _unescape = new char[length * 2];
        }

        return _unescape;
    }

    private string Intern(ReadOnlySpan<char> text)
    {
        var lookup = _interned.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(text, out var existing))
        {
            return existing;
        }

        var s = text.ToString();
        _interned.Add(s);
        return s;
    }

    private static bool IsNameChar(char c, bool first) =>
        c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' or ':' || (!first && c is >= '0' and <= '9');

    private static bool IsLabelChar(char c, bool first) =>
        c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' || (!first && c is >= '0' and <= '9');
}

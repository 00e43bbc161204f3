using System.Text.RegularExpressions;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>
/// The metric names a PromQL expression (or a Grafana query) reads. Not a full parser: it removes what cannot
/// be a metric name (strings, label matchers, ranges, grouping label lists, Grafana variables, numbers,
/// keywords, function names) and keeps the identifiers that remain.
/// </summary>
internal static partial class PromQlNames
{
    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan", "atan2",
    };

    public static IReadOnlySet<string> Extract(string expression)
    {
        var text = expression.Trim();

        // Grafana's label_values(query, label) and label_values(label): only the query holds metric names.
        var labelValues = LabelValuesCall().Match(text);
        if (labelValues.Success)
        {
            var inner = labelValues.Groups[1].Value;
            var comma = inner.LastIndexOf(',');
            text = comma < 0 ? "" : inner[..comma];
        }

        text = GrafanaVariable().Replace(text, " ");
        text = StringLiteral().Replace(text, " ");
        text = LabelMatchers().Replace(text, " ");
        text = RangeOrSubquery().Replace(text, " ");
        text = GroupingLabels().Replace(text, " ");
        text = OffsetModifier().Replace(text, " ");

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match token in Token().Matches(text))
        {
            if (token.Groups["id"].Success && !token.Groups["call"].Success && !Keywords.Contains(token.Groups["id"].Value))
            {
                names.Add(token.Groups["id"].Value);
            }
        }

        return names;
    }

    [GeneratedRegex(@"^label_values\s*\((.*)\)$", RegexOptions.Singleline)]
    private static partial Regex LabelValuesCall();

    [GeneratedRegex(@"\$\{[^}]*\}|\$\w+")]
    private static partial Regex GrafanaVariable();

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")]
    private static partial Regex StringLiteral();

    [GeneratedRegex(@"\{[^{}]*\}")]
    private static partial Regex LabelMatchers();

    [GeneratedRegex(@"\[[^\[\]]*\]")]
    private static partial Regex RangeOrSubquery();

    [GeneratedRegex(@"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")]
    private static partial Regex GroupingLabels();

    [GeneratedRegex(@"\boffset\s+-?\w+")]
    private static partial Regex OffsetModifier();

    [GeneratedRegex(@"(?<num>(?:0[xX][0-9a-fA-F]+)|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)|(?<id>[a-zA-Z_:][a-zA-Z0-9_:]*)(?<call>\s*\()?")]
    private static partial Regex Token();
}

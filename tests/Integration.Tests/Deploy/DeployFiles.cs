using System.Text.Json;
using YamlDotNet.RepresentationModel;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>The files under <c>deploy/</c> and the PromQL they carry: rule expressions, record names, dashboard queries.</summary>
internal static class DeployFiles
{
    public static string Root => Agent.CustomQueryTests.RepoRoot();

    public static string PrometheusDirectory => Path.Combine(Root, "deploy", "prometheus");

    public static string GrafanaDirectory => Path.Combine(Root, "deploy", "grafana");

    /// <summary>deploy/prometheus/*.yml that hold rule groups.</summary>
    public static IReadOnlyList<string> RuleFiles() =>
        [.. Directory.GetFiles(PrometheusDirectory, "*.yml").Where(f => LoadYaml(f) is YamlMappingNode m && m.Children.ContainsKey("groups")).Order(StringComparer.Ordinal)];

    /// <summary>deploy/prometheus/tests/*.test.yml (promtool unit tests).</summary>
    public static IReadOnlyList<string> RuleTestFiles() =>
        [.. Directory.GetFiles(Path.Combine(PrometheusDirectory, "tests"), "*.test.yml").Order(StringComparer.Ordinal)];

    /// <summary>deploy/grafana/*.json dashboards.</summary>
    public static IReadOnlyList<string> Dashboards() => [.. Directory.GetFiles(GrafanaDirectory, "*.json").Order(StringComparer.Ordinal)];

    /// <summary>Every rule of every rule file: its file, alert or record name, and expression.</summary>
    public static IReadOnlyList<(string File, string? Alert, string? Record, string Expr)> Rules()
    {
        var rules = new List<(string, string?, string?, string)>();
        foreach (var file in RuleFiles())
        {
            var root = (YamlMappingNode)LoadYaml(file)!;
            foreach (var group in ((YamlSequenceNode)root["groups"]).Cast<YamlMappingNode>())
            {
                foreach (var rule in ((YamlSequenceNode)group["rules"]).Cast<YamlMappingNode>())
                {
                    rules.Add((Path.GetFileName(file), Scalar(rule, "alert"), Scalar(rule, "record"), Scalar(rule, "expr")!));
                }
            }
        }

        return rules;
    }

    /// <summary>Every query of a dashboard: panel targets' <c>expr</c> and template variables' queries.</summary>
    public static IReadOnlyList<string> DashboardQueries(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(file));
        var queries = new List<string>();
        CollectExprs(doc.RootElement, queries);
        if (doc.RootElement.TryGetProperty("templating", out var templating))
        {
            foreach (var variable in templating.GetProperty("list").EnumerateArray())
            {
                if (variable.GetProperty("type").GetString() != "query")
                {
                    continue;
                }

                var query = variable.GetProperty("query");
                queries.Add(query.ValueKind == JsonValueKind.String ? query.GetString()! : query.GetProperty("query").GetString()!);
            }
        }

        return queries;
    }

    /// <summary>Alert names that some promtool test expects to fire (a non-empty exp_alerts).</summary>
    public static IReadOnlySet<string> AlertsFiredByTests()
    {
        var fired = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in RuleTestFiles())
        {
            var root = (YamlMappingNode)LoadYaml(file)!;
            foreach (var test in ((YamlSequenceNode)root["tests"]).Cast<YamlMappingNode>())
            {
                if (!test.Children.TryGetValue("alert_rule_test", out var cases))
                {
                    continue;
                }

                foreach (var c in ((YamlSequenceNode)cases).Cast<YamlMappingNode>())
                {
                    if (c.Children.TryGetValue("exp_alerts", out var exp) && exp is YamlSequenceNode { Children.Count: > 0 })
                    {
                        fired.Add(Scalar(c, "alertname")!);
                    }
                }
            }
        }

        return fired;
    }

    public static YamlNode? LoadYaml(string file)
    {
        using var reader = new StreamReader(file);
        var stream = new YamlStream();
        stream.Load(reader);
        return stream.Documents.Count == 0 ? null : stream.Documents[0].RootNode;
    }

    public static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(key, out var value) && value is YamlScalarNode s ? s.Value : null;

    private static void CollectExprs(JsonElement element, List<string> into)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (property.Name == "expr" && property.Value.ValueKind == JsonValueKind.String)
                    {
                        into.Add(property.Value.GetString()!);
                    }
                    else
                    {
                        CollectExprs(property.Value, into);
                    }
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    CollectExprs(item, into);
                }

                break;
        }
    }
}

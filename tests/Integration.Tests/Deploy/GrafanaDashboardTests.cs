using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>deploy/grafana: well-formed dashboards with the panels the operators asked for.</summary>
public sealed partial class GrafanaDashboardTests
{
    [Theory]
    [InlineData("postgresql-overview.json", new[] { "size", "connections by state", "transaction rate", "cache hit ratio", "replication lag", "wal rate", "dead rows", "locks", "checkpoints" })]
    [InlineData("pgotel-gateway.json", new[] { "accepted points", "refused requests by reason", "dedup hits", "ring members", "queue depth", "oldest undelivered", "export latency", "export failures" })]
    public void Dashboard_IsWellFormedAndHasTheRequiredPanels(string file, string[] requiredTitles)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(DeployFiles.GrafanaDirectory, file)));
        var root = doc.RootElement;
        Assert.False(string.IsNullOrEmpty(root.GetProperty("uid").GetString()));
        Assert.False(string.IsNullOrEmpty(root.GetProperty("title").GetString()));

        var variables = root.GetProperty("templating").GetProperty("list").EnumerateArray().Select(v => v.GetProperty("name").GetString()!).ToHashSet(StringComparer.Ordinal);
        Assert.Contains("datasource", variables);
        var ids = new HashSet<int>();
        var titles = new List<string>();
        foreach (var panel in root.GetProperty("panels").EnumerateArray())
        {
            Assert.True(ids.Add(panel.GetProperty("id").GetInt32()), "duplicate panel id");
            var grid = panel.GetProperty("gridPos");
            Assert.InRange(grid.GetProperty("x").GetInt32() + grid.GetProperty("w").GetInt32(), 1, 24);
            if (panel.GetProperty("type").GetString() == "row")
            {
                continue;
            }

            titles.Add(panel.GetProperty("title").GetString()!.ToLowerInvariant());
            Assert.Equal("${datasource}", panel.GetProperty("datasource").GetProperty("uid").GetString());
            var targets = panel.GetProperty("targets").EnumerateArray().ToList();
            Assert.NotEmpty(targets);
            Assert.Equal(targets.Count, targets.Select(t => t.GetProperty("refId").GetString()).Distinct(StringComparer.Ordinal).Count());
            foreach (var target in targets)
            {
                // Every dashboard variable a query uses is defined ($__… are Grafana's own).
                foreach (Match m in Variable().Matches(target.GetProperty("expr").GetString()!))
                {
                    Assert.True(m.Groups[1].Value.StartsWith("__", StringComparison.Ordinal) || variables.Contains(m.Groups[1].Value), $"{file}: undefined variable ${m.Groups[1].Value}");
                }
            }
        }

        foreach (var required in requiredTitles)
        {
            Assert.True(titles.Any(t => t.Contains(required, StringComparison.Ordinal)), $"{file}: no panel about '{required}' in: {string.Join(" | ", titles)}");
        }
    }

    [GeneratedRegex(@"\$\{?(\w+)")]
    private static partial Regex Variable();
}

using Xunit;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>deploy/prometheus: the rules load in Prometheus's own checker, and every alert has a unit test that fires it.</summary>
public sealed class PrometheusRulesTests
{
    [Fact]
    public async Task PromtoolCheckRules_OnEveryRuleFile_Succeeds()
    {
        var files = DeployFiles.RuleFiles();
        Assert.NotEmpty(files);

        var (exit, stdout, stderr) = await ToolRunner.RunAsync(ToolRunner.Require("promtool"), ["check", "rules", .. files]);

        Assert.True(exit == 0, stdout + stderr);
    }

    [Fact]
    public async Task PromtoolCheckConfig_OnTheComposePrometheus_Succeeds()
    {
        var (exit, stdout, stderr) = await ToolRunner.RunAsync(ToolRunner.Require("promtool"), ["check", "config", Path.Combine(DeployFiles.PrometheusDirectory, "prometheus.yml")]);

        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("3 rule files found", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PromtoolTestRules_OnEveryTestFile_Succeeds()
    {
        var files = DeployFiles.RuleTestFiles();
        Assert.NotEmpty(files);

        var (exit, stdout, stderr) = await ToolRunner.RunAsync(ToolRunner.Require("promtool"), ["test", "rules", .. files]);

        Assert.True(exit == 0, stdout + stderr);
        Assert.DoesNotContain("FAILED", stdout + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void RuleTests_CoverEveryAlertWithACaseThatFiresIt()
    {
        var alerts = DeployFiles.Rules().Where(r => r.Alert is not null).Select(r => r.Alert!).ToList();
        var fired = DeployFiles.AlertsFiredByTests();

        Assert.True(alerts.Count >= 10, "expected the reference's alerts, found " + string.Join(", ", alerts));
        var untested = alerts.Where(a => !fired.Contains(a)).ToList();
        Assert.True(untested.Count == 0, "no promtool test fires: " + string.Join(", ", untested));
    }

    [Fact]
    public void Rules_IncludeTheReferenceAlertsAndDerivedMetrics()
    {
        var rules = DeployFiles.Rules();
        var alerts = rules.Select(r => r.Alert).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var records = rules.Select(r => r.Record).OfType<string>().ToHashSet(StringComparer.Ordinal);

        string[] reference =
        [
            "PostgreSQLDown", "PostgreSQLReplicationBroken", "PostgreSQLWALAccumulation", "PostgreSQLTransactionWraparound",
            "PostgreSQLLowCacheHitRatio", "PostgreSQLConnectionSaturation", "PostgreSQLLongRunningTransaction", "PostgreSQLTableBloat",
            "PostgreSQLLowDiskSpace", "PostgreSQLFrequentCheckpoints",
        ];
        var missing = reference.Where(a => !alerts.Contains(a))
            .Concat(new[] { "database_health_score", "connection_saturation", "storage_growth_rate", "query_performance_index" }.Where(r => !records.Contains(r)))
            .ToList();
        Assert.True(missing.Count == 0, "missing: " + string.Join(", ", missing));

        // None of the reference's postgres_exporter names survive.
        var names = rules.SelectMany(r => PromQlNames.Extract(r.Expr)).ToHashSet(StringComparer.Ordinal);
        var foreign = names.Where(n => n.StartsWith("pg_", StringComparison.Ordinal) || n.StartsWith("node_", StringComparison.Ordinal)).ToList();
        Assert.True(foreign.Count == 0, "postgres_exporter or node_exporter names: " + string.Join(", ", foreign));
    }

    [Fact]
    public void Runbooks_PointAtHeadingsOfTheOperationsGuide()
    {
        var headings = File.ReadAllLines(Path.Combine(DeployFiles.Root, "docs", "operations.md"))
            .Where(l => l.StartsWith('#'))
            .Select(l => Slug(l.TrimStart('#').Trim()))
            .ToHashSet(StringComparer.Ordinal);
        var runbooks = DeployFiles.RuleFiles().SelectMany(File.ReadAllLines)
            .Select(l => l.Trim()).Where(l => l.StartsWith("runbook:", StringComparison.Ordinal))
            .Select(l => l["runbook:".Length..].Trim().Trim('"')).ToList();

        Assert.NotEmpty(runbooks);
        foreach (var runbook in runbooks)
        {
            Assert.StartsWith("docs/operations.md#", runbook, StringComparison.Ordinal);
            Assert.Contains(runbook[(runbook.IndexOf('#') + 1)..], headings);
        }
    }

    /// <summary>GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.</summary>
    private static string Slug(string heading)
    {
        var chars = new System.Text.StringBuilder();
        foreach (var c in heading.ToLowerInvariant())
        {
            if (char.IsLetterOrDigit(c) || c is '-' or '_')
            {
                chars.Append(c);
            }
            else if (c == ' ')
            {
                chars.Append('-');
            }
        }

        return chars.ToString();
    }
}

using Xunit;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>The name extraction the deploy name checks rely on: it must find every metric and nothing else.</summary>
public sealed class PromQlNamesTests
{
    [Theory]
    [InlineData("postgresql_up == 0", "postgresql_up")]
    [InlineData("sum by (job, instance) (rate(postgresql_database_blocks_total{block_type=\"hit\"}[5m]))", "postgresql_database_blocks_total")]
    [InlineData("a_total / on (job, instance) group_left (db_role) max by (job, instance) (b)", "a_total b")]
    [InlineData("postgresql_database_age > 1500000000 and x > 1.5e9", "postgresql_database_age x")]
    [InlineData("histogram_quantile(0.99, sum by (le, exporter) (rate(h_bucket{job=~\"$job\"}[$__rate_interval])))", "h_bucket")]
    [InlineData("(a > bool 0.99) or on (job, instance) (max by (job, instance) (up) * 0 + 1)", "a up")]
    [InlineData("label_values(target_info{job=\"postgresql\", db_cluster=~\"$cluster\"}, instance)", "target_info")]
    [InlineData("label_values(db_cluster)", "")]
    [InlineData("topk(10, m{name=\"a{b}\"}) unless n offset 5m", "m n")]
    [InlineData("sum(rate(a[5m])) without (instance) / ignoring (x) c", "a c")]
    [InlineData("instance:postgresql_cache_hit_ratio:rate5m{instance=~\"${instance}\"}", "instance:postgresql_cache_hit_ratio:rate5m")]
    [InlineData("max_over_time(deriv(s[1h])[1d:5m])", "s")]
    public void Extract_FromExpression_FindsExactlyTheMetricNames(string expression, string expected)
    {
        var names = PromQlNames.Extract(expression);

        Assert.Equal(expected.Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal), names.Order(StringComparer.Ordinal));
    }
}

using PgOtelGateway.Shared.Translation;
using Xunit;
using Kind = PgOtelGateway.Shared.Translation.PrometheusNaming.MetricKind;

namespace PgOtelGateway.Shared.Tests.Translation;

/// <summary>Golden cases for each OTLP→Prometheus naming rule of DESIGN.md §6.</summary>
public sealed class PrometheusNamingTests
{
    [Theory]
    // Sanitizing and collapsing.
    [InlineData("postgresql.database.size", "By", Kind.Gauge, "postgresql_database_size_bytes")]
    [InlineData("http.server-duration", "s", Kind.Gauge, "http_server_duration_seconds")]
    [InlineData("a..b__c", "", Kind.Gauge, "a_b_c")]
    [InlineData("1st.metric", "", Kind.Gauge, "_1st_metric")]
    [InlineData("ns:metric", "", Kind.Gauge, "ns:metric")]
    [InlineData("métrique.été", "", Kind.Gauge, "m_trique_t")]
    // Unit suffixes.
    [InlineData("latency", "ms", Kind.Gauge, "latency_milliseconds")]
    [InlineData("usage", "%", Kind.Gauge, "usage_percent")]
    [InlineData("throughput", "By/s", Kind.Gauge, "throughput_bytes_per_second")]
    [InlineData("requests", "{request}/min", Kind.Gauge, "requests_per_min")]
    [InlineData("connections", "{connection}", Kind.Gauge, "connections")]
    [InlineData("temperature", "Cel", Kind.Gauge, "temperature_celsius")]
    [InlineData("memory", "MiBy", Kind.Gauge, "memory_mebibytes")]
    // Unit 1 on a gauge is a ratio; not on a counter.
    [InlineData("cpu.utilization", "1", Kind.Gauge, "cpu_utilization_ratio")]
    [InlineData("postgresql.cache_hit_ratio", "1", Kind.Gauge, "postgresql_cache_hit_ratio")]
    [InlineData("events", "1", Kind.Counter, "events_total")]
    // Counters get _total, once.
    [InlineData("postgresql.database.transactions", "{transaction}", Kind.Counter, "postgresql_database_transactions_total")]
    [InlineData("postgresql.wal.bytes", "By", Kind.Counter, "postgresql_wal_bytes_total")]
    [InlineData("requests_total", "", Kind.Counter, "requests_total")]
    [InlineData("io.time", "s", Kind.Counter, "io_time_seconds_total")]
    // No suffix already present is added again.
    [InlineData("disk.read_bytes", "By", Kind.Gauge, "disk_read_bytes")]
    [InlineData("wait_seconds", "s", Kind.Counter, "wait_seconds_total")]
    // Distributions get their suffixes per series.
    [InlineData("request.duration", "ms", Kind.Distribution, "request_duration_milliseconds")]
    public void MetricName_FollowsTheRules(string name, string unit, Kind kind, string expected) =>
        Assert.Equal(expected, PrometheusNaming.MetricName(name, unit, kind));

    [Theory]
    [InlineData("database_name", "database_name")]
    [InlineData("db.cluster", "db_cluster")]
    [InlineData("http.status-code", "http_status_code")]
    [InlineData("2xx", "key_2xx")]
    [InlineData("_private", "key_private")]
    [InlineData("__reserved", "__reserved")]
    public void LabelName_IsSanitized(string key, string expected) => Assert.Equal(expected, PrometheusNaming.LabelName(key));
}

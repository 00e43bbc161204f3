using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Agent.Configuration;
using PgOtelGateway.Agent.Scrape;
using PgOtelGateway.Shared.Configuration;
using Xunit;

namespace PgOtelGateway.Agent.Tests.Scrape;

public sealed class PrometheusConversionTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    private static PrometheusReceiverOptions Options(string job) =>
        ConfigLoader.Load($"""
            receivers:
              prometheus:
                config:
                  scrape_configs:
            {job}
            exporters:
              debug:
            service:
              pipelines:
                metrics:
                  receivers: [prometheus]
                  exporters: [debug]
            """, AgentComponents.CreateRegistry()).Receivers["prometheus"].OptionsAs<PrometheusReceiverOptions>();

    private static PrometheusTarget Target(string relabel = "", string labels = "", bool honor = false, int sampleLimit = 0)
    {
        var options = Options($"""
                  - job_name: pgexp
                    scrape_interval: 15s
                    sample_limit: {sampleLimit}
                    honor_labels: {(honor ? "true" : "false")}
                    static_configs:
                      - targets: ['db1:9187']
            {labels}
            {relabel}
            """);
        var job = options.Config.ScrapeConfigs[0];
        return new PrometheusTarget(job, job.StaticConfigs[0].Targets[0], job.StaticConfigs[0].Labels, options.Resource, new HttpClient());
    }

    private static Metric Metric(ResourceMetrics rm, string name) => rm.ScopeMetrics[0].Metrics.Single(m => m.Name == name);

    private static string Attr(Google.Protobuf.Collections.RepeatedField<OpenTelemetry.Proto.Common.V1.KeyValue> attrs, string key) =>
        attrs.SingleOrDefault(a => a.Key == key)?.Value.StringValue ?? "<absent>";

    [Fact]
    public void FromText_Counter_IsMonotonicCumulativeWithAStartThatMovesOnlyOnReset()
    {
        var target = Target();
        const string help = "# TYPE c counter\n";
        var first = Metric(target.FromText(help + "c{db=\"a\"} 10\n", T0), "c");
        Assert.True(first.Sum.IsMonotonic);
        Assert.Equal(AggregationTemporality.Cumulative, first.Sum.AggregationTemporality);
        var start = first.Sum.DataPoints[0].StartTimeUnixNano;
        Assert.True(start > 0);

        var second = Metric(target.FromText(help + "c{db=\"a\"} 15\n", T0.AddSeconds(15)), "c");
        Assert.Equal(start, second.Sum.DataPoints[0].StartTimeUnixNano);
        Assert.True(second.Sum.DataPoints[0].TimeUnixNano > start);

        // The exporter restarted: the value went down, a new series start.
        var reset = Metric(target.FromText(help + "c{db=\"a\"} 2\n", T0.AddSeconds(30)), "c");
        Assert.Equal((ulong)T0.AddSeconds(30).ToUnixTimeMilliseconds() * 1_000_000, reset.Sum.DataPoints[0].StartTimeUnixNano);
    }

    [Fact]
    public void FromText_GaugeAndUntyped_BecomeGauges()
    {
        var rm = Target().FromText("# TYPE g gauge\ng 1.5\nu{x=\"1\"} NaN\n", T0);
        Assert.Equal(1.5, Metric(rm, "g").Gauge.DataPoints[0].AsDouble);
        Assert.True(double.IsNaN(Metric(rm, "u").Gauge.DataPoints[0].AsDouble));
    }

    [Fact]
    public void FromText_Histogram_BecomesAnOtlpHistogramWithPerBucketCounts()
    {
        var rm = Target().FromText("""
            # HELP rt Response time.
            # TYPE rt histogram
            rt_bucket{op="r",le="0.1"} 1
            rt_bucket{op="r",le="1"} 3
            rt_bucket{op="r",le="+Inf"} 4
            rt_sum{op="r"} 2.5
            rt_count{op="r"} 4
            rt_bucket{op="w",le="0.1"} 0
            rt_bucket{op="w",le="1"} 0
            rt_bucket{op="w",le="+Inf"} 2
            rt_sum{op="w"} 9
            rt_count{op="w"} 2
            """, T0);
        var h = Metric(rm, "rt");
        Assert.Equal("Response time.", h.Description);
        Assert.Equal(AggregationTemporality.Cumulative, h.Histogram.AggregationTemporality);
        Assert.Equal(2, h.Histogram.DataPoints.Count);
        var r = h.Histogram.DataPoints.Single(p => Attr(p.Attributes, "op") == "r");
        Assert.Equal([0.1, 1], r.ExplicitBounds);
        Assert.Equal([1UL, 2, 1], r.BucketCounts);
        Assert.Equal(4UL, r.Count);
        Assert.Equal(2.5, r.Sum);
        Assert.Equal("<absent>", Attr(r.Attributes, "le"));
        Assert.True(r.StartTimeUnixNano > 0);
        var w = h.Histogram.DataPoints.Single(p => Attr(p.Attributes, "op") == "w");
        Assert.Equal([0UL, 0, 2], w.BucketCounts);
    }

    [Fact]
    public void FromText_Summary_BecomesAnOtlpSummary()
    {
        var rm = Target().FromText("""
            # TYPE gc summary
            gc{quantile="0"} 0.001
            gc{quantile="0.5"} 0.002
            gc{quantile="1"} +Inf
            gc_sum 0.2
            gc_count 30
            """, T0);
        var p = Assert.Single(Metric(rm, "gc").Summary.DataPoints);
        Assert.Equal(30UL, p.Count);
        Assert.Equal(0.2, p.Sum);
        Assert.Equal([0, 0.5, 1], p.QuantileValues.Select(q => q.Quantile));
        Assert.True(double.IsPositiveInfinity(p.QuantileValues[2].Value));
        Assert.Empty(p.Attributes);
    }

    [Fact]
    public void FromText_SampleTimestamp_WinsOverTheScrapeTime()
    {
        var rm = Target().FromText("g 1 1600000000000\nh 2\n", T0);
        Assert.Equal(1_600_000_000_000UL * 1_000_000, Metric(rm, "g").Gauge.DataPoints[0].TimeUnixNano);
        Assert.Equal((ulong)T0.ToUnixTimeMilliseconds() * 1_000_000, Metric(rm, "h").Gauge.DataPoints[0].TimeUnixNano);
    }

    [Fact]
    public void FromText_MetricRelabelKeepThenDrop_FiltersBySampleNameAndLabels()
    {
        var target = Target(relabel: """
                    metric_relabel_configs:
                      - source_labels: [__name__]
                        regex: 'pg_.*'
                        action: keep
                      - source_labels: [__name__, datname]
                        regex: 'pg_stat_database_.*;template.*'
                        action: drop
            """);
        var rm = target.FromText("""
            go_goroutines 14
            pg_up 1
            pg_stat_database_xact_commit{datname="postgres"} 5
            pg_stat_database_xact_commit{datname="template1"} 7
            """, T0);
        var names = rm.ScopeMetrics[0].Metrics.Select(m => m.Name).ToList();
        Assert.DoesNotContain("go_goroutines", names);
        Assert.Contains("pg_up", names);
        var commits = Metric(rm, "pg_stat_database_xact_commit").Gauge.DataPoints;
        Assert.Equal("postgres", Attr(Assert.Single(commits).Attributes, "datname"));
        Assert.Equal(4, Metric(rm, "scrape_samples_scraped").Gauge.DataPoints[0].AsDouble);
        Assert.Equal(2, Metric(rm, "scrape_samples_post_metric_relabeling").Gauge.DataPoints[0].AsDouble);
    }

    [Fact]
    public void FromText_Resource_NamesJobAndTargetAndStaticLabelsGoOnPoints()
    {
        var target = Target(labels: """
                        labels:
                          env: prod
            """);
        var rm = target.FromText("m{job=\"theirs\",a=\"1\"} 1\n", T0);
        Assert.Equal("pgexp", Attr(rm.Resource.Attributes, "service.name"));
        Assert.Equal("db1:9187", Attr(rm.Resource.Attributes, "service.instance.id"));
        Assert.Equal("db1", Attr(rm.Resource.Attributes, "server.address"));
        Assert.Equal("9187", Attr(rm.Resource.Attributes, "server.port"));
        var p = Metric(rm, "m").Gauge.DataPoints[0];
        Assert.Equal("prod", Attr(p.Attributes, "env"));
        Assert.Equal("theirs", Attr(p.Attributes, "exported_job"));
        Assert.Equal("1", Attr(p.Attributes, "a"));
    }

    [Fact]
    public void FromText_HonorLabels_KeepsTheTargetsOwnLabel()
    {
        var target = Target(honor: true, labels: """
                        labels:
                          env: prod
            """);
        var p = Metric(target.FromText("m{env=\"staging\"} 1\n", T0), "m").Gauge.DataPoints[0];
        Assert.Equal("staging", Attr(p.Attributes, "env"));
        Assert.Single(p.Attributes);
    }

    [Fact]
    public void Load_TheSeedsPrometheusReceiver_BindsEveryKey()
    {
        var options = Options("""
                  - job_name: 'postgres_exporter'
                    scrape_interval: 15s
                    scrape_timeout: 5s
                    metrics_path: /metrics
                    static_configs:
                      - targets: ['localhost:9187']
                    metric_relabel_configs:
                      - source_labels: [__name__]
                        regex: 'pg_.*'
                        action: keep
            """);
        var job = Assert.Single(options.Config.ScrapeConfigs);
        Assert.Equal("postgres_exporter", job.JobName);
        Assert.Equal(TimeSpan.FromSeconds(15), job.Interval(options.Config.Global));
        Assert.Equal(TimeSpan.FromSeconds(5), job.Timeout(options.Config.Global));
        Assert.Equal(RelabelAction.Keep, job.MetricRelabelConfigs[0].Action);
    }

    [Theory]
    [InlineData("action: replace", "action")]
    [InlineData("regex: '(unclosed'", "regex")]
    public void Load_BadRelabelRule_IsAConfigErrorNamingTheKey(string line, string key)
    {
        var ex = Assert.Throws<ConfigException>(() => Options($"""
                  - job_name: j
                    static_configs:
                      - targets: ['h:1']
                    metric_relabel_configs:
                      - source_labels: [__name__]
                        {line}
            """));
        Assert.Contains("metric_relabel_configs[0]." + key, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_JobWithoutTargets_IsAConfigError()
    {
        var ex = Assert.Throws<ConfigException>(() => Options("""
                  - job_name: j
                    static_configs: []
            """));
        Assert.Contains("static_configs must name at least one target", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromText_OverTheSampleLimit_FailsTheScrape()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Target(sampleLimit: 2).FromText("a 1\nb 2\nc 3\n", T0));
        Assert.Contains("sample_limit 2", ex.Message, StringComparison.Ordinal);
        Assert.Single(Target(sampleLimit: 3).FromText("a 1\nb 2\nc 3\n", T0).ScopeMetrics[0].Metrics, m => m.Name == "c");
    }
}

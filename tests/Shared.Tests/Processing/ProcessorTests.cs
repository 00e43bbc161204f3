using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Processing;
using Xunit;

namespace PgOtelGateway.Shared.Tests.Processing;

public sealed class ProcessorTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static KeyValue Kv(string k, string v) => new() { Key = k, Value = new AnyValue { StringValue = v } };

    private static ExportMetricsServiceRequest Request(string[] resource, params (string Metric, string[] PointAttributes)[] points)
    {
        var rm = new ResourceMetrics { Resource = new Resource() };
        for (var i = 0; i < resource.Length; i += 2)
        {
            rm.Resource.Attributes.Add(Kv(resource[i], resource[i + 1]));
        }

        var sm = new ScopeMetrics { Scope = new InstrumentationScope { Name = "test" } };
        foreach (var group in points.GroupBy(p => p.Metric))
        {
            var metric = new Metric { Name = group.Key, Gauge = new Gauge() };
            foreach (var (_, attrs) in group)
            {
                var p = new NumberDataPoint { AsDouble = 1 };
                for (var i = 0; i < attrs.Length; i += 2)
                {
                    p.Attributes.Add(Kv(attrs[i], attrs[i + 1]));
                }

                metric.Gauge.DataPoints.Add(p);
            }

            sm.Metrics.Add(metric);
        }

        rm.ScopeMetrics.Add(sm);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    private static string Resource(ResourceMetrics rm) => string.Join(",", rm.Resource.Attributes.Select(a => a.Key + "=" + a.Value.StringValue));

    private sealed class Capture : IMetricsConsumer
    {
        public List<ExportMetricsServiceRequest> Received { get; } = [];

        public Exception? Fail { get; set; }

        public TaskCompletionSource? Gate { get; set; }

        public async Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
        {
            if (Gate is not null)
            {
                await Gate.Task;
            }

            if (Fail is not null)
            {
                throw Fail;
            }

            lock (Received)
            {
                Received.Add(request);
            }
        }
    }

    [Fact]
    public async Task GroupByAttrs_MovesListedPointAttributesToTheResource_AndRegroupsPoints()
    {
        var sink = new Capture();
        var processor = new GroupByAttrsProcessor(new GroupByAttrsOptions { Keys = ["db.instance"] }, sink);
        var request = Request(["service.name", "pg"],
            ("size", ["db.instance", "a:5432", "database_name", "x"]),
            ("size", ["db.instance", "b:5432", "database_name", "y"]),
            ("rows", ["db.instance", "a:5432", "table_name", "t"]),
            ("rows", ["table_name", "u"]));

        await processor.ConsumeAsync(request, CancellationToken.None);

        var output = sink.Received.Single().ResourceMetrics;
        Assert.Equal(["service.name=pg,db.instance=a:5432", "service.name=pg,db.instance=b:5432", "service.name=pg"], output.Select(Resource));
        var a = output[0].ScopeMetrics.Single();
        Assert.Equal("test", a.Scope.Name);
        Assert.Equal(["size", "rows"], a.Metrics.Select(m => m.Name));
        Assert.Equal("database_name", a.Metrics[0].Gauge.DataPoints.Single().Attributes.Single().Key);
        Assert.Equal("rows", output[2].ScopeMetrics.Single().Metrics.Single().Name);
    }

    [Fact]
    public async Task GroupByAttrs_WithNoKeys_CompactsIdenticalResources()
    {
        var sink = new Capture();
        var processor = new GroupByAttrsProcessor(new GroupByAttrsOptions(), sink);
        var request = Request(["service.name", "pg"], ("m1", ["k", "1"]));
        request.ResourceMetrics.Add(Request(["service.name", "pg"], ("m1", ["k", "2"]), ("m2", [])).ResourceMetrics);
        request.ResourceMetrics.Add(Request(["service.name", "other"], ("m1", [])).ResourceMetrics);

        await processor.ConsumeAsync(request, CancellationToken.None);

        var output = sink.Received.Single().ResourceMetrics;
        Assert.Equal(2, output.Count);
        var merged = output[0].ScopeMetrics.Single();
        Assert.Equal(2, merged.Metrics.Single(m => m.Name == "m1").Gauge.DataPoints.Count);
        Assert.Single(merged.Metrics, m => m.Name == "m2");
    }

    [Fact]
    public async Task Batch_AcknowledgesOnlyAfterDownstreamAccepted()
    {
        var sink = new Capture { Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        using var batch = new BatchProcessor(new BatchOptions { SendBatchSize = 2, Timeout = TimeSpan.FromSeconds(10) }, sink, TimeProvider.System);

        var first = batch.ConsumeAsync(Request([], ("m", [])), CancellationToken.None);
        var second = batch.ConsumeAsync(Request([], ("m", [])), CancellationToken.None);
        await Task.Delay(200);
        Assert.False(first.IsCompleted, "acknowledged before downstream took the data");

        sink.Gate.SetResult();
        await Task.WhenAll(first, second).WaitAsync(Timeout);
        Assert.Equal(2, MetricsCounting.DataPoints(sink.Received.Single()));
    }

    [Fact]
    public async Task Batch_WhenDownstreamRefuses_FailsEveryCallerInTheBatch()
    {
        var sink = new Capture { Fail = new PipelineRefusedException(RefusalReason.QueueFull, "full", TimeSpan.FromSeconds(1)) };
        using var batch = new BatchProcessor(new BatchOptions { SendBatchSize = 100, Timeout = TimeSpan.FromMilliseconds(50) }, sink, TimeProvider.System);

        var a = batch.ConsumeAsync(Request([], ("m", [])), CancellationToken.None);
        var b = batch.ConsumeAsync(Request([], ("m", [])), CancellationToken.None);

        await Assert.ThrowsAsync<PipelineRefusedException>(() => a.WaitAsync(Timeout));
        await Assert.ThrowsAsync<PipelineRefusedException>(() => b.WaitAsync(Timeout));
    }

    [Fact]
    public async Task Batch_SplitsAtTheMaxSize_InsideAMetric_AndFlushesOnStop()
    {
        var sink = new Capture();
        using var batch = new BatchProcessor(new BatchOptions { SendBatchSize = 1000, SendBatchMaxSize = 1000, Timeout = TimeSpan.FromSeconds(30) }, sink, TimeProvider.System);
        var points = Enumerable.Range(0, 2500).Select(i => ("m", new[] { "i", i.ToString(System.Globalization.CultureInfo.InvariantCulture) })).ToArray();

        var pending = batch.ConsumeAsync(Request(["service.name", "pg"], points), CancellationToken.None);
        await pending.WaitAsync(Timeout);
        await batch.StopAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal([1000, 1000, 500], sink.Received.Select(MetricsCounting.DataPoints));
        Assert.All(sink.Received, r => Assert.Equal("service.name=pg", Resource(r.ResourceMetrics[0])));
    }

    [Theory]
    [InlineData(AttributeActionKind.Insert, "present", "kept")]
    [InlineData(AttributeActionKind.Insert, "absent", "new")]
    [InlineData(AttributeActionKind.Update, "present", "new")]
    [InlineData(AttributeActionKind.Update, "absent", null)]
    [InlineData(AttributeActionKind.Upsert, "present", "new")]
    [InlineData(AttributeActionKind.Upsert, "absent", "new")]
    [InlineData(AttributeActionKind.Delete, "present", null)]
    public async Task Resource_Actions_FollowTheCollector(AttributeActionKind action, string state, string? expected)
    {
        var sink = new Capture();
        var processor = new ResourceProcessor(new ResourceProcessorOptions { Attributes = [new AttributeAction { Key = "env", Value = "new", Action = action }] }, sink);
        var request = Request(state == "present" ? ["env", "kept"] : [], ("m", []));

        await processor.ConsumeAsync(request, CancellationToken.None);

        var attrs = sink.Received.Single().ResourceMetrics[0].Resource.Attributes;
        Assert.Equal(expected, attrs.SingleOrDefault(a => a.Key == "env")?.Value.StringValue);
    }

    [Fact]
    public async Task Resource_FromAttribute_CopiesAnotherAttribute()
    {
        var sink = new Capture();
        var processor = new ResourceProcessor(new ResourceProcessorOptions { Attributes = [new AttributeAction { Key = "db.version", FromAttribute = "postgresql.version", Action = AttributeActionKind.Insert }] }, sink);

        await processor.ConsumeAsync(Request(["postgresql.version", "15.4"], ("m", [])), CancellationToken.None);

        Assert.Equal("15.4", sink.Received.Single().ResourceMetrics[0].Resource.Attributes.Single(a => a.Key == "db.version").Value.StringValue);
    }

    [Fact]
    public async Task Filter_ExcludesByRegexpAndIncludesStrictly_AndDropsEmptyResources()
    {
        var sink = new Capture();
        var exclude = new FilterProcessor(new FilterOptions { Metrics = new FilterMetricsOptions { Exclude = new MetricNameMatch { MatchType = NameMatchType.Regexp, MetricNames = [".*_test_.*"] } } }, sink);
        await exclude.ConsumeAsync(Request([], ("pg_test_x", []), ("pg_size", [])), CancellationToken.None);
        Assert.Equal(["pg_size"], sink.Received.Single().ResourceMetrics.Single().ScopeMetrics.Single().Metrics.Select(m => m.Name));

        var include = new FilterProcessor(new FilterOptions { Metrics = new FilterMetricsOptions { Include = new MetricNameMatch { MetricNames = ["wanted"] } } }, sink);
        await include.ConsumeAsync(Request([], ("other", [])), CancellationToken.None);
        Assert.Single(sink.Received);
    }

    [Fact]
    public async Task MetricsTransform_AddsAndRenamesLabels_AndInsertCopies()
    {
        var sink = new Capture();
        var processor = new MetricsTransformProcessor(new MetricsTransformOptions
        {
            Transforms =
            [
                new MetricTransform { Include = "pg_stat_database_.*", MatchType = NameMatchType.Regexp, Operations = [new TransformOperation { Action = OperationAction.AddLabel, NewLabel = "db.operation", NewValue = "database_stats" }] },
                new MetricTransform { Include = "pg_stat_database_xact", Action = TransformAction.Insert, NewName = "pg_xact_copy", Operations = [new TransformOperation { Action = OperationAction.UpdateLabel, Label = "datname", NewLabel = "database_name" }] },
            ],
        }, sink);

        await processor.ConsumeAsync(Request([], ("pg_stat_database_xact", ["datname", "shop"]), ("other", [])), CancellationToken.None);

        var metrics = sink.Received.Single().ResourceMetrics[0].ScopeMetrics[0].Metrics;
        var original = metrics.Single(m => m.Name == "pg_stat_database_xact").Gauge.DataPoints.Single().Attributes;
        Assert.Equal(["datname=shop", "db.operation=database_stats"], original.Select(a => a.Key + "=" + a.Value.StringValue));
        var copy = metrics.Single(m => m.Name == "pg_xact_copy").Gauge.DataPoints.Single().Attributes;
        Assert.Contains(copy, a => a.Key == "database_name");
        Assert.Empty(metrics.Single(m => m.Name == "other").Gauge.DataPoints.Single().Attributes);
    }

    [Fact]
    public async Task MetricsTransform_UpdateLabel_OnAnAttributeObjectSharedWithAnotherMetric_RenamesOnlyTheTransformedMetric()
    {
        // The agent shares one attribute object among the points of several metrics (a table's name).
        var sink = new Capture();
        var processor = new MetricsTransformProcessor(new MetricsTransformOptions
        {
            Transforms = [new MetricTransform { Include = "renamed", Operations = [new TransformOperation { Action = OperationAction.UpdateLabel, Label = "table_name", NewLabel = "relname" }] }],
        }, sink);
        var shared = new KeyValue { Key = "table_name", Value = new AnyValue { StringValue = "orders" } };
        var request = Request([], ("renamed", []), ("kept", []));
        foreach (var metric in request.ResourceMetrics[0].ScopeMetrics[0].Metrics)
        {
            metric.Gauge.DataPoints[0].Attributes.Add(shared);
        }

        await processor.ConsumeAsync(request, CancellationToken.None).WaitAsync(Timeout);

        var metrics = sink.Received.Single().ResourceMetrics[0].ScopeMetrics[0].Metrics;
        Assert.Equal("relname", metrics.Single(m => m.Name == "renamed").Gauge.DataPoints[0].Attributes.Single().Key);
        Assert.Equal("table_name", metrics.Single(m => m.Name == "kept").Gauge.DataPoints[0].Attributes.Single().Key);
    }

    [Fact]
    public async Task MemoryLimiter_AboveTheSoftLimit_RefusesWithARetryDelay()
    {
        var sink = new Capture();
        using var limiter = new MemoryLimiterProcessor("memory_limiter", new MemoryLimiterOptions { LimitMib = 1, SpikeLimitMib = 0, CheckInterval = TimeSpan.FromMilliseconds(100) }, sink, NullLogger<MemoryLimiterProcessor>.Instance, TimeProvider.System);

        var refused = await Assert.ThrowsAsync<PipelineRefusedException>(() => limiter.ConsumeAsync(Request([], ("m", [])), CancellationToken.None));

        Assert.Equal(RefusalReason.MemoryLimit, refused.Reason);
        Assert.True(refused.RetryAfter > TimeSpan.Zero);
        Assert.Empty(sink.Received);
    }

    [Fact]
    public async Task MemoryLimiter_UnderTheLimit_PassesDataOn()
    {
        var sink = new Capture();
        using var limiter = new MemoryLimiterProcessor("memory_limiter", new MemoryLimiterOptions { LimitMib = 1_000_000, CheckInterval = TimeSpan.FromSeconds(1) }, sink, NullLogger<MemoryLimiterProcessor>.Instance, TimeProvider.System);

        await limiter.ConsumeAsync(Request([], ("m", [])), CancellationToken.None);

        Assert.Single(sink.Received);
    }

    [Fact]
    public void SeedProcessorConfig_LoadsUnchanged()
    {
        var registry = ProcessorCatalog.Shared().RegisterWith(new ComponentRegistry());
        var config = ConfigLoader.Load("""
            processors:
              resource:
                attributes:
                  - key: service.name
                    value: "postgresql"
                    action: insert
                  - key: db.version
                    from_attribute: postgresql.version
                    action: insert
              batch:
                send_batch_size: 10000
                send_batch_max_size: 20000
                timeout: 5s
              memory_limiter:
                check_interval: 1s
                limit_percentage: 75
                spike_limit_percentage: 25
              metricstransform:
                transforms:
                  - include: pg_stat_database_.*
                    match_type: regexp
                    action: update
                    operations:
                      - action: add_label
                        new_label: db.operation
                        new_value: database_stats
              filter:
                metrics:
                  exclude:
                    match_type: regexp
                    metric_names:
                      - .*_test_.*
                      - .*_debug_.*
              groupbyattrs:
                keys:
                  - db.cluster
                  - db.instance
                  - db.operation
            """, registry);

        Assert.Equal(6, config.Processors.Count);
        Assert.Equal(20000, config.Processors["batch"].OptionsAs<BatchOptions>().SendBatchMaxSize);
        Assert.Equal(3, config.Processors["groupbyattrs"].OptionsAs<GroupByAttrsOptions>().Keys.Count);
    }
}

using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Shared.Pipeline;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Admin;

public sealed class InstanceTrackerTests
{
    private readonly ManualTimeProvider _clock = new();

    [Fact]
    public void Observe_PostgresResource_RecordsClusterInstanceRoleAgentAndLastSeen()
    {
        var tracker = new InstanceTracker(time: _clock);

        tracker.Observe(TestRequests.Postgres("pg-orders", "10.1.0.5:5432", "primary", "agent-1", metrics: 2, pointsPerMetric: 3));

        var instance = Assert.Single(tracker.Snapshot());
        Assert.Equal("pg-orders", instance.Cluster);
        Assert.Equal("10.1.0.5:5432", instance.Instance);
        Assert.Equal("primary", instance.Role);
        Assert.Equal("agent-1", Assert.Single(instance.Agents).Id);
        Assert.Equal(_clock.GetUtcNow().UtcDateTime, instance.LastSeen);
        Assert.Equal(6, instance.Series);
    }

    [Theory]
    [InlineData("nginx", false)]
    [InlineData("postgresql", true)]
    public void Observe_DependsOnServiceNameOrDbSystem(string serviceName, bool tracked)
    {
        var tracker = new InstanceTracker(time: _clock);
        var request = TestRequests.Postgres("c", "h:5432", "primary", "a", 1, 1, serviceName: serviceName);
        var attributes = request.ResourceMetrics[0].Resource.Attributes;
        attributes.Remove(attributes.First(a => a.Key == "db.system"));

        tracker.Observe(request);

        Assert.Equal(tracked ? 1 : 0, tracker.Snapshot().Count);
    }

    [Fact]
    public void Observe_ResourceWithoutDbInstance_IsIgnored()
    {
        var tracker = new InstanceTracker(time: _clock);
        var request = TestRequests.Postgres("c", "h:5432", "primary", "a", 1, 1);
        var attributes = request.ResourceMetrics[0].Resource.Attributes;
        attributes.Remove(attributes.First(a => a.Key == "db.instance"));

        tracker.Observe(request);

        Assert.Empty(tracker.Snapshot());
    }

    [Fact]
    public void Observe_HaPairSendingTheSameSeries_ListsBothAgentsAndCountsEachSeriesOnce()
    {
        var tracker = new InstanceTracker(time: _clock);

        tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "agent-b", metrics: 10, pointsPerMetric: 10));
        var oneAgent = Assert.Single(tracker.Snapshot()).Series;
        tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "agent-a", metrics: 10, pointsPerMetric: 10));

        var instance = Assert.Single(tracker.Snapshot());
        Assert.Equal(["agent-a", "agent-b"], instance.Agents.Select(a => a.Id));

        // The same identities land in the same registers: the second agent adds nothing.
        Assert.Equal(oneAgent, instance.Series);
        Assert.InRange(instance.Series, 95, 105);
    }

    [Fact]
    public void Observe_RoleChange_ShowsTheLatestRole()
    {
        var tracker = new InstanceTracker(time: _clock);

        tracker.Observe(TestRequests.Postgres("pg", "h:5432", "replica", "a", 1, 1));
        _clock.Advance(TimeSpan.FromSeconds(10));
        tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "a", 1, 1));

        Assert.Equal("primary", Assert.Single(tracker.Snapshot()).Role);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(50)]
    [InlineData(300)]
    public void Series_SmallCounts_AreWithinThreePercent(int series)
    {
        var tracker = new InstanceTracker(time: _clock);

        tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "a", metrics: 1, pointsPerMetric: series));

        var estimate = Assert.Single(tracker.Snapshot()).Series;
        Assert.InRange(estimate, Math.Floor(series * 0.97), Math.Ceiling(series * 1.03));
    }

    [Theory]
    [InlineData(20_000)]
    [InlineData(200_000)]
    public void Series_LargeCounts_AreWithinFivePercent(int series)
    {
        var tracker = new InstanceTracker(time: _clock);

        tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "a", metrics: series / 1000, pointsPerMetric: 1000));

        var estimate = Assert.Single(tracker.Snapshot()).Series;
        Assert.InRange(estimate, series * 0.95, series * 1.05);
    }

    [Fact]
    public void Series_ThatStopped_AreForgottenAfterTwoWindows()
    {
        var tracker = new InstanceTracker(new InstanceTrackerOptions { SeriesWindow = TimeSpan.FromMinutes(5) }, _clock);
        tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "a", metrics: 1, pointsPerMetric: 200, seriesPrefix: "old"));

        _clock.Advance(TimeSpan.FromMinutes(6));
        tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "a", metrics: 1, pointsPerMetric: 100, seriesPrefix: "new"));
        var both = Assert.Single(tracker.Snapshot()).Series;

        _clock.Advance(TimeSpan.FromMinutes(5));
        tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "a", metrics: 1, pointsPerMetric: 100, seriesPrefix: "new"));
        var recent = Assert.Single(tracker.Snapshot()).Series;

        Assert.InRange(both, 285, 315);
        Assert.InRange(recent, 95, 105);
    }

    [Fact]
    public void PointsPerSecond_AtASteadyRate_SettlesAtThatRate()
    {
        var tracker = new InstanceTracker(time: _clock);

        // 200 points every 10 s = 20 points/s, for 10 minutes.
        for (var i = 0; i < 60; i++)
        {
            tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "a", metrics: 20, pointsPerMetric: 10));
            _clock.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.InRange(Assert.Single(tracker.Snapshot()).PointsPerSecond, 18, 22);
    }

    [Fact]
    public void PointsPerSecond_InTheFirstMinute_IsNeitherZeroNorInflated()
    {
        var tracker = new InstanceTracker(time: _clock);

        // 200 points every 10 s for 30 s.
        for (var i = 0; i < 3; i++)
        {
            tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "a", metrics: 20, pointsPerMetric: 10));
            _clock.Advance(TimeSpan.FromSeconds(10));
        }

        Assert.InRange(Assert.Single(tracker.Snapshot()).PointsPerSecond, 10, 30);
    }

    [Fact]
    public void PointsPerSecond_AfterDataStops_DecaysTowardsZero()
    {
        var tracker = new InstanceTracker(time: _clock);
        for (var i = 0; i < 60; i++)
        {
            tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "a", metrics: 20, pointsPerMetric: 10));
            _clock.Advance(TimeSpan.FromSeconds(10));
        }

        _clock.Advance(TimeSpan.FromMinutes(5));

        Assert.InRange(Assert.Single(tracker.Snapshot()).PointsPerSecond, 0, 0.2);
    }

    [Fact]
    public void Instance_NotSeenForTheRetention_IsEvicted()
    {
        var tracker = new InstanceTracker(new InstanceTrackerOptions { Retention = TimeSpan.FromHours(1) }, _clock);
        tracker.Observe(TestRequests.Postgres("pg", "old:5432", "primary", "a", 1, 1));
        _clock.Advance(TimeSpan.FromMinutes(59));
        tracker.Observe(TestRequests.Postgres("pg", "new:5432", "primary", "a", 1, 1));
        Assert.Equal(2, tracker.Snapshot().Count);

        _clock.Advance(TimeSpan.FromMinutes(2));

        Assert.Equal("new:5432", Assert.Single(tracker.Snapshot()).Instance);
        Assert.Equal(1, tracker.Count);
    }

    [Fact]
    public void Instance_NotSeenForTheRetention_IsEvictedFromTheHotPathWithoutSnapshots()
    {
        var tracker = new InstanceTracker(new InstanceTrackerOptions { Retention = TimeSpan.FromHours(1) }, _clock);
        tracker.Observe(TestRequests.Postgres("pg", "old:5432", "primary", "a", 1, 1));
        _clock.Advance(TimeSpan.FromMinutes(61));

        tracker.Observe(TestRequests.Postgres("pg", "new:5432", "primary", "a", 1, 1));

        Assert.Equal(1, tracker.Count);
    }

    [Fact]
    public void Agent_NotSeenForTheRetention_LeavesTheList()
    {
        var tracker = new InstanceTracker(new InstanceTrackerOptions { Retention = TimeSpan.FromHours(1) }, _clock);
        tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "agent-1", 1, 1));
        for (var i = 0; i < 7; i++)
        {
            _clock.Advance(TimeSpan.FromMinutes(10));
            tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", "agent-2", 1, 1));
        }

        Assert.Equal("agent-2", Assert.Single(Assert.Single(tracker.Snapshot()).Agents).Id);
    }

    [Fact]
    public void Agents_BeyondTheCap_ReplaceTheOneSeenLongestAgo()
    {
        var tracker = new InstanceTracker(new InstanceTrackerOptions { MaxAgentsPerInstance = 2 }, _clock);
        foreach (var agent in new[] { "a1", "a2", "a3" })
        {
            tracker.Observe(TestRequests.Postgres("pg", "h:5432", "primary", agent, 1, 1));
            _clock.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(["a2", "a3"], Assert.Single(tracker.Snapshot()).Agents.Select(a => a.Id));
    }

    [Fact]
    public void Instances_BeyondMaxInstances_AreCountedNotTracked()
    {
        var tracker = new InstanceTracker(new InstanceTrackerOptions { MaxInstances = 3 }, _clock);

        for (var i = 0; i < 5; i++)
        {
            tracker.Observe(TestRequests.Postgres("pg", $"h{i}:5432", "primary", "a", 1, 1));
        }

        Assert.Equal(3, tracker.Snapshot().Count);
        Assert.Equal(2, tracker.OverLimitResources);
    }

    [Fact]
    public void Snapshot_IsSortedByClusterThenInstance()
    {
        var tracker = new InstanceTracker(time: _clock);
        tracker.Observe(TestRequests.Postgres("b", "h2:5432", "primary", "a", 1, 1));
        tracker.Observe(TestRequests.Postgres("a", "h9:5432", "primary", "a", 1, 1));
        tracker.Observe(TestRequests.Postgres("b", "h1:5432", "primary", "a", 1, 1));

        Assert.Equal(["a/h9:5432", "b/h1:5432", "b/h2:5432"], tracker.Snapshot().Select(i => i.Cluster + "/" + i.Instance));
    }

    [Fact]
    public void Series_CountAllPointKinds()
    {
        var tracker = new InstanceTracker(time: _clock);
        var request = TestRequests.Postgres("pg", "h:5432", "primary", "a", 0, 0);
        var metrics = request.ResourceMetrics[0].ScopeMetrics[0].Metrics;
        var sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Cumulative };
        sum.DataPoints.Add(new NumberDataPoint { AsInt = 1 });
        metrics.Add(new Metric { Name = "s", Sum = sum });
        var histogram = new Histogram();
        histogram.DataPoints.Add(new HistogramDataPoint { Count = 1 });
        metrics.Add(new Metric { Name = "h", Histogram = histogram });
        var exponential = new ExponentialHistogram();
        exponential.DataPoints.Add(new ExponentialHistogramDataPoint { Count = 1 });
        metrics.Add(new Metric { Name = "e", ExponentialHistogram = exponential });
        var summary = new Summary();
        var withAttribute = new SummaryDataPoint { Count = 1 };
        withAttribute.Attributes.Add(new KeyValue { Key = "k", Value = new AnyValue { IntValue = 7 } });
        summary.DataPoints.Add(new SummaryDataPoint { Count = 1 });
        summary.DataPoints.Add(withAttribute);
        metrics.Add(new Metric { Name = "q", Summary = summary });

        tracker.Observe(request);

        Assert.Equal(5, Assert.Single(tracker.Snapshot()).Series);
    }

    [Fact]
    public async Task Track_RecordsThenHandsTheRequestOn()
    {
        var tracker = new InstanceTracker(time: _clock);
        var next = new RecordingConsumer();
        var stage = tracker.Track(next);
        var request = TestRequests.Postgres("pg", "h:5432", "primary", "a", 1, 1);

        await stage.ConsumeAsync(request, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Same(request, Assert.Single(next.Received));
        Assert.Single(tracker.Snapshot());
    }

    [Fact]
    public void Observe_KnownInstance_AllocatesNothing()
    {
        var tracker = new InstanceTracker(time: _clock);
        var request = TestRequests.Postgres("pg", "h:5432", "primary", "a", metrics: 50, pointsPerMetric: 20);

        // The first rounds warm up: the first sighting allocates, and the runtime may allocate once while it
        // recompiles a hot loop. Steady state is the last round.
        long allocated = -1;
        for (var round = 0; round < 3; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 100; i++)
            {
                tracker.Observe(request);
            }

            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Assert.Equal(0, allocated);
    }

    [Fact]
    public async Task Observe_FromManyThreads_KeepsEveryInstanceAndAgent()
    {
        var tracker = new InstanceTracker(time: _clock);
        var tasks = Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 500; i++)
            {
                tracker.Observe(TestRequests.Postgres("pg", $"h{i % 10}:5432", "primary", $"agent-{t}", 2, 5));
            }
        })).ToArray();

        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));

        var instances = tracker.Snapshot();
        Assert.Equal(10, instances.Count);
        Assert.All(instances, i => Assert.Equal(4, i.Agents.Count));
        Assert.All(instances, i => Assert.Equal(10, i.Series));
    }

    private sealed class RecordingConsumer : IMetricsConsumer
    {
        public List<ExportMetricsServiceRequest> Received { get; } = [];

        public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
        {
            Received.Add(request);
            return Task.CompletedTask;
        }
    }
}

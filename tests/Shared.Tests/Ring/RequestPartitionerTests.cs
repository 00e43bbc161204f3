using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Ring;
using Xunit;

namespace PgOtelGateway.Shared.Tests.Ring;

public sealed class RequestPartitionerTests
{
    private static readonly HashRing Ring = new(["g0", "g1", "g2", "g3"], 128);

    private static KeyValue Kv(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };

    /// <summary>One resource per instance, 40 gauges and one sum with 5 attribute sets each.</summary>
    private static ExportMetricsServiceRequest Request(int instances, string agent = "agent-a", bool reverseAttributes = false)
    {
        var request = new ExportMetricsServiceRequest();
        for (var i = 0; i < instances; i++)
        {
            var rm = new ResourceMetrics { Resource = new Resource(), SchemaUrl = "https://opentelemetry.io/schemas/1.26.0" };
            rm.Resource.Attributes.Add(Kv("service.name", "postgresql"));
            rm.Resource.Attributes.Add(Kv("service.instance.id", $"db{i}:5432"));
            rm.Resource.Attributes.Add(Kv("agent.id", agent));
            var sm = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent/postgresql", Version = "1.0.0" } };
            for (var m = 0; m < 40; m++)
            {
                var metric = new Metric { Name = $"postgresql.metric_{m}", Unit = "1", Gauge = new Gauge() };
                for (var a = 0; a < 5; a++)
                {
                    var point = new NumberDataPoint { TimeUnixNano = 1_700_000_000_000_000_000UL, AsDouble = a };
                    var attrs = new[] { Kv("database_name", $"d{a}"), Kv("schema", "public") };
                    point.Attributes.Add(reverseAttributes ? attrs.Reverse() : attrs);
                    metric.Gauge.DataPoints.Add(point);
                }

                sm.Metrics.Add(metric);
            }

            var sum = new Metric { Name = "postgresql.commits", Sum = new Sum { IsMonotonic = true, AggregationTemporality = AggregationTemporality.Cumulative } };
            sum.Sum.DataPoints.Add(new NumberDataPoint { AsInt = 5 });
            sm.Metrics.Add(sum);
            rm.ScopeMetrics.Add(sm);
            request.ResourceMetrics.Add(rm);
        }

        return request;
    }

    private static List<(int Owner, ExportMetricsServiceRequest Part)> Partition(ExportMetricsServiceRequest request, RoutingKey key)
    {
        var parts = new List<(int, ExportMetricsServiceRequest)>();
        RequestPartitioner.Partition(request, Ring, key, parts);
        return parts;
    }

    /// <summary>(instance, metric, attributes) → owner, read back from the parts.</summary>
    private static Dictionary<string, int> Owners(List<(int Owner, ExportMetricsServiceRequest Part)> parts)
    {
        var owners = new Dictionary<string, int>();
        foreach (var (owner, part) in parts)
        {
            foreach (var rm in part.ResourceMetrics)
            {
                var instance = rm.Resource.Attributes.First(a => a.Key == "service.instance.id").Value.StringValue;
                foreach (var sm in rm.ScopeMetrics)
                {
                    foreach (var metric in sm.Metrics)
                    {
                        var points = metric.DataCase == Metric.DataOneofCase.Gauge ? metric.Gauge.DataPoints : metric.Sum.DataPoints;
                        foreach (var p in points)
                        {
                            var attrs = string.Join(",", p.Attributes.Select(a => a.Key + "=" + a.Value.StringValue).Order());
                            owners.Add($"{instance}|{metric.Name}|{attrs}", owner);
                        }
                    }
                }
            }
        }

        return owners;
    }

    [Fact]
    public void Partition_StreamKey_SplitsByOwnerAndKeepsEveryPointAndItsStructure()
    {
        var request = Request(6);
        var total = MetricsCounting.DataPoints(request);
        var parts = Partition(request, RoutingKey.Stream);

        Assert.Equal(4, parts.Count);
        Assert.Equal(total, parts.Sum(p => MetricsCounting.DataPoints(p.Part)));
        Assert.Equal(4, parts.Select(p => p.Owner).Distinct().Count());
        foreach (var (_, part) in parts)
        {
            foreach (var rm in part.ResourceMetrics)
            {
                Assert.Equal("https://opentelemetry.io/schemas/1.26.0", rm.SchemaUrl);
                Assert.Single(rm.ScopeMetrics);
                Assert.Equal("pgotel-agent/postgresql", rm.ScopeMetrics[0].Scope.Name);
                Assert.All(rm.ScopeMetrics[0].Metrics, m => Assert.True(MetricsCounting.DataPoints(m) > 0));
            }

            var sums = part.ResourceMetrics.SelectMany(r => r.ScopeMetrics).SelectMany(s => s.Metrics).Where(m => m.DataCase == Metric.DataOneofCase.Sum);
            Assert.All(sums, s => Assert.True(s.Sum.IsMonotonic));
        }

        // Each series has exactly one owner, and the same one whichever request it comes in.
        var again = Owners(Partition(Request(6), RoutingKey.Stream));
        Assert.Equal(again, Owners(parts));
    }

    [Fact]
    public void Partition_HaPairDifferingInAgentIdAndAttributeOrder_SendsEachSeriesToTheSameOwner()
    {
        var a = Owners(Partition(Request(3, "agent-a"), RoutingKey.Stream));
        var b = Owners(Partition(Request(3, "agent-b", reverseAttributes: true), RoutingKey.Stream));
        Assert.Equal(a, b);
    }

    [Fact]
    public void Partition_ResourceKey_KeepsEachResourceWhole()
    {
        var request = Request(12);
        var parts = Partition(request, RoutingKey.Resource);
        Assert.True(parts.Count > 1);
        foreach (var (owner, part) in parts)
        {
            foreach (var rm in part.ResourceMetrics)
            {
                Assert.Equal(41, rm.ScopeMetrics[0].Metrics.Count);
                Assert.Equal(Ring.OwnerOf(StreamHash.OfResource(rm.Resource)), owner);
            }
        }
    }

    [Fact]
    public void Partition_OneOwner_ReturnsTheRequestItselfWithoutCopying()
    {
        var request = Request(5);
        var parts = Partition(request, RoutingKey.Service);
        Assert.Single(parts);
        Assert.Same(request, parts[0].Part);

        var single = new List<(int, ExportMetricsServiceRequest)>();
        RequestPartitioner.Partition(request, new HashRing(["only"], 128), RoutingKey.Stream, single);
        Assert.Same(request, Assert.Single(single).Item2);
    }

    [Fact]
    public void Partition_MetricKey_SendsEachMetricNameToOneOwnerAcrossResources()
    {
        var parts = Partition(Request(8), RoutingKey.Metric);
        var ownersByName = new Dictionary<string, HashSet<int>>();
        foreach (var (owner, part) in parts)
        {
            foreach (var metric in part.ResourceMetrics.SelectMany(r => r.ScopeMetrics).SelectMany(s => s.Metrics))
            {
                if (!ownersByName.TryGetValue(metric.Name, out var set))
                {
                    ownersByName[metric.Name] = set = [];
                }

                set.Add(owner);
            }
        }

        Assert.Equal(41, ownersByName.Count);
        Assert.All(ownersByName.Values, s => Assert.Single(s));
        Assert.True(ownersByName.Values.Select(s => s.First()).Distinct().Count() > 1);
    }

    [Fact]
    public void Partition_EmptyRing_ReturnsTheWholeRequestWithoutOwner()
    {
        var request = Request(2);
        var parts = new List<(int, ExportMetricsServiceRequest)>();
        RequestPartitioner.Partition(request, HashRing.Empty, RoutingKey.Stream, parts);
        Assert.Equal((-1, request), Assert.Single(parts));
    }

    [Fact]
    public void OfResource_WithoutIdentityAttributes_UsesEveryAttribute()
    {
        var a = new Resource();
        a.Attributes.Add(Kv("host.name", "h1"));
        var b = new Resource();
        b.Attributes.Add(Kv("host.name", "h2"));
        Assert.NotEqual(StreamHash.OfResource(a), StreamHash.OfResource(b));

        a.Attributes.Add(Kv("service.instance.id", "x"));
        b.Attributes.Add(Kv("service.instance.id", "x"));
        Assert.Equal(StreamHash.OfResource(a), StreamHash.OfResource(b));
    }
}

using OpenTelemetry.Proto.Common.V1;
using PgOtelGateway.Gateway.Dedup;
using Xunit;
using static PgOtelGateway.Gateway.Tests.Dedup.DedupTestData;

namespace PgOtelGateway.Gateway.Tests.Dedup;

public sealed class PointIdentityTests
{
    private static readonly PointIdentity Default = new(new DedupeOptions().IdentifierKeys);

    private static UInt128 Of(PointIdentity identity, string instance, string agent, string metric, ulong time, params KeyValue[] attributes)
    {
        var request = Agent(instance, agent, time, tables: 0);
        Assert.True(identity.TryResource(request.ResourceMetrics[0].Resource, out var resource));
        var list = new Google.Protobuf.Collections.RepeatedField<KeyValue> { attributes };
        return identity.Point(identity.Metric(resource, metric), list, time);
    }

    [Fact]
    public void Point_HaPairWithDifferentAgentIds_HasTheSameIdentity()
    {
        Assert.Equal(
            Of(Default, "pg1:5432", "agent-a", "m", 10, Kv("table_name", "t")),
            Of(Default, "pg1:5432", "agent-b", "m", 10, Kv("table_name", "t")));
    }

    [Fact]
    public void Point_AttributesInAnotherOrder_HasTheSameIdentity()
    {
        Assert.Equal(
            Of(Default, "pg1:5432", "a", "m", 10, Kv("x", "1"), Kv("y", "2")),
            Of(Default, "pg1:5432", "a", "m", 10, Kv("y", "2"), Kv("x", "1")));
    }

    [Theory]
    [InlineData("pg2:5432", "m", 10UL, "t")]
    [InlineData("pg1:5432", "m2", 10UL, "t")]
    [InlineData("pg1:5432", "m", 11UL, "t")]
    [InlineData("pg1:5432", "m", 10UL, "u")]
    public void Point_AnyIdentifierPartDiffers_HasAnotherIdentity(string instance, string metric, ulong time, string table)
    {
        Assert.NotEqual(
            Of(Default, "pg1:5432", "a", "m", 10, Kv("table_name", "t")),
            Of(Default, instance, "a", metric, time, Kv("table_name", table)));
    }

    [Fact]
    public void Point_StringAndIntegerAttributeOfSameText_Differ()
    {
        var asInt = new KeyValue { Key = "n", Value = new AnyValue { IntValue = 1 } };
        Assert.NotEqual(Of(Default, "pg1:5432", "a", "m", 10, Kv("n", "1")), Of(Default, "pg1:5432", "a", "m", 10, asInt));
    }

    [Fact]
    public void Point_ExtraOrMissingAttribute_Differs()
    {
        Assert.NotEqual(Of(Default, "pg1:5432", "a", "m", 10), Of(Default, "pg1:5432", "a", "m", 10, Kv("x", "")));
    }

    [Fact]
    public void Point_AgentIdListedAsKey_TellsReplicasApart()
    {
        var withAgent = new PointIdentity(["db.instance", "agent.id", "metric.name", "timestamp"]);
        Assert.NotEqual(Of(withAgent, "pg1:5432", "a", "m", 10), Of(withAgent, "pg1:5432", "b", "m", 10));
    }

    [Fact]
    public void TryResource_WithoutAnyIdentifierAttribute_IsNotTracked()
    {
        var resource = new OpenTelemetry.Proto.Resource.V1.Resource();
        resource.Attributes.Add(Kv("service.name", "checkout"));

        Assert.False(Default.TryResource(resource, out _));
        Assert.False(Default.TryResource(null, out _));
    }
}

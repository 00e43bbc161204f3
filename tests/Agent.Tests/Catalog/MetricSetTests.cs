using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Agent.Catalog;
using Xunit;

namespace PgOtelGateway.Agent.Tests.Catalog;

public sealed class MetricSetTests
{
    private const ulong Time = 1_700_000_000_000_000_000UL;
    private const ulong Start = 1_600_000_000_000_000_000UL;

    [Fact]
    public void AddAll_PerDatabaseSets_MergesEveryPointUnderOneMetricEach_WithCountersStamped()
    {
        var main = new MetricSet(Time, Start, _ => true);
        main.Add(MetricCatalog.Up, 1L);
        var sets = new List<MetricSet>();
        foreach (var database in new[] { "a", "b", "c" })
        {
            var names = new AttributeCache(database);
            var set = new MetricSet(Time, Start, _ => true);
            for (var t = 0; t < 100; t++)
            {
                set.Add(MetricCatalog.TableRows, t, names.Database, names.Schema("public"), names.Table("t" + t));
                set.Add(MetricCatalog.TableModifications, 2L * t, names.Database, names.Schema("public"), names.Table("t" + t), AttributeCache.Text("operation", "insert"));
            }

            sets.Add(set);
        }

        main.AddAll(sets);
        main.StampStart();

        Assert.Equal(601, main.PointCount);
        var rows = main.Metrics.Single(m => m.Name == "postgresql.table.rows");
        Assert.Equal(300, rows.Gauge.DataPoints.Count);
        Assert.Equal(["database_name", "schema_name", "table_name"], rows.Gauge.DataPoints[0].Attributes.Select(a => a.Key));
        var modifications = main.Metrics.Single(m => m.Name == "postgresql.table.modifications");
        Assert.Equal(Metric.DataOneofCase.Sum, modifications.DataCase);
        Assert.True(modifications.Sum.IsMonotonic);
        Assert.Equal(300, modifications.Sum.DataPoints.Count);
        Assert.All(modifications.Sum.DataPoints, p => Assert.Equal(Start, p.StartTimeUnixNano));
        Assert.Equal(["a", "b", "c"], modifications.Sum.DataPoints.Select(p => p.Attributes[0].Value.StringValue).Distinct());
    }

    [Fact]
    public void Add_SharedAttributes_OfASwitchedOffMetric_AddsNothing()
    {
        var names = new AttributeCache("db");
        var set = new MetricSet(Time, Start, name => name != "postgresql.table.size");

        set.Add(MetricCatalog.TableSize, 8192L, names.Database, names.Schema("public"), names.Table("t"));
        set.Add(MetricCatalog.TableRows, 1L, names.Database, names.Schema("public"), names.Table("t"));

        Assert.Equal(1, set.PointCount);
        Assert.Same(names.Table("t"), set.Metrics.Single().Gauge.DataPoints[0].Attributes[2]);
    }
}

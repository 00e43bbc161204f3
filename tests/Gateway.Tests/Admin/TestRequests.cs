using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;

namespace PgOtelGateway.Gateway.Tests.Admin;

/// <summary>OTLP requests shaped like the agent's: one PostgreSQL resource, gauges with point attributes.</summary>
internal static class TestRequests
{
    public static ExportMetricsServiceRequest Postgres(
        string cluster,
        string instance,
        string role,
        string agent,
        int metrics,
        int pointsPerMetric,
        string seriesPrefix = "db",
        string serviceName = "postgresql")
    {
        var resource = new Resource();
        resource.Attributes.Add(Kv("service.name", serviceName));
        resource.Attributes.Add(Kv("db.system", "postgresql"));
        resource.Attributes.Add(Kv("db.cluster", cluster));
        resource.Attributes.Add(Kv("db.instance", instance));
        resource.Attributes.Add(Kv("db.role", role));
        resource.Attributes.Add(Kv("agent.id", agent));
        var scope = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent" } };
        for (var m = 0; m < metrics; m++)
        {
            var gauge = new Gauge();
            for (var p = 0; p < pointsPerMetric; p++)
            {
                var point = new NumberDataPoint { AsDouble = p, TimeUnixNano = 1_700_000_000_000_000_000UL };
                point.Attributes.Add(Kv("db.name", seriesPrefix + p));
                gauge.DataPoints.Add(point);
            }

            scope.Metrics.Add(new Metric { Name = "postgresql.metric" + m, Gauge = gauge });
        }

        var rm = new ResourceMetrics { Resource = resource };
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    public static KeyValue Kv(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };
}

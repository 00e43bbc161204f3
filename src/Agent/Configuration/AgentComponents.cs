using System.Reflection;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Agent.Export;
using PgOtelGateway.Agent.Hosting;
using PgOtelGateway.Agent.HostMetrics;
using PgOtelGateway.Agent.Scrape;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Export;
using PgOtelGateway.Shared.Processing;

namespace PgOtelGateway.Agent.Configuration;

/// <summary>The component types the agent understands, and its embedded default configuration.</summary>
internal static class AgentComponents
{
    /// <summary>The processors the agent runs (the same code as the gateway's).</summary>
    public static ProcessorCatalog Processors() => ProcessorCatalog.Shared();

    /// <summary>Every receiver, processor, exporter and extension the agent can be configured with.</summary>
    public static ComponentRegistry CreateRegistry() => Processors().RegisterWith(new ComponentRegistry()
        .AddReceiver<PostgresqlReceiverOptions>("postgresql")
        .AddReceiver<PrometheusReceiverOptions>("prometheus")
        .AddReceiver<HostMetricsReceiverOptions>("hostmetrics")
        .AddExporter<OtlpExporterOptions>("otlp")
        .AddExporter<DebugExporterOptions>("debug")
        .AddExtension<AgentHealthCheckOptions>("health_check"));

    /// <summary>The configuration used when no <c>--config</c> is given (embedded-defaults.yaml).</summary>
    public static string EmbeddedDefaults()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("embedded-defaults.yaml")
            ?? throw new InvalidOperationException("embedded-defaults.yaml is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}

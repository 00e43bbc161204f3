using System.Reflection;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Shared.Export;
using PgOtelGateway.Gateway.Dedup;
using PgOtelGateway.Gateway.Export.RemoteWrite;
using PgOtelGateway.Gateway.Export.S3;
using PgOtelGateway.Gateway.Hosting;
using PgOtelGateway.Gateway.Ingest;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Processing;

namespace PgOtelGateway.Gateway.Configuration;

/// <summary>The component types the gateway understands, and its embedded default configuration.</summary>
internal static class GatewayComponents
{
    /// <summary>The processors the gateway runs.</summary>
    public static ProcessorCatalog Processors() => ProcessorCatalog.Shared()
        .Add<DedupeOptions>("dedupe", static (c, next, ctx) => new DedupeProcessor(c.Id, c.OptionsAs<DedupeOptions>(), next, ctx.LoggerFactory.CreateLogger<DedupeProcessor>(), ctx.Time))
        .Add<HaTrackerOptions>("ha_tracker", static (c, next, ctx) => new HaTrackerProcessor(c.Id, c.OptionsAs<HaTrackerOptions>(), next, ctx.LoggerFactory.CreateLogger<HaTrackerProcessor>(), ctx.Time));

    /// <summary>Every receiver, processor, exporter, extension and section the gateway can be configured with.</summary>
    public static ComponentRegistry CreateRegistry() => Processors().RegisterWith(new ComponentRegistry()
        .AddReceiver<OtlpReceiverOptions>("otlp")
        .AddExporter<RemoteWriteOptions>("prometheusremotewrite")
        .AddExporter<S3ExporterOptions>("awss3")
        .AddExporter<DebugExporterOptions>("debug")
        .AddExtension<HealthCheckOptions>("health_check")
        .AddSection<GatewayOptions>("gateway"));

    /// <summary>The configuration used when no <c>--config</c> is given (embedded-defaults.yaml).</summary>
    public static string EmbeddedDefaults()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("embedded-defaults.yaml")
            ?? throw new InvalidOperationException("embedded-defaults.yaml is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}

/// <summary>The <c>gateway:</c> section.</summary>
internal sealed class GatewayOptions
{
    /// <summary>This gateway's id (names it in logs, files and the admin API); default: the host name.</summary>
    public string Id { get; set; } = Environment.MachineName.ToLowerInvariant();

    /// <summary>How long shutdown may take to flush what is in flight.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The admin API and status page (<c>gateway.admin</c>).</summary>
    public Admin.AdminOptions Admin { get; set; } = new();

    /// <summary>The durable queue between the processors and the exporters (<c>gateway.queue</c>).</summary>
    public Queue.QueueOptions Queue { get; set; } = new();

    /// <summary>The consistent-hash ring (<c>gateway.ring</c>); null: this gateway owns every stream.</summary>
    public Shared.Ring.RingOptions? Ring { get; set; }
}

using System.Reflection;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Configuration;

/// <summary>The component types the gateway understands, and its embedded default configuration.</summary>
internal static class GatewayComponents
{
    /// <summary>Every receiver, processor, exporter, extension and section the gateway can be configured with.</summary>
    public static ComponentRegistry CreateRegistry() => new();

    /// <summary>The configuration used when no <c>--config</c> is given (embedded-defaults.yaml).</summary>
    public static string EmbeddedDefaults()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("embedded-defaults.yaml")
            ?? throw new InvalidOperationException("embedded-defaults.yaml is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}

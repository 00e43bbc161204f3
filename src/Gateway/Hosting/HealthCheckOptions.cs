namespace PgOtelGateway.Gateway.Hosting;

/// <summary><c>extensions.health_check</c>: liveness and readiness for orchestrators.</summary>
internal sealed class HealthCheckOptions
{
    /// <summary>Listen address; <c>/health</c> answers while the process runs, <c>/ready</c> once the pipeline runs.</summary>
    public string Endpoint { get; set; } = "0.0.0.0:13133";

    /// <summary>The liveness path.</summary>
    public string Path { get; set; } = "/health";
}

namespace PgOtelGateway.Shared.Pipeline;

/// <summary>
/// A receiver, exporter or extension with a lifetime. Receivers are built with the consumer they feed and
/// start producing in <see cref="StartAsync"/>; exporters flush what they hold in <see cref="StopAsync"/>.
/// </summary>
public interface IPipelineComponent
{
    /// <summary>Starts work; returns once the component is ready.</summary>
    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>Stops taking new work and finishes or persists what is in flight, within the token's time.</summary>
    Task StopAsync(CancellationToken cancellationToken);
}

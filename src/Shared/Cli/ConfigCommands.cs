using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Shared.Cli;

/// <summary>Loading a configuration from the command line, and the <c>validate</c> command.</summary>
public static class ConfigCommands
{
    /// <summary>Exit code for a configuration that does not load.</summary>
    public const int InvalidConfigExitCode = 2;

    /// <summary>Loads <paramref name="path"/>, or the embedded defaults when it is null.</summary>
    /// <exception cref="ConfigException">The configuration is invalid.</exception>
    public static PipelineConfig Load(string? path, ComponentRegistry registry, string embeddedDefaults) =>
        path is null
            ? ConfigLoader.Load(embeddedDefaults, registry)
            : ConfigLoader.LoadFile(path, registry);

    /// <summary>
    /// Checks a configuration without starting anything: prints a one-line summary and exits 0, or prints every
    /// error (key path and line) to <paramref name="stderr"/> and returns 2.
    /// </summary>
    public static int Validate(string? path, ComponentRegistry registry, string embeddedDefaults, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var config = Load(path, registry, embeddedDefaults);
            var pipelines = config.Service.Pipelines.Count;
            stdout.WriteLine(
                $"{config.Source}: valid ({config.Receivers.Count} receivers, {config.Processors.Count} processors, " +
                $"{config.Exporters.Count} exporters, {config.Extensions.Count} extensions, {pipelines} pipelines)");
            return 0;
        }
        catch (ConfigException ex)
        {
            stderr.WriteLine($"{path ?? ConfigLoader.EmbeddedSource}: invalid configuration");
            foreach (var error in ex.Errors)
            {
                stderr.WriteLine("  " + error);
            }

            return InvalidConfigExitCode;
        }
    }
}

using PgOtelGateway.Agent.Configuration;
using PgOtelGateway.Shared.Cli;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Agent;

internal static class Program
{
    public static int Main(string[] args)
    {
        CommandLine commandLine;
        try
        {
            commandLine = CommandLine.Parse(args);
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return ConfigCommands.InvalidConfigExitCode;
        }

        var registry = AgentComponents.CreateRegistry();
        switch (commandLine.Command)
        {
            case "validate":
                return ConfigCommands.Validate(commandLine.ConfigPath, registry, AgentComponents.EmbeddedDefaults(), Console.Out, Console.Error);
            case "run":
                try
                {
                    ConfigCommands.Load(commandLine.ConfigPath, registry, AgentComponents.EmbeddedDefaults());
                }
                catch (ConfigException ex)
                {
                    Console.Error.WriteLine(ex.Message);
                    return ConfigCommands.InvalidConfigExitCode;
                }

                Console.Error.WriteLine("pgotel-agent: configuration loaded; the pipeline is not built yet.");
                return 1;
            default:
                Console.Error.WriteLine($"unknown command '{commandLine.Command}'; commands: run, validate");
                return ConfigCommands.InvalidConfigExitCode;
        }
    }
}

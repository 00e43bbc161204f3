using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Shared.Cli;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway;

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

        var registry = GatewayComponents.CreateRegistry();
        switch (commandLine.Command)
        {
            case "validate":
                return ConfigCommands.Validate(commandLine.ConfigPath, registry, GatewayComponents.EmbeddedDefaults(), Console.Out, Console.Error);
            case "run":
                try
                {
                    ConfigCommands.Load(commandLine.ConfigPath, registry, GatewayComponents.EmbeddedDefaults());
                }
                catch (ConfigException ex)
                {
                    Console.Error.WriteLine(ex.Message);
                    return ConfigCommands.InvalidConfigExitCode;
                }

                Console.Error.WriteLine("pgotel-gateway: configuration loaded; the pipeline is not built yet.");
                return 1;
            default:
                Console.Error.WriteLine($"unknown command '{commandLine.Command}'; commands: run, validate");
                return ConfigCommands.InvalidConfigExitCode;
        }
    }
}

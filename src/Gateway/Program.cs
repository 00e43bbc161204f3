using System.Runtime.InteropServices;
using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Gateway.Hosting;
using PgOtelGateway.Shared.Cli;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway;

internal static class Program
{
    public static async Task<int> Main(string[] args)
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
                return await RunAsync(commandLine, registry).ConfigureAwait(false);
            case "admin":
                return await Admin.AdminCli.RunAsync(commandLine, Console.Out, Console.Error).ConfigureAwait(false);
            default:
                Console.Error.WriteLine($"unknown command '{commandLine.Command}'; commands: run, validate, admin");
                return ConfigCommands.InvalidConfigExitCode;
        }
    }

    private static async Task<int> RunAsync(CommandLine commandLine, ComponentRegistry registry)
    {
        PipelineConfig config;
        try
        {
            config = ConfigCommands.Load(commandLine.ConfigPath, registry, GatewayComponents.EmbeddedDefaults());
        }
        catch (ConfigException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return ConfigCommands.InvalidConfigExitCode;
        }

        await using var host = GatewayHost.Create(config);
        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });
        try
        {
            await host.StartAsync(stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ConfigException or FormatException)
        {
            Console.Error.WriteLine("pgotel-gateway: cannot start: " + ex.Message);
            return 1;
        }

        // POST /api/v1/ring/leave stops the process like SIGTERM does.
        using var leave = host.StopRequested.Register(stop.Cancel);
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
        return 0;
    }
}

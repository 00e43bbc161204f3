using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Agent.Configuration;
using PgOtelGateway.Agent.Hosting;
using PgOtelGateway.Agent.HostMetrics;
using PgOtelGateway.Agent.Scrape;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Cli;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Hosting;
using PgOtelGateway.Shared.Otlp;

namespace PgOtelGateway.Agent;

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

        var registry = AgentComponents.CreateRegistry();
        if (commandLine.Command == "validate")
        {
            return ConfigCommands.Validate(commandLine.ConfigPath, registry, AgentComponents.EmbeddedDefaults(), Console.Out, Console.Error);
        }

        if (commandLine.Command is not ("run" or "collect-once"))
        {
            Console.Error.WriteLine($"unknown command '{commandLine.Command}'; commands: run, validate, collect-once");
            return ConfigCommands.InvalidConfigExitCode;
        }

        PipelineConfig config;
        try
        {
            config = ConfigCommands.Load(commandLine.ConfigPath, registry, AgentComponents.EmbeddedDefaults());
        }
        catch (ConfigException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return ConfigCommands.InvalidConfigExitCode;
        }

        return commandLine.Command == "collect-once" ? await CollectOnceAsync(config).ConfigureAwait(false) : await RunAsync(config).ConfigureAwait(false);
    }

    /// <summary>One scrape of every postgresql receiver, printed as OTLP/JSON on stdout (logs on stderr).</summary>
    private static async Task<int> CollectOnceAsync(PipelineConfig config)
    {
        using var loggers = LoggerFactory.Create(b => LogSetup.Configure(b, config.Service.Telemetry.Logs, toStandardError: true));
        var receivers = config.Receivers.Values.Where(r => r.Type is "postgresql" or "prometheus" or "hostmetrics").ToList();
        if (receivers.Count == 0)
        {
            Console.Error.WriteLine("collect-once: the configuration has no postgresql, prometheus or hostmetrics receiver");
            return 2;
        }

        var exit = 0;
        foreach (var r in receivers)
        {
            ExportMetricsServiceRequest request;
            switch (r.Type)
            {
                case "postgresql":
                {
                    var options = r.OptionsAs<PostgresqlReceiverOptions>();
                    await using var receiver = new PostgresqlReceiver(options, new NullConsumer(), loggers, TimeProvider.System);
                    using var timeout = new CancellationTokenSource(options.CollectionInterval);
                    request = await receiver.ScrapeOnceAsync(timeout.Token).ConfigureAwait(false);
                    break;
                }

                case "prometheus":
                {
                    await using var receiver = new PrometheusReceiver(r.OptionsAs<PrometheusReceiverOptions>(), new NullConsumer(), loggers, TimeProvider.System);
                    using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
                    request = await receiver.ScrapeOnceAsync(timeout.Token).ConfigureAwait(false);
                    break;
                }

                default:
                {
                    await using var receiver = new HostMetricsReceiver(r.OptionsAs<HostMetricsReceiverOptions>(), new NullConsumer(), loggers, TimeProvider.System);
                    request = receiver.ScrapeOnce();
                    break;
                }
            }

            Console.Out.WriteLine(OtlpJson.Format(request));
            if (request.ResourceMetrics.Any(rm => rm.ScopeMetrics.SelectMany(s => s.Metrics).Any(m => m.Name is "postgresql.up" or "up" && m.Gauge.DataPoints.Any(p => p.AsInt == 0 && p.AsDouble == 0))))
            {
                exit = 1;
            }
        }

        return exit;
    }

    private static async Task<int> RunAsync(PipelineConfig config)
    {
        await using var host = AgentHost.Create(config);
        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });
        try
        {
            await host.StartAsync(stop.Token).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            Console.Error.WriteLine("pgotel-agent: cannot start: " + ex.Message);
            return 1;
        }

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

    private sealed class NullConsumer : Shared.Pipeline.IMetricsConsumer
    {
        public Task ConsumeAsync(OpenTelemetry.Proto.Collector.Metrics.V1.ExportMetricsServiceRequest request, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

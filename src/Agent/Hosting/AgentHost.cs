using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Agent.Configuration;
using PgOtelGateway.Agent.Export;
using PgOtelGateway.Agent.HostMetrics;
using PgOtelGateway.Agent.Scrape;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Export;
using PgOtelGateway.Shared.Hosting;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Processing;
using Prometheus;

namespace PgOtelGateway.Agent.Hosting;

/// <summary><c>extensions.health_check</c> of the agent.</summary>
internal sealed class AgentHealthCheckOptions
{
    public string Endpoint { get; set; } = "0.0.0.0:13133";

    public string Path { get; set; } = "/health";
}

/// <summary>
/// One running agent: the pipelines from the configuration (receivers → processors → exporters), plus
/// <c>/metrics</c> and <c>/health</c>, <c>/ready</c> on their own ports.
/// </summary>
internal sealed partial class AgentHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ILogger _logger;
    private readonly List<IPipelineComponent> _receivers = [];
    private readonly List<IMetricsConsumer> _processors = [];
    private readonly List<IMetricsConsumer> _exporters = [];
    private readonly ListenOptions? _metricsListen;
    private readonly ListenOptions? _healthListen;
    private readonly string _healthPath;
    private volatile bool _ready;

    private AgentHost(PipelineConfig config, Action<ILoggingBuilder>? configureLogging)
    {
        // Content root = the install folder: the default (the working directory) makes the host watch that whole tree
        // for appsettings changes, and the working directory holds the durable queue or spool, written all the time.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        LogSetup.Configure(builder.Logging, config.Service.Telemetry.Logs, toStandardError: true);
        configureLogging?.Invoke(builder.Logging);
        var health = config.Extensions.TryGetValue("health_check", out var hc) && config.Service.Extensions.Contains("health_check")
            ? hc.OptionsAs<AgentHealthCheckOptions>() : null;
        _healthPath = health?.Path ?? "/health";
        ListenOptions? metricsListen = null, healthListen = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            if (config.Service.Telemetry.Metrics.Address.Length > 0)
            {
                kestrel.Listen(ListenAddress.Parse(config.Service.Telemetry.Metrics.Address, "service.telemetry.metrics.address"), lo => metricsListen = lo);
            }

            if (health is not null)
            {
                kestrel.Listen(ListenAddress.Parse(health.Endpoint, "extensions.health_check.endpoint"), lo => healthListen = lo);
            }
        });
        _app = builder.Build();
        _metricsListen = metricsListen;
        _healthListen = healthListen;
        _app.Run(ServeAsync);
        var loggers = _app.Services.GetRequiredService<ILoggerFactory>();
        _logger = loggers.CreateLogger("PgOtelGateway.Agent");
        Build(config, loggers);
    }

    public static AgentHost Create(PipelineConfig config, Action<ILoggingBuilder>? configureLogging = null) => new(config, configureLogging);

    public bool Ready => _ready;

    public int MetricsPort => _metricsListen?.IPEndPoint?.Port ?? 0;

    public int HealthPort => _healthListen?.IPEndPoint?.Port ?? 0;

    /// <summary>The postgresql receivers (for collect-once and tests).</summary>
    public IEnumerable<PostgresqlReceiver> PostgresqlReceivers => _receivers.OfType<PostgresqlReceiver>();

    private void Build(PipelineConfig config, ILoggerFactory loggers)
    {
        var exporters = new Dictionary<string, IMetricsConsumer>(StringComparer.Ordinal);
        var context = new ProcessorContext(loggers, TimeProvider.System);
        var heads = new Dictionary<string, List<IMetricsConsumer>>(StringComparer.Ordinal);
        foreach (var (_, pipeline) in config.Service.Pipelines)
        {
            var sinks = new List<IMetricsConsumer>();
            foreach (var id in pipeline.Exporters)
            {
                if (!exporters.TryGetValue(id, out var exporter))
                {
                    var c = config.Exporters[id];
                    exporter = c.Type switch
                    {
                        "otlp" when c.OptionsAs<OtlpExporterOptions>().Loadbalancing is not null => new LoadBalancingExporter(id, c.OptionsAs<OtlpExporterOptions>(), loggers, TimeProvider.System),
                        "otlp" => new OtlpExporter(id, c.OptionsAs<OtlpExporterOptions>(), loggers.CreateLogger<OtlpExporter>()),
                        "debug" => new DebugExporter(id, c.OptionsAs<DebugExporterOptions>(), loggers.CreateLogger<DebugExporter>(), Console.Out),
                        _ => throw new ConfigException($"exporter type '{c.Type}' has no implementation in the agent"),
                    };
                    exporters[id] = exporter;
                    _exporters.Add(exporter);
                }

                sinks.Add(exporter);
            }

            var (head, stages) = AgentComponents.Processors().Build([.. pipeline.Processors.Select(p => config.Processors[p])], new FanOutConsumer(sinks), context);
            _processors.AddRange(stages);
            foreach (var r in pipeline.Receivers)
            {
                if (!heads.TryGetValue(r, out var list))
                {
                    heads[r] = list = [];
                }

                list.Add(head);
            }
        }

        foreach (var (id, list) in heads)
        {
            var c = config.Receivers[id];
            var next = list.Count == 1 ? list[0] : new FanOutConsumer(list);
            _receivers.Add(c.Type switch
            {
                "postgresql" => new PostgresqlReceiver(c.OptionsAs<PostgresqlReceiverOptions>(), next, loggers, TimeProvider.System),
                "prometheus" => new PrometheusReceiver(c.OptionsAs<PrometheusReceiverOptions>(), next, loggers, TimeProvider.System),
                "hostmetrics" => new HostMetricsReceiver(c.OptionsAs<HostMetricsReceiverOptions>(), next, loggers, TimeProvider.System),
                _ => throw new ConfigException($"receiver type '{c.Type}' has no implementation in the agent"),
            });
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var c in _exporters.Concat(_processors).OfType<IPipelineComponent>())
        {
            await c.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        await _app.StartAsync(cancellationToken).ConfigureAwait(false);
        foreach (var r in _receivers)
        {
            await r.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        _ready = true;
        LogStarted(_logger, _receivers.Count, _exporters.Count);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _ready = false;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        try
        {
            foreach (var r in _receivers)
            {
                await r.StopAsync(timeout.Token).ConfigureAwait(false);
            }

            foreach (var c in _processors.Concat(_exporters).OfType<IPipelineComponent>())
            {
                await c.StopAsync(timeout.Token).ConfigureAwait(false);
            }

            await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            LogStopTimedOut(_logger);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var r in _receivers.OfType<IAsyncDisposable>())
        {
            await r.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var d in _exporters.Concat(_processors).OfType<IDisposable>())
        {
            d.Dispose();
        }

        await _app.DisposeAsync().ConfigureAwait(false);
    }

    private async Task ServeAsync(HttpContext context)
    {
        var port = context.Connection.LocalPort;
        if (_metricsListen?.IPEndPoint?.Port == port && context.Request.Path == "/metrics")
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await Metrics.DefaultRegistry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        }
        else if (_healthListen?.IPEndPoint?.Port == port && context.Request.Path == _healthPath)
        {
            await context.Response.WriteAsync("{\"status\":\"ok\"}", context.RequestAborted).ConfigureAwait(false);
        }
        else if (_healthListen?.IPEndPoint?.Port == port && context.Request.Path == "/ready")
        {
            context.Response.StatusCode = _ready ? 200 : 503;
            await context.Response.WriteAsync(_ready ? "{\"status\":\"ready\"}" : "{\"status\":\"not ready\"}", context.RequestAborted).ConfigureAwait(false);
        }
        else
        {
            context.Response.StatusCode = 404;
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Agent is running: {Receivers} receivers, {Exporters} exporters.")]
    private static partial void LogStarted(ILogger logger, int receivers, int exporters);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Agent shutdown did not finish within 20 s.")]
    private static partial void LogStopTimedOut(ILogger logger);
}

using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Compression;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Gateway.Configuration;
using PgOtelGateway.Shared.Export;
using PgOtelGateway.Gateway.Export.RemoteWrite;
using PgOtelGateway.Gateway.Export.S3;
using PgOtelGateway.Gateway.Ingest;
using PgOtelGateway.Gateway.Queue;
using PgOtelGateway.Gateway.Routing;
using PgOtelGateway.Shared.Compression;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Hosting;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Processing;
using Prometheus;

namespace PgOtelGateway.Gateway.Hosting;

/// <summary>
/// One running gateway: Kestrel with the OTLP receivers (gRPC and HTTP), the self-metrics and health endpoints,
/// and the pipelines built from the configuration (receivers → processors → exporters).
/// </summary>
internal sealed partial class GatewayHost : IAsyncDisposable
{
    private readonly PipelineConfig _config;
    private readonly WebApplication _app;
    private readonly ILogger _logger;
    private readonly List<(string Id, IMetricsConsumer Consumer)> _exporters = [];
    private readonly List<IMetricsConsumer> _processors = [];
    private readonly List<DurableQueue> _queues = [];
    private readonly List<(string Id, OtlpIngest Ingest, ListenOptions? Grpc, ListenOptions? Http)> _receivers = [];
    private readonly ListenOptions? _metricsListen;
    private readonly ListenOptions? _healthListen;
    private readonly string _healthPath;
    private readonly InstanceTracker _instances;
    private readonly AdminServer? _admin;
    private readonly GatewayRing? _ring;
    private volatile bool _ready;

    private GatewayHost(PipelineConfig config, Action<ILoggingBuilder>? configureLogging)
    {
        _config = config;
        Options = config.Section<GatewayOptions>("gateway");
        // Content root = the install folder: the default (the working directory) makes the host watch that whole tree
        // for appsettings changes, and the working directory holds the durable queue or spool, written all the time.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        LogSetup.Configure(builder.Logging, config.Service.Telemetry.Logs);
        configureLogging?.Invoke(builder.Logging);

        var otlpReceivers = config.Receivers.Values.Where(r => r.Type == "otlp").ToList();
        var maxRequest = otlpReceivers.Count == 0 ? 64L << 20 : otlpReceivers.Max(r => r.OptionsAs<OtlpReceiverOptions>().MaxRequestSize.Bytes);
        builder.Services.AddSingleton<OtlpIngestRegistry>();
        builder.Services.AddGrpc(o =>
        {
            // gRPC checks this on the compressed frame only; the capped providers enforce it after decompression.
            o.MaxReceiveMessageSize = (int)Math.Min(int.MaxValue, maxRequest);
            o.EnableDetailedErrors = false;
            o.CompressionProviders =
            [
                Capped(new GzipCompressionProvider(System.IO.Compression.CompressionLevel.Fastest), maxRequest),
                Capped(new ZstdGrpcCompressionProvider(), maxRequest),
            ];
        });

        var listens = new List<(string Id, OtlpReceiverOptions Options, ListenOptions? Grpc, ListenOptions? Http)>();
        ListenOptions? metricsListen = null, healthListen = null;
        var metricsAddress = config.Service.Telemetry.Metrics.Address;
        var health = config.Service.Extensions.Contains("health_check") || config.Extensions.ContainsKey("health_check")
            ? config.Extensions.TryGetValue("health_check", out var hc) ? hc.OptionsAs<HealthCheckOptions>() : new HealthCheckOptions()
            : null;
        _healthPath = health?.Path ?? "/health";
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // The receivers enforce their own limit after decompression (capped streams, gRPC's message limit);
            // Kestrel's would cut gRPC bodies off with a generic error instead of RESOURCE_EXHAUSTED.
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.AddServerHeader = false;
            foreach (var receiver in otlpReceivers)
            {
                var options = receiver.OptionsAs<OtlpReceiverOptions>();
                ListenOptions? grpc = null, http = null;
                if (options.Protocols.Grpc is { } g)
                {
                    kestrel.Listen(ListenAddress.Parse(g.Endpoint, $"receivers.{receiver.Id}.protocols.grpc.endpoint"), lo =>
                    {
                        lo.Protocols = options.Tls.CertFile.Length > 0 ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http2;
                        UseTls(lo, options.Tls);
                        grpc = lo;
                    });
                }

                if (options.Protocols.Http is { } h)
                {
                    kestrel.Listen(ListenAddress.Parse(h.Endpoint, $"receivers.{receiver.Id}.protocols.http.endpoint"), lo =>
                    {
                        // Without TLS there is no ALPN, so plain HTTP/1.1; with TLS both.
                        lo.Protocols = options.Tls.CertFile.Length > 0 ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http1;
                        UseTls(lo, options.Tls);
                        http = lo;
                    });
                }

                listens.Add((receiver.Id, options, grpc, http));
            }

            if (metricsAddress.Length > 0)
            {
                kestrel.Listen(ListenAddress.Parse(metricsAddress, "service.telemetry.metrics.address"), lo => metricsListen = lo);
            }

            if (health is not null)
            {
                kestrel.Listen(ListenAddress.Parse(health.Endpoint, "extensions.health_check.endpoint"), lo => healthListen = lo);
            }
        });

        _app = builder.Build();
        _logger = _app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("PgOtelGateway.Gateway");

        // Kestrel calls the listen callbacks while building; the options objects learn their real ports at start.
        _metricsListen = metricsListen;
        _healthListen = healthListen;
        _app.Use(ServeSideEndpointsAsync);
        _app.MapGrpcService<OtlpGrpcService>();
        var registry = _app.Services.GetRequiredService<OtlpIngestRegistry>();
        _app.MapPost("/v1/metrics", (HttpContext ctx) => OtlpHttpEndpoint.HandleAsync(ctx, registry));

        _instances = new InstanceTracker(Options.Admin.Instances);
        var loggerFactory = _app.Services.GetRequiredService<ILoggerFactory>();
        if (Options.Ring is { } ringOptions)
        {
            // Peers forward with the token their receivers ask for (the tier shares one receiver config).
            var token = otlpReceivers.Count == 0 ? "" : otlpReceivers[0].OptionsAs<OtlpReceiverOptions>().Auth.BearerToken;
            _ring = new GatewayRing(ringOptions, ringOptions.Self.Length > 0 ? ringOptions.Self : Options.Id, token, loggerFactory, TimeProvider.System);
        }

        BuildPipelines(listens);
        _admin = AdminServer.CreateIfEnabled(Options.Admin, AdminSources.For(
            config,
            new ConfigPipelineStatus(Options.Id, config, () => Ready),
            ring: _ring,
            ha: [.. _processors.OfType<IHaStatus>()],
            dedup: [.. _processors.OfType<IDedupStatus>()],
            exporters: [.. _exporters.Select(e => (IExporterStatus)new QueuedExporterStatus(e.Id, e.Consumer, _queues))],
            instances: _instances), loggerFactory);
    }

    /// <summary>The admin API's port (after start), or 0 when it is off.</summary>
    public int AdminPort => _admin?.Port ?? 0;

    /// <summary>The <c>gateway:</c> section in effect.</summary>
    public GatewayOptions Options { get; }

    /// <summary>Whether the pipelines run (what <c>/ready</c> says).</summary>
    public bool Ready => _ready;

    /// <summary>Cancelled when the gateway asks to be stopped (it left the ring on an admin request).</summary>
    public CancellationToken StopRequested => _ring?.LeaveRequested ?? CancellationToken.None;

    /// <summary>Builds the host from a loaded configuration; nothing listens until <see cref="StartAsync"/>.</summary>
    public static GatewayHost Create(PipelineConfig config, Action<ILoggingBuilder>? configureLogging = null) => new(config, configureLogging);

    /// <summary>The port a receiver's protocol listens on (after start), e.g. ("otlp", "grpc").</summary>
    public int PortOf(string receiverId, string protocol)
    {
        var r = _receivers.Find(x => x.Id == receiverId);
        var lo = protocol == "grpc" ? r.Grpc : r.Http;
        return lo?.IPEndPoint?.Port ?? throw new InvalidOperationException($"{receiverId} has no {protocol} listener");
    }

    /// <summary>The self-metrics port (after start).</summary>
    public int MetricsPort => _metricsListen?.IPEndPoint?.Port ?? 0;

    /// <summary>The health port (after start).</summary>
    public int HealthPort => _healthListen?.IPEndPoint?.Port ?? 0;

    private void BuildPipelines(List<(string Id, OtlpReceiverOptions Options, ListenOptions? Grpc, ListenOptions? Http)> listens)
    {
        var loggerFactory = _app.Services.GetRequiredService<ILoggerFactory>();
        var context = new ProcessorContext(loggerFactory, TimeProvider.System);
        var catalog = GatewayComponents.Processors();
        var exporters = new Dictionary<string, IMetricsConsumer?>(StringComparer.Ordinal);
        var heads = new Dictionary<string, List<IMetricsConsumer>>(StringComparer.Ordinal);

        foreach (var (pipelineId, pipeline) in _config.Service.Pipelines)
        {
            var sinks = new List<(string Id, IMetricsConsumer Exporter)>();
            foreach (var exporterId in pipeline.Exporters)
            {
                if (!exporters.TryGetValue(exporterId, out var exporter))
                {
                    exporter = CreateExporter(_config.Exporters[exporterId], loggerFactory);
                    exporters[exporterId] = exporter;
                    if (exporter is not null)
                    {
                        _exporters.Add((exporterId, exporter));
                    }
                }

                if (exporter is not null)
                {
                    sinks.Add((exporterId, exporter));
                }
            }

            // processors → durable queue → exporters: the queue acknowledges once the data is on disk, and each
            // exporter reads it with its own cursor. One queue per pipeline, in <queue dir>/<pipeline id>.
            IMetricsConsumer tail;
            if (sinks.Count == 0)
            {
                LogNoExporter(_logger, pipelineId);
                tail = new DiscardConsumer();
            }
            else
            {
                var queue = new DurableQueue(pipelineId, Options.Queue.PipelineDirectory(Options.Id, pipelineId), Options.Queue, sinks, loggerFactory);
                _queues.Add(queue);
                tail = queue;
            }

            var (head, stages) = catalog.Build([.. pipeline.Processors.Select(p => _config.Processors[p])], tail, context);
            _processors.AddRange(stages);
            foreach (var receiverId in pipeline.Receivers)
            {
                if (!heads.TryGetValue(receiverId, out var list))
                {
                    heads[receiverId] = list = [];
                }

                list.Add(head);
            }
        }

        foreach (var (id, options, grpc, http) in listens)
        {
            if (!heads.TryGetValue(id, out var list))
            {
                continue;
            }

            // The tracker sees every request once, whatever pipelines it then feeds.
            var head = _instances.Track(list.Count == 1 ? list[0] : new FanOutConsumer(list));
            // With a ring, the router splits requests by owner in front of the pipelines; forwarded ones skip it.
            var entry = _ring is null ? head : new RingRouter(_ring, head, loggerFactory.CreateLogger<RingRouter>());
            var ingest = new OtlpIngest(id, options, entry, loggerFactory.CreateLogger<OtlpIngest>(), TimeProvider.System, local: head);
            _receivers.Add((id, ingest, grpc, http));
        }
    }

    private IMetricsConsumer? CreateExporter(ComponentConfig config, ILoggerFactory loggerFactory)
    {
        switch (config.Type)
        {
            case "prometheusremotewrite":
                var rw = config.OptionsAs<RemoteWriteOptions>();
                if (rw.Endpoint.Length == 0)
                {
                    LogExporterOff(_logger, config.Id);
                    return null;
                }

                return new RemoteWriteExporter(config.Id, rw, loggerFactory.CreateLogger<RemoteWriteExporter>());
            case "awss3":
                return new S3Exporter(config.Id, Options.Id, config.OptionsAs<S3ExporterOptions>(), loggerFactory.CreateLogger<S3Exporter>());
            case "debug":
                return new DebugExporter(config.Id, config.OptionsAs<DebugExporterOptions>(), loggerFactory.CreateLogger<DebugExporter>());
            default:
                throw new ConfigException($"exporter type '{config.Type}' has no implementation in the gateway");
        }
    }

    /// <summary>Starts the exporters, the processors, then the listeners; ready once all run.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // The admin API comes up first and goes down last, so the gateway can be watched while it starts and drains.
        if (_admin is not null)
        {
            await _admin.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        foreach (var (_, exporter) in _exporters)
        {
            if (exporter is IPipelineComponent component)
            {
                await component.StartAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var queue in _queues)
        {
            await queue.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        foreach (var stage in _processors)
        {
            if (stage is IPipelineComponent component)
            {
                await component.StartAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        await _app.StartAsync(cancellationToken).ConfigureAwait(false);
        var registry = _app.Services.GetRequiredService<OtlpIngestRegistry>();
        foreach (var (id, ingest, grpc, http) in _receivers)
        {
            if (grpc is not null)
            {
                registry.AddGrpc(grpc.IPEndPoint!.Port, ingest);
            }

            if (http is not null)
            {
                registry.AddHttp(http.IPEndPoint!.Port, ingest);
            }

            LogReceiverListening(_logger, id, grpc?.IPEndPoint?.ToString() ?? "-", http?.IPEndPoint?.ToString() ?? "-");
        }

        registry.Open();

        if (_ring is not null)
        {
            var ring = _ring;
            registry.RingIdentity = () => (ring.SelfId, Shared.Ring.RingHeaders.NameOf(ring.State));
            registry.IsRingPeer = ring.IsPeer;
            await ring.StartAsync(_receivers.Find(r => r.Grpc is not null).Grpc?.IPEndPoint, cancellationToken).ConfigureAwait(false);
        }

        _ready = true;
        if (_ring is not null)
        {
            // Only a ready gateway owns streams.
            await _ring.ActivateAsync(cancellationToken).ConfigureAwait(false);
        }

        LogStarted(_logger, Options.Id, _exporters.Count, _processors.Count);
    }

    /// <summary>Stops taking data, lets requests in flight finish, then flushes processors and exporters.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _ready = false;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Options.ShutdownTimeout);
        LogStopping(_logger, Options.Id);
        try
        {
            if (_ring is not null)
            {
                // LEAVING: owns nothing from now on; keep serving (forwarded data is processed here) until the
                // other members and the agents have noticed, then close the listeners.
                await _ring.LeaveAsync(timeout.Token).ConfigureAwait(false);
                await Task.Delay(_ring.Options.LeaveGrace, timeout.Token).ConfigureAwait(false);
            }

            await _app.StopAsync(timeout.Token).ConfigureAwait(false);
            foreach (var stage in _processors)
            {
                if (stage is IPipelineComponent component)
                {
                    await component.StopAsync(timeout.Token).ConfigureAwait(false);
                }
            }

            // What the processors flushed is written; readers finish what is in flight and persist their cursors.
            foreach (var queue in _queues)
            {
                await queue.StopAsync(timeout.Token).ConfigureAwait(false);
            }

            foreach (var (_, exporter) in _exporters)
            {
                if (exporter is IPipelineComponent component)
                {
                    await component.StopAsync(timeout.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            LogStopTimedOut(_logger, Options.ShutdownTimeout.TotalSeconds);
        }

        if (_admin is not null)
        {
            await _admin.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }

        LogStopped(_logger, Options.Id);
    }

    public async ValueTask DisposeAsync()
    {
        if (_admin is not null)
        {
            await _admin.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var (_, exporter) in _exporters)
        {
            (exporter as IDisposable)?.Dispose();
        }

        foreach (var stage in _processors)
        {
            if (stage is IAsyncDisposable asyncDisposable)
            {
                await asyncDisposable.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                (stage as IDisposable)?.Dispose();
            }
        }

        foreach (var queue in _queues)
        {
            queue.Dispose();
        }

        await _app.DisposeAsync().ConfigureAwait(false);
        if (_ring is not null)
        {
            await _ring.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task ServeSideEndpointsAsync(HttpContext context, RequestDelegate next)
    {
        var port = context.Connection.LocalPort;
        if (_metricsListen?.IPEndPoint?.Port == port)
        {
            if (context.Request.Path == "/metrics")
            {
                context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
                await Metrics.DefaultRegistry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
            }
            else
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
            }

            return;
        }

        if (_healthListen?.IPEndPoint?.Port == port)
        {
            if (context.Request.Path == _healthPath)
            {
                await context.Response.WriteAsync("{\"status\":\"ok\"}", context.RequestAborted).ConfigureAwait(false);
            }
            else if (context.Request.Path == "/ready")
            {
                context.Response.StatusCode = _ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
                await context.Response.WriteAsync(_ready ? "{\"status\":\"ready\"}" : "{\"status\":\"not ready\"}", context.RequestAborted).ConfigureAwait(false);
            }
            else
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
            }

            return;
        }

        await next(context).ConfigureAwait(false);
    }

    private static ICompressionProvider Capped(ICompressionProvider inner, long limit) =>
        new CappedDecompressionProvider(inner, limit, static l => new Grpc.Core.RpcException(
            new Grpc.Core.Status(Grpc.Core.StatusCode.ResourceExhausted, $"the request is larger than {l} bytes after decompression")));

    private static void UseTls(ListenOptions listen, ServerTlsOptions tls)
    {
        if (tls.CertFile.Length == 0)
        {
            return;
        }

        var certificate = X509Certificate2.CreateFromPemFile(tls.CertFile, tls.KeyFile);
        listen.UseHttps(https =>
        {
            https.ServerCertificate = certificate;
            if (tls.ClientCaFile.Length > 0)
            {
                var roots = new X509Certificate2Collection();
                roots.ImportFromPemFile(tls.ClientCaFile);
                https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                https.ClientCertificateValidation = (cert, _, _) =>
                {
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                    return chain.Build(cert);
                };
            }
        });
    }

    private sealed class DiscardConsumer : IMetricsConsumer
    {
        public Task ConsumeAsync(OpenTelemetry.Proto.Collector.Metrics.V1.ExportMetricsServiceRequest request, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Gateway {GatewayId} is ready: {Exporters} exporters, {Processors} processor stages.")]
    private static partial void LogStarted(ILogger logger, string gatewayId, int exporters, int processors);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Receiver {Receiver} listens for OTLP/gRPC on {Grpc} and OTLP/HTTP on {Http}.")]
    private static partial void LogReceiverListening(ILogger logger, string receiver, string grpc, string http);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Exporter {Exporter} has no endpoint and is off.")]
    private static partial void LogExporterOff(ILogger logger, string exporter);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Pipeline {Pipeline} has no active exporter; its data is accepted and discarded.")]
    private static partial void LogNoExporter(ILogger logger, string pipeline);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Gateway {GatewayId} is stopping: no new data, flushing what is in flight.")]
    private static partial void LogStopping(ILogger logger, string gatewayId);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Shutdown did not finish within {Seconds} s; unflushed data is counted by the exporters.")]
    private static partial void LogStopTimedOut(ILogger logger, double seconds);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Gateway {GatewayId} stopped.")]
    private static partial void LogStopped(ILogger logger, string gatewayId);
}

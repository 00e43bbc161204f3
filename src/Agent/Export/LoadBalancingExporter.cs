using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Ring;

namespace PgOtelGateway.Agent.Export;

/// <summary>
/// The <c>otlp</c> exporter with <c>loadbalancing:</c>. It finds the gateways the way the gateways find each other
/// (static list, DNS or Redis heartbeats; static and DNS members are probed), builds the same ring, and sends each
/// stream straight to its owner through one ordinary <see cref="OtlpExporter"/> per gateway (its own queue,
/// retries and compression), so the gateways seldom need to forward. A gateway that stops answering leaves the
/// ring and its streams go to the next live owner; with no live gateway known, data goes to <c>endpoint</c>
/// (typically the gateways' Service, which reaches any live one).
/// </summary>
internal sealed partial class LoadBalancingExporter : IMetricsConsumer, IPipelineComponent, IDisposable
{
    private readonly string _id;
    private readonly OtlpExporterOptions _options;
    private readonly LoadBalancingOptions _balancing;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly PeerClients _peers;
    private readonly RingMembership _membership;
    private readonly ConcurrentDictionary<string, OtlpExporter> _exporters = new(StringComparer.Ordinal);
    private volatile bool _started;

    public LoadBalancingExporter(string id, OtlpExporterOptions options, ILoggerFactory loggers, TimeProvider time)
    {
        _id = id;
        _options = options;
        _balancing = options.Loadbalancing ?? throw new ArgumentException("loadbalancing is not configured", nameof(options));
        _loggers = loggers;
        _logger = loggers.CreateLogger<LoadBalancingExporter>();
        var tls = new RingClientTlsOptions
        {
            Enabled = !options.Tls.Insecure,
            CaFile = options.Tls.CaFile,
            CertFile = options.Tls.CertFile,
            KeyFile = options.Tls.KeyFile,
            ServerName = options.Tls.ServerName,
            InsecureSkipVerify = options.Tls.InsecureSkipVerify,
        };
        _peers = new PeerClients(tls, "", "none", options.Headers);
        _membership = new RingMembership(_balancing.Members, _balancing.TokensPerMember, selfId: null, static () => MemberState.Joining, _peers,
            options.Timeout, loggers.CreateLogger<RingMembership>(), time);
        _membership.Changed += OnChanged;
    }

    private void OnChanged(RingView view)
    {
        LogRing(_logger, _id, view.Ring.Members.Count, string.Join(", ", view.Ring.Members));
        var addresses = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in view.Members)
        {
            addresses.Add(m.Address);
        }

        _peers.Retain(addresses);
    }

    /// <summary>The ring this exporter routes by (tests read it).</summary>
    internal RingView Ring => _membership.Current;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _membership.StartAsync(cancellationToken).ConfigureAwait(false);
        _started = true;
        foreach (var exporter in _exporters.Values)
        {
            await exporter.StartAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        var view = _membership.Current;
        if (view.Ring.Members.Count == 0)
        {
            AgentMetrics.LoadBalancedPoints.WithLabels(_id, "fallback").Inc(MetricsCounting.DataPoints(request));
            await (await ExporterForAsync(_options.Endpoint, cancellationToken).ConfigureAwait(false)).ConsumeAsync(request, cancellationToken).ConfigureAwait(false);
            return;
        }

        var parts = new List<(int Owner, ExportMetricsServiceRequest Part)>(view.Ring.Members.Count);
        RequestPartitioner.Partition(request, view.Ring, _balancing.RoutingKey, parts);
        foreach (var (owner, part) in parts)
        {
            AgentMetrics.LoadBalancedPoints.WithLabels(_id, view.Ring.Members[owner]).Inc(MetricsCounting.DataPoints(part));
            var exporter = await ExporterForAsync(view.Addresses[owner], cancellationToken).ConfigureAwait(false);
            await exporter.ConsumeAsync(part, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<OtlpExporter> ExporterForAsync(string address, CancellationToken cancellationToken)
    {
        if (_exporters.TryGetValue(address, out var exporter))
        {
            return exporter;
        }

        var options = new OtlpExporterOptions
        {
            Endpoint = address,
            Compression = _options.Compression,
            Headers = _options.Headers,
            Tls = _options.Tls,
            Timeout = _options.Timeout,
            RetryOnFailure = _options.RetryOnFailure,
            SendingQueue = _options.SendingQueue,
        };
        var created = new OtlpExporter(_id, options, _loggers.CreateLogger<OtlpExporter>());
        if (!_exporters.TryAdd(address, created))
        {
            created.Dispose();
            return _exporters[address];
        }

        if (_started)
        {
            await created.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        return created;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        var stops = new List<Task>();
        foreach (var exporter in _exporters.Values)
        {
            stops.Add(exporter.StopAsync(cancellationToken));
        }

        await Task.WhenAll(stops).ConfigureAwait(false);
        await _membership.DisposeAsync().ConfigureAwait(false);
    }

    public void Dispose()
    {
        foreach (var exporter in _exporters.Values)
        {
            exporter.Dispose();
        }

        _peers.Dispose();
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Exporter {Exporter} routes to {Count} gateways: {Members}.")]
    private static partial void LogRing(ILogger logger, string exporter, int count, string members);
}

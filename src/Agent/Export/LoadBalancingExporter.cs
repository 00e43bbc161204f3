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
/// (typically the gateways' Service, which reaches any live one). Batches still waiting for a gateway that left
/// the ring (queued, being retried, or in its spool) are taken back and routed again over the live ring, so a dead
/// gateway holds nothing hostage. Each gateway's exporter spools to its own folder,
/// <c>storage_dir/&lt;id&gt;-&lt;address&gt;</c>; folders left from gateways gone before a restart are routed the same way at start.
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
    private readonly SemaphoreSlim _rerouting = new(1, 1);
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
        _ = RerouteOrphansAsync();
    }

    /// <summary>Whether batches for <paramref name="address"/> may stay with it: a ring member, or the fallback endpoint.</summary>
    private bool IsLive(string address)
    {
        if (string.Equals(address, _options.Endpoint, StringComparison.Ordinal))
        {
            return true;
        }

        foreach (var member in _membership.Current.Addresses)
        {
            if (string.Equals(member, address, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Takes the batches back from the exporters of gateways that left the ring, and routes them again.</summary>
    private async Task RerouteOrphansAsync()
    {
        if (!_started)
        {
            return;
        }

        await _rerouting.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var address in _exporters.Keys)
            {
                if (IsLive(address) || !_exporters.TryRemove(address, out var orphan))
                {
                    continue;
                }

                var batches = await orphan.RetireAsync().ConfigureAwait(false);
                orphan.Dispose();
                await RerouteAsync(batches, address).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogRerouteFailed(_logger, _id, ex.Message);
        }
        finally
        {
            _rerouting.Release();
        }
    }

    private async Task RerouteAsync(List<ExportMetricsServiceRequest> batches, string from)
    {
        if (batches.Count == 0)
        {
            return;
        }

        long points = 0;
        foreach (var batch in batches)
        {
            points += MetricsCounting.DataPoints(batch);
            await ConsumeAsync(batch, CancellationToken.None).ConfigureAwait(false);
        }

        AgentMetrics.ReroutedPoints.WithLabels(_id).Inc(points);
        LogRerouted(_logger, _id, batches.Count, points, from);
    }

    /// <summary>At start: spools of this exporter's gateways from before the restart are routed over today's ring.</summary>
    private async Task RerouteLeftoverSpoolsAsync()
    {
        if (_options.SendingQueue is not { Enabled: true, StorageDir.Length: > 0 } queue || !Directory.Exists(queue.StorageDir))
        {
            return;
        }

        var prefix = Path.GetFileName(OtlpExporter.SpoolDirectory(queue.StorageDir, _id + "-"));
        foreach (var directory in Directory.GetDirectories(queue.StorageDir, prefix + "*"))
        {
            // Moved aside first, so a gateway exporter opening the same name starts with a spool of its own.
            var aside = directory + ".reroute";
            Directory.Move(directory, aside);
            using (var spool = new DiskSpool(aside, long.MaxValue, _id, _logger))
            {
                await RerouteAsync(spool.TakeAll(), Path.GetFileName(directory)).ConfigureAwait(false);
            }

            Directory.Delete(aside, recursive: true);
        }
    }

    private string SpoolName(string address) => _id + "-" + address;

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

        await RerouteLeftoverSpoolsAsync().ConfigureAwait(false);
    }

    public async Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        var view = _membership.Current;
        if (view.Ring.Members.Count == 0)
        {
            AgentMetrics.LoadBalancedPoints.WithLabels(_id, "fallback").Inc(MetricsCounting.DataPoints(request));
            await EnqueueAsync(_options.Endpoint, request, cancellationToken).ConfigureAwait(false);
            return;
        }

        var parts = new List<(int Owner, ExportMetricsServiceRequest Part)>(view.Ring.Members.Count);
        RequestPartitioner.Partition(request, view.Ring, _balancing.RoutingKey, parts);
        foreach (var (owner, part) in parts)
        {
            AgentMetrics.LoadBalancedPoints.WithLabels(_id, view.Ring.Members[owner]).Inc(MetricsCounting.DataPoints(part));
            await EnqueueAsync(view.Addresses[owner], part, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task EnqueueAsync(string address, ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        var exporter = await ExporterForAsync(address, cancellationToken).ConfigureAwait(false);
        if (exporter.TryEnqueue(request))
        {
            if (!IsLive(address))
            {
                // Routed by a view that changed meanwhile: the sweep takes it back from the departed gateway.
                _ = RerouteOrphansAsync();
            }

            return;
        }

        // That exporter was retired between the routing and now: route again over the current ring.
        if (_exporters.TryGetValue(address, out var current) && ReferenceEquals(current, exporter))
        {
            _exporters.TryRemove(address, out _);
        }

        await ConsumeAsync(request, cancellationToken).ConfigureAwait(false);
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
        var created = new OtlpExporter(_id, options, _loggers.CreateLogger<OtlpExporter>(), SpoolName(address));
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
        _rerouting.Dispose();
    }

    [LoggerMessage(EventId = 4202, Level = LogLevel.Warning, Message = "Exporter {Exporter}: {Batches} batches ({Points} points) waiting for {Gateway}, which left the ring, were routed to the live gateways.")]
    private static partial void LogRerouted(ILogger logger, string exporter, int batches, long points, string gateway);

    [LoggerMessage(EventId = 4203, Level = LogLevel.Error, Message = "Exporter {Exporter}: could not route again the batches of a gateway that left the ring: {Reason}")]
    private static partial void LogRerouteFailed(ILogger logger, string exporter, string reason);

    [LoggerMessage(EventId = 4201, Level = LogLevel.Information, Message = "Exporter {Exporter} routes to {Count} gateways: {Members}.")]
    private static partial void LogRing(ILogger logger, string exporter, int count, string members);
}

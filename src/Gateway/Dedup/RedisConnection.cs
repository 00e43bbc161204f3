using System.Net.Security;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Security;
using StackExchange.Redis;

namespace PgOtelGateway.Gateway.Dedup;

/// <summary>
/// One processor's link to Redis. It connects lazily and in the background (the gateway starts with Redis down),
/// never queues commands while disconnected (they fail at once and the caller goes on with its local state), counts
/// round trips and errors, and logs once when Redis becomes unreachable and once when it is back.
/// </summary>
internal sealed partial class RedisConnection : IAsyncDisposable
{
    private static readonly TimeSpan ReconnectPause = TimeSpan.FromSeconds(5);
    private readonly string _processor;
    private readonly RedisOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Prometheus.Counter.Child _roundTripsMetric;
    private readonly Prometheus.Counter.Child _errorsMetric;
    private Task<ConnectionMultiplexer>? _connect;
    private DateTimeOffset _connectStarted;
    private long _roundTrips;
    private long _errors;
    private int _failing;

    public RedisConnection(string processor, RedisOptions options, ILogger logger, TimeProvider time)
    {
        _processor = processor;
        _options = options;
        _logger = logger;
        _time = time;
        _roundTripsMetric = GatewayMetrics.RedisRoundTrips.WithLabels(processor);
        _errorsMetric = GatewayMetrics.RedisErrors.WithLabels(processor);
        KeyPrefix = System.Text.Encoding.UTF8.GetBytes(options.KeyPrefix);
    }

    /// <summary>Redis calls made (each one network round trip, possibly carrying several pipelined commands).</summary>
    public long RoundTrips => Interlocked.Read(ref _roundTrips);

    /// <summary>Redis calls that failed or could not be made because Redis was unreachable.</summary>
    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>How long one call may take.</summary>
    public TimeSpan Timeout => _options.Timeout;

    /// <summary>The configured key prefix as UTF-8.</summary>
    public byte[] KeyPrefix { get; }

    /// <summary>
    /// Starts connecting and waits for the first attempt, at most the connect timeout: a reachable Redis is in use
    /// from the first request, an unreachable one delays the start by that long and is then retried in the background.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await ConnectionTask().WaitAsync(ConnectTimeout + TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or RedisException or System.Net.Sockets.SocketException or ArgumentException)
        {
            // Counted and logged by the first request that needs Redis.
        }
    }

    // The first connect also loads the client (JIT, handshake, server info): on a busy host it takes seconds.
    private TimeSpan ConnectTimeout => TimeSpan.FromMilliseconds(Math.Max(_options.Timeout.TotalMilliseconds, 5000));

    /// <summary>
    /// The database to send to, or null when Redis is not reachable now (the error is counted and logged once).
    /// Waits for the first connection attempt at most <see cref="RedisOptions.Timeout"/>.
    /// </summary>
    public async ValueTask<IDatabase?> DatabaseAsync(CancellationToken cancellationToken)
    {
        var connect = ConnectionTask();
        if (!connect.IsCompleted)
        {
            try
            {
                await connect.WaitAsync(_options.Timeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Failed("still connecting");
                return null;
            }
            catch (Exception ex) when (ex is RedisException or System.Net.Sockets.SocketException or ArgumentException)
            {
                // Observed below through the task's state.
            }
        }

        if (!connect.IsCompletedSuccessfully)
        {
            Failed(connect.Exception?.GetBaseException().Message ?? "cannot connect");
            return null;
        }

        var multiplexer = connect.Result;
        if (!multiplexer.IsConnected)
        {
            Failed("not connected");
            return null;
        }

        return multiplexer.GetDatabase();
    }

    /// <summary>Counts one round trip that is about to be made.</summary>
    public void CountRoundTrip()
    {
        Interlocked.Increment(ref _roundTrips);
        _roundTripsMetric.Inc();
    }

    /// <summary>Records that a call succeeded: logs the recovery once after failures.</summary>
    public void Succeeded()
    {
        if (Volatile.Read(ref _failing) == 1 && Interlocked.Exchange(ref _failing, 0) == 1)
        {
            LogRecovered(_logger, _processor, _options.Endpoint);
        }
    }

    /// <summary>Records a failed call: counted always, logged only on the change from working to failing.</summary>
    public void Failed(string reason)
    {
        Interlocked.Increment(ref _errors);
        _errorsMetric.Inc();
        if (Interlocked.Exchange(ref _failing, 1) == 0)
        {
            LogUnreachable(_logger, _processor, _options.Endpoint, reason);
        }
    }

    private Task<ConnectionMultiplexer> ConnectionTask()
    {
        lock (_gate)
        {
            // A connect that threw (bad host name, TLS files) is tried again after a pause; one that returned keeps
            // reconnecting by itself (AbortOnConnectFail = false).
            if (_connect is null || (_connect.IsFaulted && _time.GetUtcNow() - _connectStarted > ReconnectPause))
            {
                _connectStarted = _time.GetUtcNow();
                _connect = ConnectionMultiplexer.ConnectAsync(BuildConfiguration());
                _ = _connect.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }

            return _connect;
        }
    }

    private ConfigurationOptions BuildConfiguration()
    {
        var timeoutMs = (int)Math.Clamp(_options.Timeout.TotalMilliseconds, 1, int.MaxValue);
        var config = new ConfigurationOptions
        {
            AbortOnConnectFail = false,
            BacklogPolicy = BacklogPolicy.FailFast,
            ConnectTimeout = (int)ConnectTimeout.TotalMilliseconds,
            AsyncTimeout = timeoutMs,
            SyncTimeout = timeoutMs,
            ConnectRetry = 1,
            ReconnectRetryPolicy = new LinearRetry(1000),
            ClientName = "pgotel-gateway",
            Password = _options.Password.Length > 0 ? _options.Password : null,
            User = _options.Username.Length > 0 ? _options.Username : null,
            Ssl = _options.UseTls,
        };
        config.EndPoints.Add(_options.Endpoint);
        if (_options.UseTls)
        {
            var tls = _options.Tls;
            config.SslClientAuthenticationOptions = host =>
            {
                var ssl = new SslClientAuthenticationOptions { TargetHost = host };
                TlsClientSetup.Apply(ssl, tls.CaFile, tls.CertFile, tls.KeyFile, tls.ServerName, tls.InsecureSkipVerify);
                return ssl;
            };
        }

        return config;
    }

    public async ValueTask DisposeAsync()
    {
        Task<ConnectionMultiplexer>? connect;
        lock (_gate)
        {
            connect = _connect;
        }

        if (connect is { IsCompletedSuccessfully: true })
        {
            await connect.Result.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "Processor {Processor} cannot reach Redis at {Endpoint} ({Reason}); it goes on with its local state only and keeps trying.")]
    private static partial void LogUnreachable(ILogger logger, string processor, string endpoint, string reason);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Information, Message = "Processor {Processor} reaches Redis at {Endpoint} again.")]
    private static partial void LogRecovered(ILogger logger, string processor, string endpoint);
}

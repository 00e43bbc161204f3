using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Shared.Hosting;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Gateway.Admin;

/// <summary>
/// The admin API and status page on their own Kestrel listener (<c>gateway.admin.endpoint</c>, default
/// <c>0.0.0.0:8080</c>), apart from the ingest ports so neither can reach the other's routes. Start it after the
/// pipeline is built; it only reads the <see cref="AdminSources"/> it is given.
/// </summary>
internal sealed partial class AdminServer : IPipelineComponent, IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly AdminApi _api;
    private readonly AdminOptions _options;
    private readonly ILogger _logger;
    private ListenOptions? _listen;

    /// <summary>Builds the server; nothing listens until <see cref="StartAsync"/>.</summary>
    /// <exception cref="FormatException"><see cref="AdminOptions.Endpoint"/> is not <c>host:port</c>.</exception>
    public AdminServer(AdminOptions options, AdminSources sources, ILoggerFactory loggerFactory)
    {
        if (options.Endpoint.Length == 0)
        {
            throw new ArgumentException("gateway.admin.endpoint is empty: the admin API is off", nameof(options));
        }

        _options = options;
        _logger = loggerFactory.CreateLogger("PgOtelGateway.Gateway.Admin");
        var endpoint = ListenAddress.Parse(options.Endpoint, "gateway.admin.endpoint");

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();

        // The gateway's own logging (level, JSON) applies to Kestrel's messages about this listener too.
        builder.Services.AddSingleton(loggerFactory);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;

            // Nothing here takes a body larger than a few bytes.
            kestrel.Limits.MaxRequestBodySize = 64 * 1024;
            kestrel.Listen(endpoint, lo =>
            {
                // Browsers and curl speak HTTP/1.1 here; HTTP/2 without TLS would need prior knowledge.
                lo.Protocols = HttpProtocols.Http1;
                _listen = lo;
            });
        });

        _app = builder.Build();
        _app.Use(static (context, next) =>
        {
            var headers = context.Response.Headers;
            headers.CacheControl = "no-store";
            headers.XContentTypeOptions = "nosniff";
            return next(context);
        });
        _api = new AdminApi(sources, options.Token, _logger);
        _api.Map(_app);
    }

    /// <summary>Creates the server, or null when <c>gateway.admin.endpoint</c> is empty (admin API off).</summary>
    public static AdminServer? CreateIfEnabled(AdminOptions options, AdminSources sources, ILoggerFactory loggerFactory) =>
        options.Endpoint.Length == 0 ? null : new AdminServer(options, sources, loggerFactory);

    /// <summary>The port it listens on (after start; useful with port 0).</summary>
    public int Port => _listen?.IPEndPoint?.Port ?? throw new InvalidOperationException("the admin server has not started");

    /// <summary>A URL that reaches it from this host (after start).</summary>
    public Uri LocalUrl
    {
        get
        {
            var address = _listen?.IPEndPoint?.Address ?? IPAddress.Loopback;
            var host = address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) ? "127.0.0.1"
                : address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
            return new Uri($"http://{host}:{Port}/");
        }
    }

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _app.StartAsync(cancellationToken).ConfigureAwait(false);
        var endpoint = _listen?.IPEndPoint;
        LogListening(_logger, endpoint?.ToString() ?? _options.Endpoint, _api.TokenRequired ? "a bearer token" : "no token");
        if (!_api.TokenRequired && endpoint is not null && !IPAddress.IsLoopback(endpoint.Address))
        {
            LogNoToken(_logger, endpoint.ToString());
        }
    }

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => _app.StopAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _app.DisposeAsync();
}

using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace PgOtelGateway.Gateway.Admin;

/// <summary>
/// The admin endpoints: <c>GET /</c> (status page) and, behind the bearer token, <c>GET /api/v1/status</c>,
/// <c>ring</c>, <c>ha</c>, <c>dedup</c>, <c>exporters</c>, <c>instances</c>, <c>config</c> and
/// <c>POST /api/v1/ring/leave</c>. JSON with snake_case keys; every string passes the secret scrubber.
/// </summary>
internal sealed partial class AdminApi
{
    /// <summary>Where the JSON API lives.</summary>
    public const string Prefix = "/api/v1";

    private readonly AdminSources _sources;
    private readonly BearerTokenCheck _token;
    private readonly AdminJsonContext _json;
    private readonly ILogger _logger;

    /// <summary>Creates the API over <paramref name="sources"/>, asking for <paramref name="token"/> when it is not empty.</summary>
    public AdminApi(AdminSources sources, string token, ILogger logger)
    {
        _sources = sources;
        _token = new BearerTokenCheck(token);
        _logger = logger;
        var options = new JsonSerializerOptions(AdminJsonContext.Default.Options);
        options.Converters.Add(new ScrubbingStringConverter(sources.Scrubber));
        _json = new AdminJsonContext(options);
    }

    /// <summary>Whether requests must carry the token.</summary>
    public bool TokenRequired => _token.Required;

    /// <summary>Maps every admin route onto <paramref name="endpoints"/>.</summary>
    public void Map(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/", StatusPage.ServeAsync);

        var api = endpoints.MapGroup(Prefix);
        api.AddEndpointFilter(async (context, next) =>
            Authorize(context.HttpContext) is { } refusal ? refusal : await next(context).ConfigureAwait(false));

        api.MapGet("/status", () => Read("status", Status, _json.StatusResponse));
        api.MapGet("/ring", () => Read("ring", Ring, _json.RingResponse));
        api.MapGet("/ha", () => Read("ha", Ha, _json.HaResponse));
        api.MapGet("/dedup", () => Read("dedup", Dedup, _json.DedupResponse));
        api.MapGet("/exporters", () => Read("exporters", Exporters, _json.ExportersResponse));
        api.MapGet("/instances", () => Read("instances", Instances, _json.InstancesResponse));
        api.MapGet("/config", () => Read("config", () => new ConfigResponse(_sources.ConfigSource, _sources.RedactedConfigYaml), _json.ConfigResponse));
        api.MapPost("/ring/leave", (Delegate)LeaveAsync);
    }

    internal StatusResponse Status()
    {
        var s = _sources.Pipeline.Snapshot();
        return new StatusResponse(s.Id, s.Version, Utc(s.StartedAt), Math.Round(s.Uptime.TotalSeconds, 3), s.Ready, s.Pipelines);
    }

    internal RingResponse Ring()
    {
        if (_sources.Ring is not { } ring)
        {
            return new RingResponse(false, _sources.Pipeline.Snapshot().Id, []);
        }

        var snapshot = ring.Snapshot();
        var members = new List<RingMemberResponse>(snapshot.Members.Count);
        foreach (var m in snapshot.Members.OrderBy(m => m.Id, StringComparer.Ordinal))
        {
            members.Add(new RingMemberResponse(
                m.Id,
                m.Address,
                StateName(m.State),
                m.LastHeartbeat is { } heartbeat ? Utc(heartbeat) : null,
                Math.Round(m.OwnedFraction, 6),
                string.Equals(m.Id, snapshot.SelfId, StringComparison.Ordinal)));
        }

        return new RingResponse(true, snapshot.SelfId, members);
    }

    internal HaResponse Ha()
    {
        var clusters = new List<HaClusterResponse>();
        foreach (var tracker in _sources.Ha)
        {
            var snapshot = tracker.Snapshot();
            foreach (var c in snapshot.Clusters)
            {
                clusters.Add(new HaClusterResponse(snapshot.Processor, c.Cluster, c.ElectedReplica, Utc(c.Since), c.Failovers));
            }
        }

        clusters.Sort(static (a, b) =>
        {
            var c = string.CompareOrdinal(a.Cluster, b.Cluster);
            return c != 0 ? c : string.CompareOrdinal(a.Processor, b.Processor);
        });
        return new HaResponse(_sources.Ha.Count > 0, clusters);
    }

    internal DedupResponse Dedup()
    {
        var processors = new List<DedupSnapshot>(_sources.Dedup.Count);
        foreach (var d in _sources.Dedup)
        {
            processors.Add(d.Snapshot());
        }

        return new DedupResponse(processors.Count > 0, processors);
    }

    internal ExportersResponse Exporters()
    {
        var exporters = new List<ExporterResponse>(_sources.Exporters.Count);
        foreach (var e in _sources.Exporters)
        {
            var s = e.Snapshot();
            exporters.Add(new ExporterResponse(
                s.Name,
                s.QueueRecords,
                s.QueueBytes,
                s.OldestItemAge is { } age ? Math.Round(age.TotalSeconds, 3) : null,
                s.SentPoints,
                s.FailedPoints,
                s.DroppedPoints,
                s.LastError,
                s.LastErrorTime is { } errorTime ? Utc(errorTime) : null));
        }

        return new ExportersResponse(exporters);
    }

    internal InstancesResponse Instances() => _sources.Instances is { } tracker
        ? new InstancesResponse(true, tracker.Snapshot(), tracker.OverLimitResources)
        : new InstancesResponse(false, [], 0);

    internal static string StateName(RingMemberState state) => state switch
    {
        RingMemberState.Joining => "JOINING",
        RingMemberState.Active => "ACTIVE",
        RingMemberState.Leaving => "LEAVING",
        _ => state.ToString().ToUpperInvariant(),
    };

    // Millisecond precision is plenty for people and keeps the JSON short.
    private static DateTime Utc(DateTimeOffset time)
    {
        var ticks = time.UtcTicks;
        return new DateTime(ticks - (ticks % TimeSpan.TicksPerMillisecond), DateTimeKind.Utc);
    }

    private IResult? Authorize(HttpContext context)
    {
        var result = _token.Check(context.Request);
        if (result == TokenResult.Accepted)
        {
            return null;
        }

        LogUnauthorized(_logger, context.Request.Method, context.Request.Path.Value ?? "", context.Connection.RemoteIpAddress?.ToString() ?? "-",
            result == TokenResult.Missing ? "no bearer token" : "a wrong token");
        context.Response.Headers.WWWAuthenticate = result == TokenResult.Wrong
            ? BearerTokenCheck.Challenge + ", error=\"invalid_token\""
            : BearerTokenCheck.Challenge;
        return Error(StatusCodes.Status401Unauthorized, result == TokenResult.Missing
            ? "unauthorized: this admin API needs 'Authorization: Bearer <token>' (gateway.admin.token)"
            : "unauthorized: the bearer token is not the admin token");
    }

    private IResult Read<T>(string what, Func<T> read, JsonTypeInfo<T> type)
    {
        try
        {
            return Results.Json(read(), type);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The component's message could carry anything; the client gets a pointer to the log only.
            LogSourceFailed(_logger, what, ex);
            return Error(StatusCodes.Status500InternalServerError, $"the {what} status could not be read; see the gateway log");
        }
    }

    private async Task<IResult> LeaveAsync(HttpContext context)
    {
        // A browser on another site could post a plain form here; only same-origin or non-browser clients may.
        if (IsCrossSite(context.Request))
        {
            return Error(StatusCodes.Status403Forbidden, "forbidden: cross-site requests cannot make this gateway leave the ring");
        }

        if (_sources.Ring is not { } ring)
        {
            return Error(StatusCodes.Status409Conflict,
                "no ring is configured (gateway.ring), so there is nothing to leave; stop the process with SIGTERM to drain it");
        }

        LogLeaveRequested(_logger, context.Connection.RemoteIpAddress?.ToString() ?? "-");
        await ring.LeaveAsync(context.RequestAborted).ConfigureAwait(false);
        var snapshot = ring.Snapshot();
        var self = snapshot.Members.FirstOrDefault(m => string.Equals(m.Id, snapshot.SelfId, StringComparison.Ordinal));
        return Results.Json(new LeaveResponse(snapshot.SelfId, StateName(self?.State ?? RingMemberState.Leaving)), _json.LeaveResponse,
            statusCode: StatusCodes.Status202Accepted);
    }

    private static bool IsCrossSite(HttpRequest request)
    {
        if (request.Headers["Sec-Fetch-Site"].ToString() is "cross-site" or "same-site")
        {
            return true;
        }

        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0)
        {
            return false;
        }

        return !Uri.TryCreate(origin, UriKind.Absolute, out var uri) ||
            !string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase);
    }

    private IResult Error(int status, string message) =>
        Results.Json(new ErrorResponse(message), _json.ErrorResponse, statusCode: status);

    /// <summary>Writes every string through the scrubber, whichever field it is in.</summary>
    private sealed class ScrubbingStringConverter(SecretScrubber scrubber) : JsonConverter<string>
    {
        public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetString();

        public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) =>
            writer.WriteStringValue(scrubber.Scrub(value));
    }
}

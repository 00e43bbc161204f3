using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using PgOtelGateway.Shared.Cli;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Admin;

/// <summary>
/// <c>pgotel-gateway admin status|ring|ha|dedup|exporters|instances|config|leave [--url URL] [--token-file FILE]
/// [--json] [--timeout 10s]</c>: reads a running gateway's admin API and prints aligned tables (or the JSON).
/// Exit codes: 0 ok, 1 the request failed (the message names the URL and the status, never the token), 2 usage.
/// </summary>
internal static class AdminCli
{
    /// <summary>Printed with every usage error and for <c>--help</c>.</summary>
    public const string Usage =
        "usage: pgotel-gateway admin status|ring|ha|dedup|exporters|instances|config|leave " +
        "[--url URL] [--token-file FILE] [--json] [--timeout DURATION]\n" +
        "  --url         the gateway's admin endpoint (default http://127.0.0.1:8080)\n" +
        "  --token-file  a file holding the admin token (gateway.admin.token), sent as a bearer token\n" +
        "  --json        print the API's JSON instead of tables\n" +
        "  --timeout     how long to wait for the answer (default 10s)";

    /// <summary>Exit code: the command worked.</summary>
    public const int Ok = 0;

    /// <summary>Exit code: the request failed (connection, status, unexpected answer).</summary>
    public const int RequestFailed = 1;

    /// <summary>Exit code: the command line is wrong.</summary>
    public const int UsageError = 2;

    private static readonly Uri DefaultUrl = new("http://127.0.0.1:8080/");

    /// <summary>Runs the command given after <c>admin</c> in <paramref name="commandLine"/>.</summary>
    public static Task<int> RunAsync(CommandLine commandLine, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default) =>
        RunAsync(commandLine, stdout, stderr, handler: null, cancellationToken);

    /// <summary>As <see cref="RunAsync(CommandLine, TextWriter, TextWriter, CancellationToken)"/>, through a given HTTP handler (tests).</summary>
    internal static async Task<int> RunAsync(CommandLine commandLine, TextWriter stdout, TextWriter stderr, HttpMessageHandler? handler, CancellationToken cancellationToken)
    {
        if (!TryParse(commandLine.Rest, out var args, out var problem))
        {
            stderr.WriteLine("admin: " + problem);
            stderr.WriteLine(Usage);
            return UsageError;
        }

        if (args.Help)
        {
            stdout.WriteLine(Usage);
            return Ok;
        }

        string? token = null;
        if (args.TokenFile is not null)
        {
            try
            {
                token = (await File.ReadAllTextAsync(args.TokenFile, cancellationToken).ConfigureAwait(false)).TrimEnd('\r', '\n');
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"admin: cannot read token file '{args.TokenFile}': {ex.GetType().Name}");
                return UsageError;
            }

            if (token.Length == 0)
            {
                stderr.WriteLine($"admin: token file '{args.TokenFile}' is empty");
                return UsageError;
            }
        }

        using var http = new HttpClient(handler ?? new SocketsHttpHandler(), disposeHandler: handler is null) { Timeout = args.Timeout };
        var client = new Client(http, args.BaseUrl, token, stderr);
        try
        {
            return args.Command switch
            {
                "status" => await PrintAsync(client, "status", AdminJsonContext.Default.StatusResponse, args.Json, stdout, PrintStatus, cancellationToken).ConfigureAwait(false),
                "ring" => await PrintAsync(client, "ring", AdminJsonContext.Default.RingResponse, args.Json, stdout, PrintRing, cancellationToken).ConfigureAwait(false),
                "ha" => await PrintAsync(client, "ha", AdminJsonContext.Default.HaResponse, args.Json, stdout, PrintHa, cancellationToken).ConfigureAwait(false),
                "dedup" => await PrintAsync(client, "dedup", AdminJsonContext.Default.DedupResponse, args.Json, stdout, PrintDedup, cancellationToken).ConfigureAwait(false),
                "exporters" => await PrintAsync(client, "exporters", AdminJsonContext.Default.ExportersResponse, args.Json, stdout, PrintExporters, cancellationToken).ConfigureAwait(false),
                "instances" => await PrintAsync(client, "instances", AdminJsonContext.Default.InstancesResponse, args.Json, stdout, PrintInstances, cancellationToken).ConfigureAwait(false),
                "config" => await PrintAsync(client, "config", AdminJsonContext.Default.ConfigResponse, args.Json, stdout, PrintConfig, cancellationToken).ConfigureAwait(false),
                "leave" => await LeaveAsync(client, args.Json, stdout, cancellationToken).ConfigureAwait(false),
                _ => throw new InvalidOperationException("unreachable: the command was checked"),
            };
        }
        catch (RequestFailedException)
        {
            return RequestFailed;
        }
    }

    private static async Task<int> PrintAsync<T>(
        Client client,
        string path,
        JsonTypeInfo<T> type,
        bool json,
        TextWriter stdout,
        Action<T, DateTimeOffset, TextWriter> print,
        CancellationToken cancellationToken)
        where T : class
    {
        var (body, serverNow, request) = await client.SendAsync(HttpMethod.Get, path, cancellationToken).ConfigureAwait(false);
        var value = client.Deserialize(body, type, request);
        if (json)
        {
            stdout.Write(body);
            if (!body.EndsWith('\n'))
            {
                stdout.WriteLine();
            }
        }
        else
        {
            print(value, serverNow, stdout);
        }

        return Ok;
    }

    private static async Task<int> LeaveAsync(Client client, bool json, TextWriter stdout, CancellationToken cancellationToken)
    {
        var (body, _, request) = await client.SendAsync(HttpMethod.Post, "ring/leave", cancellationToken).ConfigureAwait(false);
        var value = client.Deserialize(body, AdminJsonContext.Default.LeaveResponse, request);
        stdout.WriteLine(json ? body.TrimEnd() : $"{value.SelfId} is {value.State}: it owns no streams now and drains before it exits");
        return Ok;
    }

    private static void PrintStatus(StatusResponse s, DateTimeOffset now, TextWriter o)
    {
        new TextTable("ID", "VERSION", "READY", "UPTIME", "STARTED")
            .Add(s.Id, s.Version, s.Ready ? "yes" : "no", Age(s.UptimeSeconds), Time(s.StartedAt))
            .WriteTo(o);
        o.WriteLine();
        var pipelines = new TextTable("PIPELINE", "RECEIVERS", "PROCESSORS", "EXPORTERS");
        foreach (var p in s.Pipelines)
        {
            pipelines.Add(p.Id, string.Join(", ", p.Receivers), string.Join(", ", p.Processors), string.Join(", ", p.Exporters));
        }

        pipelines.WriteTo(o);
    }

    private static void PrintRing(RingResponse r, DateTimeOffset now, TextWriter o)
    {
        if (!r.Enabled)
        {
            o.WriteLine($"no ring is configured (gateway.ring): {r.SelfId} owns every stream");
            return;
        }

        var table = new TextTable("MEMBER", "ADDRESS", "STATE", "LAST HEARTBEAT", "OWNED>", "SELF");
        foreach (var m in r.Members)
        {
            table.Add(m.Id, m.Address, m.State, Ago(m.LastHeartbeat, now),
                (m.OwnedFraction * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%", m.Self ? "*" : "");
        }

        table.WriteTo(o);
    }

    private static void PrintHa(HaResponse h, DateTimeOffset now, TextWriter o)
    {
        if (!h.Enabled)
        {
            o.WriteLine("no ha_tracker processor runs");
            return;
        }

        var table = new TextTable("CLUSTER", "ELECTED REPLICA", "SINCE", "FAILOVERS>", "PROCESSOR");
        foreach (var c in h.Clusters)
        {
            table.Add(c.Cluster, c.ElectedReplica, Ago(c.Since, now), Num(c.Failovers), c.Processor);
        }

        table.WriteTo(o);
    }

    private static void PrintDedup(DedupResponse d, DateTimeOffset now, TextWriter o)
    {
        if (!d.Enabled)
        {
            o.WriteLine("no dedupe processor runs");
            return;
        }

        var table = new TextTable("PROCESSOR", "CACHE SIZE>", "HITS LOCAL>", "HITS REDIS>", "MISSES>", "REDIS ERRORS>", "REDIS ROUND TRIPS>");
        foreach (var p in d.Processors)
        {
            table.Add(p.Processor, Num(p.CacheSize), Num(p.HitsLocal), Num(p.HitsRedis), Num(p.Misses), Num(p.RedisErrors), Num(p.RedisRoundTrips));
        }

        table.WriteTo(o);
    }

    private static void PrintExporters(ExportersResponse e, DateTimeOffset now, TextWriter o)
    {
        if (e.Exporters.Count == 0)
        {
            o.WriteLine("no exporter runs");
            return;
        }

        var table = new TextTable("EXPORTER", "QUEUE>", "QUEUE BYTES>", "OLDEST>", "SENT>", "FAILED>", "DROPPED>", "LAST ERROR");
        foreach (var x in e.Exporters)
        {
            var error = x.LastError is null ? null : $"{Ago(x.LastErrorTime, now)}: {x.LastError}";
            table.Add(x.Name, Num(x.QueueRecords), Num(x.QueueBytes), x.OldestItemAgeSeconds is { } age ? Age(age) : null,
                Num(x.SentPoints), Num(x.FailedPoints), Num(x.DroppedPoints), error);
        }

        table.WriteTo(o);
    }

    private static void PrintInstances(InstancesResponse i, DateTimeOffset now, TextWriter o)
    {
        if (!i.Enabled)
        {
            o.WriteLine("no instance tracker runs");
            return;
        }

        if (i.Instances.Count == 0)
        {
            o.WriteLine("no PostgreSQL instance seen yet");
        }
        else
        {
            var table = new TextTable("CLUSTER", "INSTANCE", "ROLE", "AGENTS", "LAST SEEN", "SERIES>", "POINTS/S>");
            foreach (var x in i.Instances)
            {
                table.Add(x.Cluster, x.Instance, x.Role, string.Join(", ", x.Agents.Select(a => a.Id)), Ago(x.LastSeen, now), Num(x.Series),
                    x.PointsPerSecond.ToString("0.0", CultureInfo.InvariantCulture));
            }

            table.WriteTo(o);
        }

        if (i.OverLimitResources > 0)
        {
            o.WriteLine($"{Num(i.OverLimitResources)} resources were not tracked: gateway.admin.instances.max_instances was reached");
        }
    }

    private static void PrintConfig(ConfigResponse c, DateTimeOffset now, TextWriter o)
    {
        o.WriteLine("# source: " + c.Source);
        o.Write(c.Yaml);
        if (!c.Yaml.EndsWith('\n'))
        {
            o.WriteLine();
        }
    }

    private static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Time(DateTime utc) => utc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    // Ages are measured against the server's Date header, so a skewed local clock does not distort them.
    private static string Ago(DateTime? utc, DateTimeOffset serverNow) =>
        utc is { } t ? Age((serverNow - new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc))).TotalSeconds) + " ago" : "-";

    /// <summary><c>4.2s</c>, <c>12s</c>, <c>3m05s</c>, <c>2h07m</c>, <c>3d04h</c>.</summary>
    internal static string Age(double seconds)
    {
        var s = Math.Max(0, seconds);
        if (s < 10)
        {
            return s.ToString("0.0", CultureInfo.InvariantCulture) + "s";
        }

        var total = (long)s;
        if (total < 60)
        {
            return total.ToString(CultureInfo.InvariantCulture) + "s";
        }

        var (d, h, m, sec) = (total / 86400, total / 3600 % 24, total / 60 % 60, total % 60);
        return d > 0 ? string.Create(CultureInfo.InvariantCulture, $"{d}d{h:00}h")
            : total >= 3600 ? string.Create(CultureInfo.InvariantCulture, $"{total / 3600}h{m:00}m")
            : string.Create(CultureInfo.InvariantCulture, $"{total / 60}m{sec:00}s");
    }

    private static bool TryParse(IReadOnlyList<string> rest, out CliArgs args, out string problem)
    {
        args = new CliArgs();
        problem = "";
        string? command = null, url = null, tokenFile = null, timeout = null;
        for (var i = 0; i < rest.Count; i++)
        {
            var arg = rest[i];
            if (arg is "-h" or "--help")
            {
                args = args with { Help = true };
                return true;
            }

            if (arg == "--json")
            {
                args = args with { Json = true };
            }
            else if (TakeValue(rest, ref i, "--url", ref url, ref problem) ||
                TakeValue(rest, ref i, "--token-file", ref tokenFile, ref problem) ||
                TakeValue(rest, ref i, "--timeout", ref timeout, ref problem))
            {
                if (problem.Length > 0)
                {
                    return false;
                }
            }
            else if (arg.StartsWith('-'))
            {
                problem = $"unknown option '{arg}'";
                return false;
            }
            else if (command is null)
            {
                command = arg;
            }
            else
            {
                problem = $"unexpected argument '{arg}'";
                return false;
            }
        }

        if (command is null)
        {
            problem = "which command? status, ring, ha, dedup, exporters, instances, config or leave";
            return false;
        }

        if (command is not ("status" or "ring" or "ha" or "dedup" or "exporters" or "instances" or "config" or "leave"))
        {
            problem = $"unknown admin command '{command}'";
            return false;
        }

        var baseUrl = DefaultUrl;
        if (url is not null)
        {
            if (!Uri.TryCreate(url.Contains("://", StringComparison.Ordinal) ? url : "http://" + url, UriKind.Absolute, out var parsed) ||
                parsed.Scheme is not ("http" or "https"))
            {
                problem = "--url must be an http or https URL such as http://gateway-0:8080";
                return false;
            }

            baseUrl = parsed;
        }

        var wait = TimeSpan.FromSeconds(10);
        if (timeout is not null && (!Duration.TryParse(timeout, out wait) || wait <= TimeSpan.Zero))
        {
            problem = $"--timeout '{timeout}' is not a positive duration such as 10s";
            return false;
        }

        args = args with { Command = command, BaseUrl = baseUrl, TokenFile = tokenFile, Timeout = wait };
        return true;
    }

    private static bool TakeValue(IReadOnlyList<string> rest, ref int i, string option, ref string? value, ref string problem)
    {
        var arg = rest[i];
        if (arg == option)
        {
            if (i + 1 >= rest.Count)
            {
                problem = $"{option} needs a value";
                return true;
            }

            value = rest[++i];
            return true;
        }

        if (arg.StartsWith(option + "=", StringComparison.Ordinal))
        {
            value = arg[(option.Length + 1)..];
            return true;
        }

        return false;
    }

    private sealed record CliArgs
    {
        public string Command { get; init; } = "";

        public Uri BaseUrl { get; init; } = DefaultUrl;

        public string? TokenFile { get; init; }

        public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

        public bool Json { get; init; }

        public bool Help { get; init; }
    }

    /// <summary>The request failed and the reason was printed.</summary>
    private sealed class RequestFailedException : Exception;

    private sealed class Client(HttpClient http, Uri baseUrl, string? token, TextWriter stderr)
    {
        public async Task<(string Body, DateTimeOffset ServerNow, string Shown)> SendAsync(HttpMethod method, string path, CancellationToken cancellationToken)
        {
            var url = new Uri(baseUrl.GetLeftPart(UriPartial.Path).TrimEnd('/') + AdminApi.Prefix + "/" + path);
            var shown = Display(url);
            using var request = new HttpRequestMessage(method, url);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            if (token is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw Fail($"{method} {shown} failed: no answer within {Duration.Format(http.Timeout)}");
            }
            catch (HttpRequestException ex)
            {
                // The message names the endpoint and the socket error, never request headers.
                throw Fail($"{method} {shown} failed: {ex.Message}");
            }

            using (response)
            {
                var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                {
                    var status = $"{(int)response.StatusCode} {response.ReasonPhrase}";
                    var detail = ErrorText(body);
                    var hint = response.StatusCode == HttpStatusCode.Unauthorized
                        ? token is null ? " (this gateway asks for its admin token: --token-file FILE)" : " (the token in --token-file is not the admin token)"
                        : "";
                    throw Fail($"{method} {shown}: {status}{(detail is null ? "" : ": " + detail)}{hint}");
                }

                var serverNow = response.Headers.Date ?? DateTimeOffset.UtcNow;
                return (body, serverNow, $"{method} {shown}");
            }
        }

        public T Deserialize<T>(string body, JsonTypeInfo<T> type, string request)
            where T : class
        {
            try
            {
                return JsonSerializer.Deserialize(body, type) ?? throw new JsonException("null");
            }
            catch (JsonException ex)
            {
                throw Fail($"{request}: the answer is not the admin API's JSON ({ex.Message})");
            }
        }

        private static string? ErrorText(string body)
        {
            try
            {
                return JsonSerializer.Deserialize(body, AdminJsonContext.Default.ErrorResponse)?.Error;
            }
            catch (JsonException)
            {
                return null;
            }
        }

        private RequestFailedException Fail(string message)
        {
            stderr.WriteLine("admin: " + message);
            return new RequestFailedException();
        }

        // No user info, query or fragment: whatever a user put there stays off the screen and out of logs.
        private static string Display(Uri url) => url.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);
    }
}

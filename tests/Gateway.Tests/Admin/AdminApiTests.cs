using System.Net;
using System.Text.Json;
using PgOtelGateway.Gateway.Admin;
using Xunit;

namespace PgOtelGateway.Gateway.Tests.Admin;

public sealed class AdminApiTests
{
    private const string Token = "admin-token-0123456789abcdef";

    public static TheoryData<string, string> ProtectedRoutes => new()
    {
        { "GET", "/api/v1/status" },
        { "GET", "/api/v1/ring" },
        { "GET", "/api/v1/ha" },
        { "GET", "/api/v1/dedup" },
        { "GET", "/api/v1/exporters" },
        { "GET", "/api/v1/instances" },
        { "GET", "/api/v1/config" },
        { "POST", "/api/v1/ring/leave" },
    };

    [Fact]
    public async Task Status_ReturnsIdVersionUptimeReadyAndPipelines()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(), Token);

        var status = await server.GetJsonAsync("/api/v1/status");

        Assert.Equal("gw-test", status.GetProperty("id").GetString());
        Assert.Equal("1.2.3", status.GetProperty("version").GetString());
        Assert.Equal("2025-03-01T10:00:00Z", status.GetProperty("started_at").GetString());
        Assert.Equal(3725.5, status.GetProperty("uptime_seconds").GetDouble());
        Assert.True(status.GetProperty("ready").GetBoolean());
        var pipeline = Assert.Single(status.GetProperty("pipelines").EnumerateArray());
        Assert.Equal("metrics", pipeline.GetProperty("id").GetString());
        Assert.Equal(["otlp"], Strings(pipeline.GetProperty("receivers")));
        Assert.Equal(["memory_limiter", "dedupe", "batch"], Strings(pipeline.GetProperty("processors")));
        Assert.Equal(["prometheusremotewrite", "parquet"], Strings(pipeline.GetProperty("exporters")));
    }

    [Fact]
    public async Task Ring_ReturnsMembersByIdWithStateHeartbeatOwnershipAndSelf()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(), Token);

        var ring = await server.GetJsonAsync("/api/v1/ring");

        Assert.True(ring.GetProperty("enabled").GetBoolean());
        Assert.Equal("gw-b", ring.GetProperty("self_id").GetString());
        var members = ring.GetProperty("members").EnumerateArray().ToList();
        Assert.Equal(["gw-a", "gw-b", "gw-c"], members.Select(m => m.GetProperty("id").GetString()!));
        Assert.Equal(["ACTIVE", "ACTIVE", "JOINING"], members.Select(m => m.GetProperty("state").GetString()!));
        Assert.Equal("10.0.0.1:4317", members[0].GetProperty("address").GetString());
        Assert.Equal("2025-03-01T11:00:00Z", members[0].GetProperty("last_heartbeat").GetString());
        Assert.Equal(JsonValueKind.Null, members[2].GetProperty("last_heartbeat").ValueKind);
        Assert.Equal(0.5, members[0].GetProperty("owned_fraction").GetDouble());
        Assert.Equal([false, true, false], members.Select(m => m.GetProperty("self").GetBoolean()));
    }

    [Fact]
    public async Task Ring_WithNoRingConfigured_ReturnsDisabledWithSelfIdAndNoMembers()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.EmptySources(), Token);

        var ring = await server.GetJsonAsync("/api/v1/ring");

        Assert.False(ring.GetProperty("enabled").GetBoolean());
        Assert.Equal("gw-test", ring.GetProperty("self_id").GetString());
        Assert.Empty(ring.GetProperty("members").EnumerateArray());
    }

    [Fact]
    public async Task Ha_ReturnsElectedReplicaPerClusterSortedByCluster()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(), Token);

        var ha = await server.GetJsonAsync("/api/v1/ha");

        Assert.True(ha.GetProperty("enabled").GetBoolean());
        var clusters = ha.GetProperty("clusters").EnumerateArray().ToList();
        Assert.Equal(["pg-billing", "pg-orders"], clusters.Select(c => c.GetProperty("cluster").GetString()!));
        Assert.Equal("agent-2", clusters[1].GetProperty("elected_replica").GetString());
        Assert.Equal("2025-03-01T10:30:00Z", clusters[1].GetProperty("since").GetString());
        Assert.Equal(3, clusters[1].GetProperty("failovers").GetInt64());
        Assert.Equal("ha_tracker", clusters[1].GetProperty("processor").GetString());
    }

    [Theory]
    [InlineData("/api/v1/ha", "clusters")]
    [InlineData("/api/v1/dedup", "processors")]
    [InlineData("/api/v1/instances", "instances")]
    public async Task Endpoint_WithComponentAbsent_ReturnsDisabledAndEmptyList(string path, string list)
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.EmptySources(), Token);

        var body = await server.GetJsonAsync(path);

        Assert.False(body.GetProperty("enabled").GetBoolean());
        Assert.Empty(body.GetProperty(list).EnumerateArray());
    }

    [Fact]
    public async Task Exporters_WithNoExporter_ReturnsEmptyList()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.EmptySources(), Token);

        var body = await server.GetJsonAsync("/api/v1/exporters");

        Assert.Empty(body.GetProperty("exporters").EnumerateArray());
    }

    [Fact]
    public async Task Dedup_ReturnsCacheHitsMissesAndRedisCounters()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(), Token);

        var dedup = await server.GetJsonAsync("/api/v1/dedup");

        Assert.True(dedup.GetProperty("enabled").GetBoolean());
        var p = Assert.Single(dedup.GetProperty("processors").EnumerateArray());
        Assert.Equal("dedupe", p.GetProperty("processor").GetString());
        Assert.Equal(1200, p.GetProperty("cache_size").GetInt64());
        Assert.Equal(5000, p.GetProperty("hits_local").GetInt64());
        Assert.Equal(40, p.GetProperty("hits_redis").GetInt64());
        Assert.Equal(7000, p.GetProperty("misses").GetInt64());
        Assert.Equal(2, p.GetProperty("redis_errors").GetInt64());
        Assert.Equal(350, p.GetProperty("redis_round_trips").GetInt64());
    }

    [Fact]
    public async Task Exporters_ReturnsQueueDepthAgeCountersAndLastError()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(), Token);

        var body = await server.GetJsonAsync("/api/v1/exporters");

        var exporters = body.GetProperty("exporters").EnumerateArray().ToList();
        Assert.Equal(["prometheusremotewrite", "parquet"], exporters.Select(e => e.GetProperty("name").GetString()!));
        var rw = exporters[0];
        Assert.Equal(12, rw.GetProperty("queue_records").GetInt64());
        Assert.Equal(345_678, rw.GetProperty("queue_bytes").GetInt64());
        Assert.Equal(4.25, rw.GetProperty("oldest_item_age_seconds").GetDouble());
        Assert.Equal(1_000_000, rw.GetProperty("sent_points").GetInt64());
        Assert.Equal(20, rw.GetProperty("failed_points").GetInt64());
        Assert.Equal(3, rw.GetProperty("dropped_points").GetInt64());
        Assert.Equal("HTTP 503 from http://prometheus:9090/api/v1/write", rw.GetProperty("last_error").GetString());
        Assert.Equal("2025-03-01T10:59:00Z", rw.GetProperty("last_error_time").GetString());
        Assert.Equal(JsonValueKind.Null, exporters[1].GetProperty("last_error").ValueKind);
    }

    [Fact]
    public async Task Instances_ReturnsWhatTheTrackerSaw()
    {
        var tracker = new InstanceTracker();
        tracker.Observe(TestRequests.Postgres("pg-orders", "10.1.0.5:5432", "primary", "agent-1", metrics: 3, pointsPerMetric: 4));
        tracker.Observe(TestRequests.Postgres("pg-orders", "10.1.0.5:5432", "primary", "agent-2", metrics: 3, pointsPerMetric: 4));
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(tracker), Token);

        var body = await server.GetJsonAsync("/api/v1/instances");

        Assert.True(body.GetProperty("enabled").GetBoolean());
        Assert.Equal(0, body.GetProperty("over_limit_resources").GetInt64());
        var instance = Assert.Single(body.GetProperty("instances").EnumerateArray());
        Assert.Equal("pg-orders", instance.GetProperty("cluster").GetString());
        Assert.Equal("10.1.0.5:5432", instance.GetProperty("instance").GetString());
        Assert.Equal("primary", instance.GetProperty("role").GetString());
        Assert.Equal(["agent-1", "agent-2"], instance.GetProperty("agents").EnumerateArray().Select(a => a.GetProperty("id").GetString()!));
        Assert.Equal(12, instance.GetProperty("series").GetInt64());
        Assert.True(instance.GetProperty("points_per_second").GetDouble() > 0);
        Assert.True(instance.TryGetProperty("last_seen", out _));
        Assert.True(instance.TryGetProperty("first_seen", out _));
    }

    [Fact]
    public async Task Config_ReturnsSourceAndRedactedYaml()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(), Token);

        var config = await server.GetJsonAsync("/api/v1/config");

        Assert.Equal("/etc/pgotel/gateway.yaml", config.GetProperty("source").GetString());
        Assert.Equal("gateway:\n  id: gw-test\n", config.GetProperty("yaml").GetString());
    }

    [Theory]
    [MemberData(nameof(ProtectedRoutes))]
    public async Task Request_WithoutToken_Returns401WithBearerChallenge(string method, string path)
    {
        var ring = new FakeRing();
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(ring: ring), Token);

        using var response = await server.SendAsync(new HttpMethod(method), path, token: "");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer realm=\"pgotel-admin\"", response.Headers.WwwAuthenticate.ToString());
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("unauthorized", body, StringComparison.Ordinal);
        Assert.DoesNotContain("gw-a", body, StringComparison.Ordinal);
        Assert.Equal(0, ring.LeaveCalls);
    }

    [Theory]
    [MemberData(nameof(ProtectedRoutes))]
    public async Task Request_WithWrongToken_Returns401InvalidToken(string method, string path)
    {
        var ring = new FakeRing();
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(ring: ring), Token);

        using var response = await server.SendAsync(new HttpMethod(method), path, token: Token + "x");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer realm=\"pgotel-admin\", error=\"invalid_token\"", response.Headers.WwwAuthenticate.ToString());
        Assert.Equal(0, ring.LeaveCalls);
    }

    [Theory]
    [InlineData("Basic YWRtaW46YWRtaW4=")]
    [InlineData("Bearer")]
    [InlineData("admin-token-0123456789abcdef")]
    public async Task Request_WithOtherAuthorizationForms_Returns401(string header)
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(), Token);

        using var response = await server.SendAsync(HttpMethod.Get, "/api/v1/status", token: "",
            configure: r => r.Headers.TryAddWithoutValidation("Authorization", header));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Request_WithTokenSchemeInLowerCase_IsServed()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(), Token);

        using var response = await server.SendAsync(HttpMethod.Get, "/api/v1/status", token: "",
            configure: r => r.Headers.TryAddWithoutValidation("Authorization", "bearer " + Token));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Request_WhenNoTokenIsConfigured_IsServedWithoutOne()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(), token: "");

        using var response = await server.SendAsync(HttpMethod.Get, "/api/v1/ring", token: "");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Leave_TurnsSelfLeavingAndReturns202()
    {
        var ring = new FakeRing();
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(ring: ring), Token);

        using var response = await server.SendAsync(HttpMethod.Post, "/api/v1/ring/leave");

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("gw-b", body.RootElement.GetProperty("self_id").GetString());
        Assert.Equal("LEAVING", body.RootElement.GetProperty("state").GetString());
        Assert.Equal(1, ring.LeaveCalls);
        var after = await server.GetJsonAsync("/api/v1/ring");
        Assert.Contains(after.GetProperty("members").EnumerateArray(), m => m.GetProperty("id").GetString() == "gw-b" && m.GetProperty("state").GetString() == "LEAVING");
    }

    [Fact]
    public async Task Leave_WithNoRingConfigured_Returns409SayingWhy()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.EmptySources(), Token);

        using var response = await server.SendAsync(HttpMethod.Post, "/api/v1/ring/leave");

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("no ring is configured", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Origin", "https://evil.example")]
    [InlineData("Sec-Fetch-Site", "cross-site")]
    public async Task Leave_FromAnotherSite_Returns403AndStays(string header, string value)
    {
        var ring = new FakeRing();
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(ring: ring), token: "");

        using var response = await server.SendAsync(HttpMethod.Post, "/api/v1/ring/leave", configure: r => r.Headers.Add(header, value));

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal(0, ring.LeaveCalls);
    }

    [Fact]
    public async Task Leave_WithGet_IsNotAllowed()
    {
        var ring = new FakeRing();
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(ring: ring), Token);

        using var response = await server.SendAsync(HttpMethod.Get, "/api/v1/ring/leave");

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal(0, ring.LeaveCalls);
    }

    [Fact]
    public async Task Endpoint_WhenSourceThrows_Returns500WithoutTheExceptionText()
    {
        var sources = new AdminSources { Pipeline = new FakePipelineStatus(), Dedup = [new ThrowingDedup()] };
        await using var server = await AdminTestServer.StartAsync(sources, Token);

        using var response = await server.SendAsync(HttpMethod.Get, "/api/v1/dedup");

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("see the gateway log", body, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StatusPage_IsServedWithoutTokenAndHoldsNoData()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(), Token);

        using var response = await server.SendAsync(HttpMethod.Get, "/", token: "");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("id=\"ring-members\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("gw-a", html, StringComparison.Ordinal);
        Assert.DoesNotContain("gw-test", html, StringComparison.Ordinal);

        // Self-contained: nothing is loaded from anywhere.
        Assert.DoesNotContain("src=", html, StringComparison.Ordinal);
        Assert.DoesNotContain("http://", html, StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);
        var csp = Assert.Single(response.Headers.GetValues("Content-Security-Policy"));
        Assert.StartsWith("default-src 'none'; script-src 'sha256-", csp, StringComparison.Ordinal);
        Assert.Contains("connect-src 'self'", csp, StringComparison.Ordinal);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
    }

    [Fact]
    public async Task ApiResponses_AreNotCachedAndNotSniffed()
    {
        await using var server = await AdminTestServer.StartAsync(AdminTestServer.FullSources(), Token);

        using var response = await server.SendAsync(HttpMethod.Get, "/api/v1/status");

        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
    }

    private static string[] Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];
}

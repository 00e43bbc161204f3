using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Gateway.Admin;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Admin;

/// <summary>The status page in a real headless Chromium: its script must fetch the API and fill the tables.</summary>
public sealed partial class StatusPageChromiumTests
{
    private const string Token = "page-token-9b7c1d2e";

    [Fact]
    public async Task StatusPage_WithTokenInFragment_ShowsRingMembersInTheRenderedDom()
    {
        await using var server = await StartAsync(Token);

        var dom = await Chromium.DumpDomAsync(server.LocalUrl + "#token=" + Token);

        var ring = Table(dom, "ring-members");
        Assert.Equal(["gw-alpha", "gw-beta", "gw-gamma"], RowIds(ring));
        Assert.Contains("<td>gw-beta (self)</td>", ring, StringComparison.Ordinal);
        Assert.Contains(">ACTIVE<", ring, StringComparison.Ordinal);
        Assert.Contains(">LEAVING<", ring, StringComparison.Ordinal);
        Assert.Contains("10.0.0.2:4317", ring, StringComparison.Ordinal);

        // The other sections were filled from their endpoints too.
        Assert.Equal(["pg-orders"], RowIds(Table(dom, "ha-clusters")));
        Assert.Equal(["dedupe"], RowIds(Table(dom, "dedup-processors")));
        Assert.Equal(["prometheusremotewrite"], RowIds(Table(dom, "exporters")));
        Assert.Equal(["pg-orders/10.1.0.5:5432"], RowIds(Table(dom, "instances")));
        Assert.Contains("<span id=\"gateway-id\">gw-beta</span>", dom, StringComparison.Ordinal);
        Assert.Contains("<form id=\"token-form\" hidden=\"\">", dom, StringComparison.Ordinal);

        // The token is not left in the page (the script removed it from the address and keeps it in sessionStorage).
        Assert.DoesNotContain(Token, dom, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StatusPage_WithoutToken_AsksForItAndShowsNoData()
    {
        await using var server = await StartAsync(Token);

        var dom = await Chromium.DumpDomAsync(server.LocalUrl.ToString());

        Assert.Contains("This gateway asks for its admin token.", dom, StringComparison.Ordinal);
        Assert.Matches("<form id=\"token-form\">", dom);
        Assert.Empty(RowIds(Table(dom, "ring-members")));
        Assert.DoesNotContain("gw-alpha", dom, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StatusPage_WithWrongToken_SaysSoAndShowsNoData()
    {
        await using var server = await StartAsync(Token);

        var dom = await Chromium.DumpDomAsync(server.LocalUrl + "#token=not-the-token");

        Assert.Contains("The admin token was not accepted.", dom, StringComparison.Ordinal);
        Assert.DoesNotContain("gw-alpha", dom, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StatusPage_WithComponentsAbsent_SaysWhatIsOff()
    {
        await using var server = await StartAsync(token: "", full: false);

        var dom = await Chromium.DumpDomAsync(server.LocalUrl.ToString());

        Assert.Contains("No ring is configured", dom, StringComparison.Ordinal);
        Assert.Contains("No ha_tracker processor runs.", dom, StringComparison.Ordinal);
        Assert.Contains("No dedupe processor runs.", dom, StringComparison.Ordinal);
        Assert.Contains("<span id=\"gateway-id\">gw-solo</span>", dom, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StatusPage_WithMarkupInClientSuppliedNames_ShowsItAsText()
    {
        var tracker = new InstanceTracker();
        tracker.Observe(Request("<img src=x onerror=alert(1)>", "h:5432", "agent-<b>x</b>"));
        await using var server = await StartAsync(token: "", full: true, tracker);

        var dom = await Chromium.DumpDomAsync(server.LocalUrl.ToString());

        var instances = Table(dom, "instances");
        Assert.Contains("&lt;img src=x onerror=alert(1)&gt;", instances, StringComparison.Ordinal);
        Assert.Contains("agent-&lt;b&gt;x&lt;/b&gt;", instances, StringComparison.Ordinal);
        Assert.DoesNotContain("<img", instances, StringComparison.Ordinal);
    }

    private static async Task<AdminServer> StartAsync(string token, bool full = true, InstanceTracker? tracker = null)
    {
        AdminSources sources;
        if (full)
        {
            if (tracker is null)
            {
                tracker = new InstanceTracker();
                tracker.Observe(Request("pg-orders", "10.1.0.5:5432", "agent-1"));
                tracker.Observe(Request("pg-orders", "10.1.0.5:5432", "agent-2"));
            }

            sources = new AdminSources
            {
                Pipeline = new Pipeline("gw-beta"),
                Ring = new Ring(),
                Ha = [new Ha()],
                Dedup = [new Dedup()],
                Exporters = [new Exporter()],
                Instances = tracker,
            };
        }
        else
        {
            sources = new AdminSources { Pipeline = new Pipeline("gw-solo") };
        }

        var server = new AdminServer(new AdminOptions { Endpoint = "127.0.0.1:0", Token = token }, sources, NullLoggerFactory.Instance);
        using var cts = new CancellationTokenSource(TestTimeouts.Short);
        await server.StartAsync(cts.Token);
        return server;
    }

    private static string Table(string dom, string id)
    {
        var match = Regex.Match(dom, $"<table id=\"{id}\">(.*?)</table>", RegexOptions.Singleline);
        Assert.True(match.Success, $"no table #{id} in the DOM:\n{dom}");
        return match.Groups[1].Value;
    }

    private static string[] RowIds(string table) =>
        [.. RowId().Matches(table).Select(m => System.Net.WebUtility.HtmlDecode(m.Groups[1].Value))];

    [GeneratedRegex("<tr data-id=\"([^\"]*)\">")]
    private static partial Regex RowId();

    private static ExportMetricsServiceRequest Request(string cluster, string instance, string agent)
    {
        var resource = new Resource();
        foreach (var (k, v) in new[] { ("service.name", "postgresql"), ("db.cluster", cluster), ("db.instance", instance), ("db.role", "primary"), ("agent.id", agent) })
        {
            resource.Attributes.Add(new KeyValue { Key = k, Value = new AnyValue { StringValue = v } });
        }

        var gauge = new Gauge();
        gauge.DataPoints.Add(new NumberDataPoint { AsDouble = 1, TimeUnixNano = 1 });
        var scope = new ScopeMetrics();
        scope.Metrics.Add(new Metric { Name = "postgresql.up", Gauge = gauge });
        var rm = new ResourceMetrics { Resource = resource };
        rm.ScopeMetrics.Add(scope);
        var request = new ExportMetricsServiceRequest();
        request.ResourceMetrics.Add(rm);
        return request;
    }

    private sealed class Pipeline(string id) : IPipelineStatus
    {
        public PipelineStatusSnapshot Snapshot() => new(id, "0.1.0", DateTimeOffset.UtcNow.AddMinutes(-5), TimeSpan.FromMinutes(5), true,
            [new PipelineSummary("metrics", ["otlp"], ["dedupe", "batch"], ["prometheusremotewrite"])]);
    }

    private sealed class Ring : IRingStatus
    {
        public RingSnapshot Snapshot() => new("gw-beta",
        [
            new RingMemberSnapshot("gw-gamma", "10.0.0.3:4317", RingMemberState.Leaving, DateTimeOffset.UtcNow.AddSeconds(-3), 0),
            new RingMemberSnapshot("gw-alpha", "10.0.0.1:4317", RingMemberState.Active, DateTimeOffset.UtcNow.AddSeconds(-1), 0.49),
            new RingMemberSnapshot("gw-beta", "10.0.0.2:4317", RingMemberState.Active, DateTimeOffset.UtcNow, 0.51),
        ]);

        public Task LeaveAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class Ha : IHaStatus
    {
        public HaSnapshot Snapshot() => new("ha_tracker", [new HaClusterSnapshot("pg-orders", "agent-1", DateTimeOffset.UtcNow.AddMinutes(-2), 1)]);
    }

    private sealed class Dedup : IDedupStatus
    {
        public DedupSnapshot Snapshot() => new("dedupe", 10, 20, 3, 40, 0, 5);
    }

    private sealed class Exporter : IExporterStatus
    {
        public ExporterSnapshot Snapshot() => new("prometheusremotewrite", 0, 0, null, 100, 0, 0, null, null);
    }
}

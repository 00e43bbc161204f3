using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Google.Protobuf;
using OpenTelemetry.Proto.Common.V1;
using PgOtelGateway.Shared.Otlp;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// Ingest paths a well-behaved SDK rarely takes: OTLP/JSON bodies as other clients write them, compressed requests
/// on both transports, the default point limits at their edges, and the self-metrics those cases leave behind.
/// Everything that succeeds is read back from the real Prometheus.
/// </summary>
public sealed partial class OtlpIngestCoverageTests
{
    private const string TraceIdHex = "5b8efff798038103d269b633813fc60c";
    private const string SpanIdHex = "eee19b7ec3c1b174";
    private static readonly HttpClient Http = new() { Timeout = TestTimeouts.Short };

    [Fact]
    public async Task HttpJson_Int64AsStringsAndNumbersHexIdsAndUnknownFields_ArrivesTranslatedInPrometheus()
    {
        await using var gateway = await TestGateway.StartAsync();
        var metric = UniqueName.For("json_in");
        // A time in ms divisible by 4: as a JSON number its nanoseconds survive a double exactly (spacing 256 ns).
        var ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 4 * 4;
        var ns = (ms * 1_000_000L).ToString(CultureInfo.InvariantCulture);
        var json = $$$"""
            {
              "resourceMetrics": [{
                "resource": {
                  "attributes": [
                    {"key": "service.name", "value": {"stringValue": "json-client"}},
                    {"key": "service.instance.id", "value": {"stringValue": "{{{metric}}}"}}
                  ],
                  "droppedAttributesCount": 0,
                  "someFutureResourceField": {"nested": [1, 2, 3]}
                },
                "scopeMetrics": [{
                  "scope": {"name": "json-test", "version": "1.0"},
                  "metrics": [
                    {
                      "name": "{{{metric}}}",
                      "description": "int64 both ways",
                      "gauge": {"dataPoints": [
                        {"asInt": "42", "timeUnixNano": "{{{ns}}}", "attributes": [{"key": "form", "value": {"stringValue": "string"}}],
                         "exemplars": [{"asDouble": 1.5, "timeUnixNano": "{{{ns}}}", "traceId": "{{{TraceIdHex}}}", "spanId": "{{{SpanIdHex}}}",
                                        "filteredAttributes": [{"key": "user", "value": {"stringValue": "u1"}}]}]},
                        {"asInt": 43, "timeUnixNano": {{{ns}}}, "attributes": [{"key": "form", "value": {"stringValue": "number"}}], "unknownPointField": true}
                      ]}
                    },
                    {
                      "name": "{{{metric}}}_events",
                      "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [
                        {"asDouble": 7.5, "startTimeUnixNano": "{{{ns}}}", "timeUnixNano": "{{{ns}}}",
                         "exemplars": [{"asInt": "3", "timeUnixNano": "{{{ns}}}", "traceId": "{{{TraceIdHex}}}", "spanId": "{{{SpanIdHex}}}"}]}
                      ]},
                      "futureMetricField": "ignored"
                    }
                  ]
                }],
                "schemaUrl": ""
              }],
              "topLevelUnknown": {"a": "b"}
            }
            """;

        // What the gateway makes of the ids: hex decoded to the bytes, not read as base64.
        var parsed = OtlpJson.ParseRequest(json);
        var exemplar = parsed.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].Gauge.DataPoints[0].Exemplars[0];
        Assert.Equal(Convert.FromHexString(TraceIdHex), exemplar.TraceId.ToByteArray());
        Assert.Equal(Convert.FromHexString(SpanIdHex), exemplar.SpanId.ToByteArray());

        using var response = await PostJsonAsync(gateway, json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using (var reply = JsonDocument.Parse(body))
        {
            // A full success has no partial_success to report.
            Assert.False(reply.RootElement.TryGetProperty("partialSuccess", out var partial) && partial.TryGetProperty("rejectedDataPoints", out _), body);
        }

        using var prometheus = new PrometheusClient();
        var gauge = await prometheus.WaitForAsync(metric, r => r.Count == 2);
        Assert.Equal(42, gauge.Single(s => s.Labels["form"] == "string").Value);
        Assert.Equal(43, gauge.Single(s => s.Labels["form"] == "number").Value);
        var raw = await prometheus.RawSamplesAsync($"{metric}{{form=\"number\"}}", TimeSpan.FromMinutes(5));
        Assert.Equal(ms / 1000.0, Assert.Single(Assert.Single(raw).Samples).Time, 3);
        var sum = await prometheus.WaitForAsync(metric + "_events_total", r => r.Count == 1);
        Assert.Equal(7.5, sum[0].Value);
    }

    [Fact]
    public async Task HttpJson_ExemplarIdInBase64_IsRefusedAsNotHex()
    {
        await using var gateway = await TestGateway.StartAsync();
        var metric = UniqueName.For("json_b64");
        var base64Id = Convert.ToBase64String(Convert.FromHexString(TraceIdHex));
        var json = $$$"""
            {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "{{{metric}}}", "gauge": {"dataPoints": [
              {"asDouble": 1, "timeUnixNano": "1", "exemplars": [{"asDouble": 1, "traceId": "{{base64Id}}"}]}]}}]}]}]}
            """;

        using var response = await PostJsonAsync(gateway, json);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(400, (int)response.StatusCode);
        using var status = JsonDocument.Parse(body);
        Assert.Contains("not hex", status.RootElement.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task HttpJson_SomePointsOverTheDefaultLimits_AnswersPartialSuccessInOtlpJson()
    {
        await using var gateway = await TestGateway.StartAsync();
        var metric = UniqueName.For("json_partial");
        var now = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000L).ToString(CultureInfo.InvariantCulture);
        var longName = new string('n', 1025);
        var json = $$$"""
            {"resourceMetrics": [{
              "resource": {"attributes": [{"key": "service.instance.id", "value": {"stringValue": "{{{metric}}}"}}]},
              "scopeMetrics": [{"metrics": [{"name": "{{{metric}}}", "gauge": {"dataPoints": [
                {"asDouble": 1, "timeUnixNano": "{{{now}}}", "attributes": [{"key": "i", "value": {"stringValue": "good"}}]},
                {"asDouble": 2, "timeUnixNano": "{{{now}}}", "attributes": [{"key": "{{{longName}}}", "value": {"stringValue": "x"}}]}
              ]}}]}]}]}
            """;

        using var response = await PostJsonAsync(gateway, json);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var reply = JsonDocument.Parse(body);
        var partial = reply.RootElement.GetProperty("partialSuccess");
        // OTLP/JSON: lowerCamelCase field names, int64 as a decimal string.
        var rejected = partial.GetProperty("rejectedDataPoints");
        Assert.Equal(JsonValueKind.String, rejected.ValueKind);
        Assert.Equal("1", rejected.GetString());
        Assert.False(string.IsNullOrEmpty(partial.GetProperty("errorMessage").GetString()), body);

        using var prometheus = new PrometheusClient();
        var kept = await prometheus.WaitForAsync(metric, r => r.Count == 1);
        Assert.Equal("good", kept[0].Labels["i"]);
    }

    [Theory]
    [InlineData("grpc", "gzip")]
    [InlineData("grpc", "zstd")]
    [InlineData("http", "gzip")]
    [InlineData("http", "zstd")]
    public async Task Export_CompressedRequest_SucceedsAndArrivesInPrometheus(string transport, string encoding)
    {
        await using var gateway = await TestGateway.StartAsync();
        var metric = UniqueName.For($"compressed_{transport}_{encoding}");
        var plain = RawOtlpClient.Request(metric, 5, (p, i) => p.AsDouble = 10 + i).ToByteArray();
        var body = encoding == "gzip" ? RawOtlpClient.Gzip(plain) : RawOtlpClient.Zstd(plain);
        Assert.NotEqual(plain, body);

        var answer = transport == "grpc"
            ? await RawOtlpClient.GrpcAsync(gateway.GrpcPort, body, encoding).WaitAsync(TestTimeouts.Short)
            : await RawOtlpClient.HttpAsync(gateway.HttpPort, body, encoding: encoding).WaitAsync(TestTimeouts.Short);

        Assert.True(answer.Code == (transport == "grpc" ? 0 : 200), answer.ToString());
        Assert.Equal(0, answer.Rejected);
        using var prometheus = new PrometheusClient();
        var series = await prometheus.WaitForAsync(metric, r => r.Count == 5);
        Assert.Equal([10.0, 11, 12, 13, 14], series.Select(s => s.Value).Order());
    }

    [Theory]
    [InlineData("grpc")]
    [InlineData("http")]
    public async Task Export_AttributesAtAndJustOverTheDefaultLimits_RejectsOnlyThoseOver(string transport)
    {
        // The default configuration: no limits block in the receiver.
        await using var gateway = await TestGateway.StartAsync();
        var metric = UniqueName.For("default_limits_" + transport);
        var request = RawOtlpClient.Request(metric, 5, (p, i) =>
        {
            var (key, value) = i switch
            {
                0 => (new string('k', 1024), "v"),                  // name at the limit
                1 => (new string('k', 1025), "v"),                  // name one byte over
                2 => ("v", new string('v', 2048)),                  // value at the limit
                3 => ("v", new string('v', 2049)),                  // value one byte over
                _ => ("v", new string('é', 1025)),                  // 1025 characters, 2050 bytes: over in bytes
            };
            p.Attributes.Add(new KeyValue { Key = key, Value = new AnyValue { StringValue = value } });
        });

        var answer = transport == "grpc"
            ? await RawOtlpClient.GrpcAsync(gateway.GrpcPort, request.ToByteArray()).WaitAsync(TestTimeouts.Short)
            : await RawOtlpClient.HttpAsync(gateway.HttpPort, request.ToByteArray()).WaitAsync(TestTimeouts.Short);

        Assert.True(answer.Code == (transport == "grpc" ? 0 : 200), answer.ToString());
        Assert.Equal(3, answer.Rejected);
        Assert.NotEqual("", answer.Message);
        using var prometheus = new PrometheusClient();
        var kept = await prometheus.WaitForAsync(metric, r => r.Count == 2);
        Assert.Equal(["0", "2"], kept.Select(s => s.Labels["i"]).Order());
        Assert.Contains(kept, s => s.Labels.ContainsKey(new string('k', 1024)));
        Assert.Contains(kept, s => s.Labels.TryGetValue("v", out var v) && v.Length == 2048);
    }

    [Fact]
    public async Task SelfMetrics_AfterARejectedPointAndARateLimitedRequest_ShowTheReasonsAndExportLatency()
    {
        // Self-metrics are process-wide (every test gateway's receiver is "otlp"), so compare with a reading before.
        await using var gateway = await TestGateway.StartAsync("rate_limiting:\n  requests_per_second: 0.01\n  burst: 2");
        var before = await gateway.SelfMetricsAsync();
        var metric = UniqueName.For("self_metrics");
        var request = RawOtlpClient.Request(metric, 3, (p, i) =>
        {
            if (i == 1)
            {
                p.Attributes.Add(new KeyValue { Key = "long", Value = new AnyValue { StringValue = new string('x', 2049) } });
            }
        });

        var first = await RawOtlpClient.GrpcAsync(gateway.GrpcPort, request.ToByteArray()).WaitAsync(TestTimeouts.Short);
        Assert.Equal(1, first.Rejected);
        Assert.Equal(0, (await RawOtlpClient.GrpcAsync(gateway.GrpcPort, RawOtlpClient.Request(metric).ToByteArray()).WaitAsync(TestTimeouts.Short)).Code);
        var refused = await RawOtlpClient.GrpcAsync(gateway.GrpcPort, RawOtlpClient.Request(metric).ToByteArray()).WaitAsync(TestTimeouts.Short);
        Assert.Equal(8, refused.Code);
        using (var prometheus = new PrometheusClient())
        {
            await prometheus.WaitForAsync(metric, r => r.Count == 3);
        }

        var after = await gateway.SelfMetricsAsync();
        const string Rejected = "pgotel_receiver_rejected_points_total";
        const string Refused = "pgotel_receiver_refused_requests_total";
        const string Latency = "pgotel_exporter_send_duration_seconds_count";
        Assert.True(Value(after, Rejected, ("receiver", "otlp"), ("reason", "limits")) - Value(before, Rejected, ("receiver", "otlp"), ("reason", "limits")) >= 1, after);
        Assert.True(Value(after, Refused, ("receiver", "otlp"), ("reason", "rate_limited")) - Value(before, Refused, ("receiver", "otlp"), ("reason", "rate_limited")) >= 1, after);
        Assert.True(Value(after, Latency, ("exporter", "prometheusremotewrite"), ("outcome", "sent")) >= 1, after);
        Assert.Contains("pgotel_exporter_send_duration_seconds_bucket{", after, StringComparison.Ordinal);
    }

    private static async Task<HttpResponseMessage> PostJsonAsync(TestGateway gateway, string json)
    {
        var content = new StringContent(json, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return await Http.PostAsync(gateway.HttpUrl, content).WaitAsync(TestTimeouts.Short);
    }

    /// <summary>The value of one series in Prometheus text format (0 when absent): the sample whose labels include all of <paramref name="labels"/>.</summary>
    private static double Value(string text, string name, params (string Name, string Value)[] labels)
    {
        foreach (var line in text.Split('\n'))
        {
            var match = SampleLine().Match(line);
            if (!match.Success || match.Groups["name"].Value != name)
            {
                continue;
            }

            var set = match.Groups["labels"].Value;
            if (labels.All(l => set.Contains($"{l.Name}=\"{l.Value}\"", StringComparison.Ordinal)))
            {
                return double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)""")]
    private static partial Regex SampleLine();
}

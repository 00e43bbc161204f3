using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using OpenTelemetry.Proto.Collector.Metrics.V1;

namespace PgOtelGateway.Shared.Otlp;

/// <summary>
/// OTLP/JSON (the OTLP spec's JSON encoding): lowerCamelCase keys, int64 as strings (numbers accepted), enums as
/// integers, trace and span ids in hex (protobuf JSON would use base64), unknown fields ignored.
/// </summary>
public static class OtlpJson
{
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default
        .WithFormatEnumsAsIntegers(true)
        .WithTypeRegistry(TypeRegistry.FromMessages(Google.Rpc.RetryInfo.Descriptor)));

    /// <summary>Parses an OTLP/JSON metrics request; throws <see cref="FormatException"/> naming the problem.</summary>
    public static ExportMetricsServiceRequest ParseRequest(string json)
    {
        try
        {
            // Only exemplars carry ids in metrics; skip the rewrite when there are none.
            if (json.Contains("spanId", StringComparison.Ordinal) || json.Contains("traceId", StringComparison.Ordinal))
            {
                var node = JsonNode.Parse(json) ?? throw new FormatException("the body is JSON null");
                HexIdsToBase64(node);
                json = node.ToJsonString();
            }

            return Parser.Parse<ExportMetricsServiceRequest>(json);
        }
        catch (InvalidJsonException ex)
        {
            throw new FormatException("malformed OTLP/JSON: " + ex.Message, ex);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new FormatException("malformed OTLP/JSON: " + ex.Message, ex);
        }
        catch (JsonException ex)
        {
            throw new FormatException("malformed JSON: " + ex.Message, ex);
        }
    }

    /// <summary>Parses an OTLP/JSON export response (what a client reads back).</summary>
    public static ExportMetricsServiceResponse ParseResponse(string json) => Parser.Parse<ExportMetricsServiceResponse>(json);

    /// <summary>Formats any OTLP message as OTLP/JSON (ids in hex, enums as integers, int64 as strings).</summary>
    public static string Format(IMessage message)
    {
        var json = Formatter.Format(message);
        if (!json.Contains("spanId", StringComparison.Ordinal) && !json.Contains("traceId", StringComparison.Ordinal))
        {
            return json;
        }

        var node = JsonNode.Parse(json)!;
        Base64IdsToHex(node);
        return node.ToJsonString();
    }

    private static void HexIdsToBase64(JsonNode node) => RewriteIds(node, static hex =>
    {
        try
        {
            return Convert.ToBase64String(Convert.FromHexString(hex));
        }
        catch (FormatException ex)
        {
            throw new FormatException($"id '{hex}' is not hex", ex);
        }
    });

    private static void Base64IdsToHex(JsonNode node) => RewriteIds(node, static b64 => Convert.ToHexString(Convert.FromBase64String(b64)).ToLowerInvariant());

    private static void RewriteIds(JsonNode node, Func<string, string> rewrite)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var name in obj.Select(p => p.Key).ToList())
                {
                    var child = obj[name];
                    if ((name is "spanId" or "traceId") && child is JsonValue value && value.TryGetValue<string>(out var text))
                    {
                        obj[name] = rewrite(text);
                    }
                    else if (child is not null)
                    {
                        RewriteIds(child, rewrite);
                    }
                }

                break;
            case JsonArray array:
                foreach (var item in array)
                {
                    if (item is not null)
                    {
                        RewriteIds(item, rewrite);
                    }
                }

                break;
        }
    }
}

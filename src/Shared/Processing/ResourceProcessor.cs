using System.Security.Cryptography;
using System.Text;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Shared.Processing;

/// <summary>One action of <c>processors.resource.attributes</c>.</summary>
public sealed class AttributeAction
{
    [ConfigRequired]
    public string Key { get; set; } = "";

    /// <summary>The value to set (as a string attribute).</summary>
    public string? Value { get; set; }

    /// <summary>Take the value from this other resource attribute instead.</summary>
    public string? FromAttribute { get; set; }

    public AttributeActionKind Action { get; set; } = AttributeActionKind.Upsert;
}

public enum AttributeActionKind
{
    /// <summary>Set only when the key is absent.</summary>
    Insert,

    /// <summary>Set only when the key is present.</summary>
    Update,

    /// <summary>Set in any case.</summary>
    Upsert,

    /// <summary>Remove the key.</summary>
    Delete,

    /// <summary>Replace the value by its SHA-256 in hex.</summary>
    Hash,
}

/// <summary><c>processors.resource</c>.</summary>
public sealed class ResourceProcessorOptions : IValidatableOptions
{
    public List<AttributeAction> Attributes { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        for (var i = 0; i < Attributes.Count; i++)
        {
            var a = Attributes[i];
            var setting = a.Action is AttributeActionKind.Insert or AttributeActionKind.Update or AttributeActionKind.Upsert;
            if (setting && a.Value is null && a.FromAttribute is null)
            {
                yield return $"attributes[{i}] ({a.Key}): action {a.Action.ToString().ToLowerInvariant()} needs value or from_attribute";
            }
        }
    }
}

/// <summary>
/// Inserts, updates, upserts, deletes or hashes resource attributes, in the order listed (the collector's
/// resource processor). A value from YAML is set as a string attribute; <c>from_attribute</c> copies the other
/// attribute with its type. When <c>from_attribute</c> names an absent attribute, the action does nothing.
/// </summary>
public sealed class ResourceProcessor(ResourceProcessorOptions options, IMetricsConsumer next) : IMetricsConsumer
{
    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        foreach (var rm in request.ResourceMetrics)
        {
            rm.Resource ??= new Resource();
            Apply(rm.Resource.Attributes, options.Attributes);
        }

        return next.ConsumeAsync(request, cancellationToken);
    }

    /// <remarks>A changed attribute is a new <see cref="KeyValue"/> in the list: decoded attributes are shared
    /// between requests (<see cref="Otlp.OtlpRequestReader"/>) and must not be changed in place.</remarks>
    internal static void Apply(Google.Protobuf.Collections.RepeatedField<KeyValue> attributes, List<AttributeAction> actions)
    {
        foreach (var action in actions)
        {
            var index = AttributeHelpers.IndexOf(attributes, action.Key);
            switch (action.Action)
            {
                case AttributeActionKind.Delete:
                    if (index >= 0)
                    {
                        attributes.RemoveAt(index);
                    }

                    break;
                case AttributeActionKind.Hash:
                    if (index >= 0)
                    {
                        var text = attributes[index].Value?.StringValue ?? attributes[index].Value?.ToString() ?? "";
                        attributes[index] = new KeyValue { Key = action.Key, Value = AttributeHelpers.Text(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))) };
                    }

                    break;
                default:
                    AnyValue? value;
                    if (action.FromAttribute is not null)
                    {
                        var from = AttributeHelpers.IndexOf(attributes, action.FromAttribute);
                        value = from >= 0 ? attributes[from].Value?.Clone() : null;
                    }
                    else
                    {
                        value = AttributeHelpers.Text(action.Value ?? "");
                    }

                    if (value is null)
                    {
                        break;
                    }

                    if (index >= 0 && action.Action != AttributeActionKind.Insert)
                    {
                        attributes[index] = new KeyValue { Key = action.Key, Value = value };
                    }
                    else if (index < 0 && action.Action != AttributeActionKind.Update)
                    {
                        attributes.Add(new KeyValue { Key = action.Key, Value = value });
                    }

                    break;
            }
        }
    }
}

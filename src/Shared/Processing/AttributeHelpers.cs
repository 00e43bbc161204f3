using System.Text;
using Google.Protobuf.Collections;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;

namespace PgOtelGateway.Shared.Processing;

/// <summary>Small attribute and metric helpers the processors share.</summary>
internal static class AttributeHelpers
{
    public static int IndexOf(RepeatedField<KeyValue> attributes, string key)
    {
        for (var i = 0; i < attributes.Count; i++)
        {
            if (attributes[i].Key == key)
            {
                return i;
            }
        }

        return -1;
    }

    public static AnyValue Text(string value) => new() { StringValue = value };

    /// <summary>A stable text key of an attribute set (order-independent), for grouping.</summary>
    public static string Key(RepeatedField<KeyValue>? attributes)
    {
        if (attributes is null || attributes.Count == 0)
        {
            return "";
        }

        var pairs = new string[attributes.Count];
        for (var i = 0; i < attributes.Count; i++)
        {
            pairs[i] = attributes[i].Key + "\u0002" + attributes[i].Value;
        }

        Array.Sort(pairs, StringComparer.Ordinal);
        return string.Join('\u0003', pairs);
    }

    /// <summary>The attribute lists of every data point of a metric.</summary>
    public static IEnumerable<RepeatedField<KeyValue>> PointAttributes(Metric metric)
    {
        switch (metric.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
                foreach (var p in metric.Gauge.DataPoints)
                {
                    yield return p.Attributes;
                }

                break;
            case Metric.DataOneofCase.Sum:
                foreach (var p in metric.Sum.DataPoints)
                {
                    yield return p.Attributes;
                }

                break;
            case Metric.DataOneofCase.Histogram:
                foreach (var p in metric.Histogram.DataPoints)
                {
                    yield return p.Attributes;
                }

                break;
            case Metric.DataOneofCase.ExponentialHistogram:
                foreach (var p in metric.ExponentialHistogram.DataPoints)
                {
                    yield return p.Attributes;
                }

                break;
            case Metric.DataOneofCase.Summary:
                foreach (var p in metric.Summary.DataPoints)
                {
                    yield return p.Attributes;
                }

                break;
        }
    }

    public static string Describe(string key, AnyValue value)
    {
        var sb = new StringBuilder(key);
        sb.Append('=').Append(value);
        return sb.ToString();
    }
}

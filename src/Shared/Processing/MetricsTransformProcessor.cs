using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Shared.Processing;

public enum TransformAction
{
    /// <summary>Change the matching metric in place.</summary>
    Update,

    /// <summary>Add a changed copy next to the matching metric (needs new_name).</summary>
    Insert,
}

public enum OperationAction
{
    /// <summary>Add <c>new_label</c>=<c>new_value</c> to every point that lacks it.</summary>
    AddLabel,

    /// <summary>Rename <c>label</c> to <c>new_label</c>.</summary>
    UpdateLabel,

    /// <summary>Remove points whose <c>label</c> equals <c>label_value</c>.</summary>
    DeleteLabelValue,
}

public sealed class TransformOperation
{
    public OperationAction Action { get; set; } = OperationAction.AddLabel;

    public string Label { get; set; } = "";

    public string NewLabel { get; set; } = "";

    public string NewValue { get; set; } = "";

    public string LabelValue { get; set; } = "";
}

public sealed class MetricTransform
{
    /// <summary>The metric name or pattern to match.</summary>
    [ConfigRequired]
    public string Include { get; set; } = "";

    public NameMatchType MatchType { get; set; } = NameMatchType.Strict;

    public TransformAction Action { get; set; } = TransformAction.Update;

    /// <summary>Renames the metric (update) or names the copy (insert).</summary>
    public string NewName { get; set; } = "";

    public List<TransformOperation> Operations { get; set; } = [];
}

/// <summary><c>processors.metricstransform</c>.</summary>
public sealed class MetricsTransformOptions : IValidatableOptions
{
    public List<MetricTransform> Transforms { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        for (var i = 0; i < Transforms.Count; i++)
        {
            var t = Transforms[i];
            if (t.Action == TransformAction.Insert && t.NewName.Length == 0)
            {
                yield return $"transforms[{i}]: action insert needs new_name";
            }

            for (var j = 0; j < t.Operations.Count; j++)
            {
                var op = t.Operations[j];
                var problem = op.Action switch
                {
                    OperationAction.AddLabel when op.NewLabel.Length == 0 => "add_label needs new_label",
                    OperationAction.UpdateLabel when op.Label.Length == 0 || op.NewLabel.Length == 0 => "update_label needs label and new_label",
                    OperationAction.DeleteLabelValue when op.Label.Length == 0 => "delete_label_value needs label",
                    _ => null,
                };
                if (problem is not null)
                {
                    yield return $"transforms[{i}].operations[{j}]: {problem}";
                }
            }
        }
    }
}

/// <summary>Renames metrics, copies them, and adds, renames or filters point labels (the collector's metricstransform, in part).</summary>
public sealed class MetricsTransformProcessor : IMetricsConsumer
{
    private readonly (MetricTransform Transform, NameMatcher Matcher)[] _transforms;
    private readonly IMetricsConsumer _next;

    public MetricsTransformProcessor(MetricsTransformOptions options, IMetricsConsumer next)
    {
        _transforms = [.. options.Transforms.Select(t => (t, new NameMatcher(t.Include, t.MatchType)))];
        _next = next;
    }

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        foreach (var rm in request.ResourceMetrics)
        {
            foreach (var sm in rm.ScopeMetrics)
            {
                var count = sm.Metrics.Count;
                for (var i = 0; i < count; i++)
                {
                    var metric = sm.Metrics[i];
                    foreach (var (transform, matcher) in _transforms)
                    {
                        if (!matcher.Matches(metric.Name))
                        {
                            continue;
                        }

                        var target = metric;
                        if (transform.Action == TransformAction.Insert)
                        {
                            target = metric.Clone();
                            sm.Metrics.Add(target);
                        }

                        if (transform.NewName.Length > 0)
                        {
                            target.Name = transform.NewName;
                        }

                        foreach (var op in transform.Operations)
                        {
                            Apply(target, op);
                        }
                    }
                }
            }
        }

        return _next.ConsumeAsync(request, cancellationToken);
    }

    private static void Apply(Metric metric, TransformOperation op)
    {
        if (op.Action == OperationAction.DeleteLabelValue)
        {
            RemovePoints(metric, attrs =>
            {
                var i = AttributeHelpers.IndexOf(attrs, op.Label);
                return i >= 0 && attrs[i].Value?.StringValue == op.LabelValue;
            });
            return;
        }

        foreach (var attributes in AttributeHelpers.PointAttributes(metric))
        {
            if (op.Action == OperationAction.AddLabel)
            {
                if (AttributeHelpers.IndexOf(attributes, op.NewLabel) < 0)
                {
                    attributes.Add(new KeyValue { Key = op.NewLabel, Value = AttributeHelpers.Text(op.NewValue) });
                }
            }
            else
            {
                var i = AttributeHelpers.IndexOf(attributes, op.Label);
                if (i >= 0)
                {
                    // A new object, not a rename in place: one attribute object may be shared by many points (the
                    // agent shares its table and database names), and only this metric's points are renamed.
                    attributes[i] = new KeyValue { Key = op.NewLabel, Value = attributes[i].Value };
                }
            }
        }
    }

    private static void RemovePoints(Metric metric, Func<Google.Protobuf.Collections.RepeatedField<KeyValue>, bool> remove)
    {
        switch (metric.DataCase)
        {
            case Metric.DataOneofCase.Gauge:
                RemoveWhere(metric.Gauge.DataPoints, p => remove(p.Attributes));
                break;
            case Metric.DataOneofCase.Sum:
                RemoveWhere(metric.Sum.DataPoints, p => remove(p.Attributes));
                break;
            case Metric.DataOneofCase.Histogram:
                RemoveWhere(metric.Histogram.DataPoints, p => remove(p.Attributes));
                break;
            case Metric.DataOneofCase.ExponentialHistogram:
                RemoveWhere(metric.ExponentialHistogram.DataPoints, p => remove(p.Attributes));
                break;
            case Metric.DataOneofCase.Summary:
                RemoveWhere(metric.Summary.DataPoints, p => remove(p.Attributes));
                break;
        }
    }

    private static void RemoveWhere<T>(Google.Protobuf.Collections.RepeatedField<T> points, Func<T, bool> remove)
    {
        for (var i = points.Count - 1; i >= 0; i--)
        {
            if (remove(points[i]))
            {
                points.RemoveAt(i);
            }
        }
    }
}

using System.Text.RegularExpressions;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Shared.Processing;

public enum NameMatchType
{
    Strict,
    Regexp,
}

/// <summary>A set of metric names matched strictly or by regular expression (fully anchored).</summary>
public sealed class MetricNameMatch
{
    public NameMatchType MatchType { get; set; } = NameMatchType.Strict;

    public List<string> MetricNames { get; set; } = [];
}

/// <summary><c>processors.filter.metrics</c>.</summary>
public sealed class FilterMetricsOptions
{
    /// <summary>Keep only these (when given).</summary>
    public MetricNameMatch? Include { get; set; }

    /// <summary>Drop these.</summary>
    public MetricNameMatch? Exclude { get; set; }
}

/// <summary><c>processors.filter</c>.</summary>
public sealed class FilterOptions : IValidatableOptions
{
    public FilterMetricsOptions Metrics { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        foreach (var (name, match) in new[] { ("include", Metrics.Include), ("exclude", Metrics.Exclude) })
        {
            if (match?.MatchType != NameMatchType.Regexp)
            {
                continue;
            }

            foreach (var pattern in match.MetricNames)
            {
                string? error = null;
                try
                {
                    _ = new Regex(pattern);
                }
                catch (ArgumentException ex)
                {
                    error = $"metrics.{name}: '{pattern}' is not a valid regular expression: {ex.Message}";
                }

                if (error is not null)
                {
                    yield return error;
                }
            }
        }
    }
}

/// <summary>Keeps or drops whole metrics by name; resources and scopes left empty are removed.</summary>
public sealed class FilterProcessor : IMetricsConsumer
{
    private readonly NameMatcher? _include;
    private readonly NameMatcher? _exclude;
    private readonly IMetricsConsumer _next;

    public FilterProcessor(FilterOptions options, IMetricsConsumer next)
    {
        _include = options.Metrics.Include is { } i ? new NameMatcher(i) : null;
        _exclude = options.Metrics.Exclude is { } e ? new NameMatcher(e) : null;
        _next = next;
    }

    public Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        foreach (var rm in request.ResourceMetrics)
        {
            foreach (var sm in rm.ScopeMetrics)
            {
                for (var i = sm.Metrics.Count - 1; i >= 0; i--)
                {
                    var name = sm.Metrics[i].Name;
                    if ((_include is not null && !_include.Matches(name)) || (_exclude is not null && _exclude.Matches(name)))
                    {
                        sm.Metrics.RemoveAt(i);
                    }
                }
            }

            RemoveEmpty(rm);
        }

        for (var i = request.ResourceMetrics.Count - 1; i >= 0; i--)
        {
            if (request.ResourceMetrics[i].ScopeMetrics.Count == 0)
            {
                request.ResourceMetrics.RemoveAt(i);
            }
        }

        return request.ResourceMetrics.Count == 0 ? Task.CompletedTask : _next.ConsumeAsync(request, cancellationToken);
    }

    private static void RemoveEmpty(OpenTelemetry.Proto.Metrics.V1.ResourceMetrics rm)
    {
        for (var i = rm.ScopeMetrics.Count - 1; i >= 0; i--)
        {
            if (rm.ScopeMetrics[i].Metrics.Count == 0)
            {
                rm.ScopeMetrics.RemoveAt(i);
            }
        }
    }
}

/// <summary>Matches metric names: a hash set for strict names, one combined anchored regex for patterns.</summary>
internal sealed class NameMatcher
{
    private readonly HashSet<string>? _names;
    private readonly Regex? _regex;

    public NameMatcher(MetricNameMatch match)
    {
        if (match.MatchType == NameMatchType.Strict)
        {
            _names = new HashSet<string>(match.MetricNames, StringComparer.Ordinal);
        }
        else
        {
            _regex = new Regex("^(?:" + string.Join("|", match.MetricNames.Select(p => "(?:" + p + ")")) + ")$", RegexOptions.CultureInvariant);
        }
    }

    public NameMatcher(string pattern, NameMatchType type)
        : this(new MetricNameMatch { MatchType = type, MetricNames = [pattern] })
    {
    }

    public bool Matches(string name) => _names?.Contains(name) ?? _regex!.IsMatch(name);
}

using System.Text.RegularExpressions;
using PgOtelGateway.Agent.Collection;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Agent.Scrape;

/// <summary>
/// <c>receivers.prometheus</c>: scrapes Prometheus text endpoints (a postgres_exporter beside the database) into
/// OTLP. The scrape configuration sits under <c>config:</c> as in Prometheus and the collector.
/// </summary>
internal sealed class PrometheusReceiverOptions : IValidatableOptions
{
    public PrometheusConfig Config { get; set; } = new();

    /// <summary>Resource attributes added to every target's resource (besides service.name = job, service.instance.id = target).</summary>
    public PgResourceOptions Resource { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        if (Config.ScrapeConfigs.Count == 0)
        {
            yield return "config.scrape_configs must list at least one job";
        }

        var jobs = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Config.ScrapeConfigs.Count; i++)
        {
            var job = Config.ScrapeConfigs[i];
            if (!jobs.Add(job.JobName))
            {
                yield return $"config.scrape_configs[{i}].job_name '{job.JobName}' is used twice";
            }

            foreach (var problem in job.Validate(Config.Global))
            {
                yield return $"config.scrape_configs[{i}].{problem}";
            }
        }
    }
}

/// <summary>The Prometheus-style <c>config:</c> block.</summary>
internal sealed class PrometheusConfig
{
    public PrometheusGlobalConfig Global { get; set; } = new();

    public List<ScrapeConfig> ScrapeConfigs { get; set; } = [];
}

internal sealed class PrometheusGlobalConfig
{
    /// <summary>The default <c>scrape_interval</c> of every job.</summary>
    public TimeSpan ScrapeInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The default <c>scrape_timeout</c> of every job.</summary>
    public TimeSpan ScrapeTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>One scrape job.</summary>
internal sealed class ScrapeConfig
{
    [ConfigRequired]
    public string JobName { get; set; } = "";

    /// <summary>Zero: the global default.</summary>
    public TimeSpan ScrapeInterval { get; set; }

    /// <summary>Zero: the global default, capped at the interval.</summary>
    public TimeSpan ScrapeTimeout { get; set; }

    public string MetricsPath { get; set; } = "/metrics";

    /// <summary><c>http</c> or <c>https</c>.</summary>
    public string Scheme { get; set; } = "http";

    /// <summary>Keep the target's own <c>job</c> / <c>instance</c> labels instead of renaming them <c>exported_*</c>.</summary>
    public bool HonorLabels { get; set; }

    /// <summary>Refuse a scrape with more samples than this (0: no limit); the scrape then counts as failed.</summary>
    public int SampleLimit { get; set; }

    public List<StaticConfig> StaticConfigs { get; set; } = [];

    public List<RelabelConfig> MetricRelabelConfigs { get; set; } = [];

    public TimeSpan Interval(PrometheusGlobalConfig global) => ScrapeInterval > TimeSpan.Zero ? ScrapeInterval : global.ScrapeInterval;

    public TimeSpan Timeout(PrometheusGlobalConfig global)
    {
        var timeout = ScrapeTimeout > TimeSpan.Zero ? ScrapeTimeout : global.ScrapeTimeout;
        var interval = Interval(global);
        return timeout < interval ? timeout : interval;
    }

    public IEnumerable<string> Validate(PrometheusGlobalConfig global)
    {
        if (Interval(global) < TimeSpan.FromSeconds(1))
        {
            yield return "scrape_interval must be at least 1s";
        }

        if (ScrapeTimeout > TimeSpan.Zero && ScrapeInterval > TimeSpan.Zero && ScrapeTimeout > ScrapeInterval)
        {
            yield return "scrape_timeout must not be longer than scrape_interval";
        }

        if (!MetricsPath.StartsWith('/'))
        {
            yield return "metrics_path must start with '/'";
        }

        if (Scheme is not ("http" or "https"))
        {
            yield return "scheme must be http or https";
        }

        var targets = 0;
        for (var i = 0; i < StaticConfigs.Count; i++)
        {
            foreach (var target in StaticConfigs[i].Targets)
            {
                targets++;
                if (target.Length == 0 || target.Contains('/', StringComparison.Ordinal))
                {
                    yield return $"static_configs[{i}].targets: '{target}' is not host:port";
                }
            }
        }

        if (targets == 0)
        {
            yield return "static_configs must name at least one target";
        }

        for (var i = 0; i < MetricRelabelConfigs.Count; i++)
        {
            foreach (var problem in MetricRelabelConfigs[i].Validate())
            {
                yield return $"metric_relabel_configs[{i}].{problem}";
            }
        }
    }
}

internal sealed class StaticConfig
{
    /// <summary><c>host:port</c> of each target.</summary>
    public List<string> Targets { get; set; } = [];

    /// <summary>Labels added to every sample of these targets.</summary>
    public Dictionary<string, string> Labels { get; set; } = [];
}

internal enum RelabelAction
{
    /// <summary>Keep samples whose joined source labels match the regex; drop the others.</summary>
    Keep,

    /// <summary>Drop samples whose joined source labels match the regex.</summary>
    Drop,
}

/// <summary>One <c>metric_relabel_configs</c> rule (keep / drop by regex over the joined source labels).</summary>
internal sealed class RelabelConfig
{
    private Regex? _compiled;

    /// <summary>Labels whose values are joined with <see cref="Separator"/>; <c>__name__</c> is the sample name.</summary>
    public List<string> SourceLabels { get; set; } = [];

    public string Separator { get; set; } = ";";

    /// <summary>A regular expression anchored at both ends, as in Prometheus.</summary>
    public string Regex { get; set; } = "(.*)";

    public RelabelAction Action { get; set; } = RelabelAction.Keep;

    /// <summary>The anchored, compiled <see cref="Regex"/>.</summary>
    public Regex Compiled => _compiled ??= new Regex("^(?:" + Regex + ")$", RegexOptions.CultureInvariant | RegexOptions.Compiled);

    public IEnumerable<string> Validate()
    {
        if (SourceLabels.Count == 0)
        {
            yield return "source_labels must name at least one label";
        }

        string? problem = null;
        try
        {
            _ = new Regex(Regex, RegexOptions.CultureInvariant);
        }
        catch (ArgumentException ex)
        {
            problem = $"regex '{Regex}' is not a valid regular expression: {ex.Message}";
        }

        if (problem is not null)
        {
            yield return problem;
        }
    }
}

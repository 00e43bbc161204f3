using Microsoft.Extensions.Logging;
using PgOtelGateway.Shared.Configuration;
using PgOtelGateway.Shared.Pipeline;

namespace PgOtelGateway.Shared.Processing;

/// <summary>What a processor gets besides its options and the next stage.</summary>
public sealed record ProcessorContext(ILoggerFactory LoggerFactory, TimeProvider Time);

/// <summary>Builds one processor: its config, the stage after it, shared services.</summary>
public delegate IMetricsConsumer ProcessorFactory(ComponentConfig config, IMetricsConsumer next, ProcessorContext context);

/// <summary>
/// The processors a binary can run, by collector type name. Both binaries start from the shared set
/// (<see cref="Shared"/>); the gateway adds its own (dedupe, ha_tracker) with <see cref="Add{TOptions}"/>.
/// </summary>
public sealed class ProcessorCatalog
{
    private readonly Dictionary<string, (Type Options, ProcessorFactory Factory)> _factories = new(StringComparer.Ordinal);

    /// <summary>The processors every binary has: memory_limiter, batch, resource, filter, metricstransform, groupbyattrs.</summary>
    public static ProcessorCatalog Shared() => new ProcessorCatalog()
        .Add<MemoryLimiterOptions>("memory_limiter", static (c, next, ctx) => new MemoryLimiterProcessor(c.Id, c.OptionsAs<MemoryLimiterOptions>(), next, ctx.LoggerFactory.CreateLogger<MemoryLimiterProcessor>(), ctx.Time))
        .Add<BatchOptions>("batch", static (c, next, ctx) => new BatchProcessor(c.OptionsAs<BatchOptions>(), next, ctx.Time))
        .Add<ResourceProcessorOptions>("resource", static (c, next, _) => new ResourceProcessor(c.OptionsAs<ResourceProcessorOptions>(), next))
        .Add<FilterOptions>("filter", static (c, next, _) => new FilterProcessor(c.OptionsAs<FilterOptions>(), next))
        .Add<MetricsTransformOptions>("metricstransform", static (c, next, _) => new MetricsTransformProcessor(c.OptionsAs<MetricsTransformOptions>(), next))
        .Add<GroupByAttrsOptions>("groupbyattrs", static (c, next, _) => new GroupByAttrsProcessor(c.OptionsAs<GroupByAttrsOptions>(), next));

    /// <summary>Adds (or replaces) a processor type.</summary>
    public ProcessorCatalog Add<TOptions>(string type, ProcessorFactory factory) where TOptions : class, new()
    {
        _factories[type] = (typeof(TOptions), factory);
        return this;
    }

    /// <summary>Registers every processor type's options with the config registry.</summary>
    public ComponentRegistry RegisterWith(ComponentRegistry registry)
    {
        foreach (var (type, (options, _)) in _factories)
        {
            registry.Add(ComponentKind.Processor, type, options);
        }

        return registry;
    }

    /// <summary>
    /// Chains the pipeline's processors in config order in front of <paramref name="last"/>; returns the head and
    /// every stage built (so the host can start and stop those with a lifetime).
    /// </summary>
    public (IMetricsConsumer Head, IReadOnlyList<IMetricsConsumer> Stages) Build(IReadOnlyList<ComponentConfig> processors, IMetricsConsumer last, ProcessorContext context)
    {
        var stages = new List<IMetricsConsumer>();
        var next = last;
        for (var i = processors.Count - 1; i >= 0; i--)
        {
            var config = processors[i];
            if (!_factories.TryGetValue(config.Type, out var entry))
            {
                throw new ConfigException($"processor type '{config.Type}' has no implementation in this binary");
            }

            next = entry.Factory(config, next, context);
            stages.Insert(0, next);
        }

        return (next, stages);
    }
}

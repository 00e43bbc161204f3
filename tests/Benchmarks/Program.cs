using BenchmarkDotNet.Running;

// Entry point for BenchmarkDotNet: `dotnet run -c Release --project tests/Benchmarks -- --filter '*'`.
// `-- cold-size [...]` reports the cold tier's bytes per point instead (ColdTierSize.cs).
if (args is ["cold-size", ..])
{
    return await PgOtelGateway.Benchmarks.ColdTierSize.RunAsync(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(PgOtelGateway.Benchmarks.BenchmarkMarker).Assembly).Run(args);
return 0;

namespace PgOtelGateway.Benchmarks
{
    /// <summary>Anchors the assembly for the benchmark switcher.</summary>
    public static class BenchmarkMarker;
}

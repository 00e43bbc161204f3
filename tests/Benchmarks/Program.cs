using BenchmarkDotNet.Running;

// Entry point for BenchmarkDotNet: `dotnet run -c Release --project tests/Benchmarks -- --filter '*'`.
BenchmarkSwitcher.FromAssembly(typeof(PgOtelGateway.Benchmarks.BenchmarkMarker).Assembly).Run(args);

namespace PgOtelGateway.Benchmarks
{
    /// <summary>Anchors the assembly for the benchmark switcher.</summary>
    public static class BenchmarkMarker;
}

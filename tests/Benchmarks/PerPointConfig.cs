using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// The per-point benchmarks run one 1,000-point request per invocation with <c>OperationsPerInvoke = 1000</c>,
/// so BenchmarkDotNet's Mean and Allocated columns are already per data point. This config adds a
/// "Points/s/core" column (1 / Mean) so the figures read directly against the targets.
/// </summary>
public sealed class PerPointConfig : ManualConfig
{
    public PerPointConfig()
    {
        AddColumn(new PointsPerSecondColumn());
        SummaryStyle = SummaryStyle.Default.WithMaxParameterColumnWidth(60);
    }

    private sealed class PointsPerSecondColumn : IColumn
    {
        public string Id => nameof(PointsPerSecondColumn);

        public string ColumnName => "Points/s/core";

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Custom;

        public int PriorityInCategory => 0;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Dimensionless;

        public string Legend => "Data points per second on one core (1 / Mean, where Mean is per point)";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            var mean = report?.ResultStatistics?.Mean;
            return mean is > 0 ? (1e9 / mean.Value).ToString("N0", System.Globalization.CultureInfo.InvariantCulture) : "-";
        }

        public bool IsAvailable(Summary summary) => true;

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    }
}

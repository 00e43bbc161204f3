using System.Globalization;

namespace PgOtelGateway.Integration.Tests;

/// <summary>Reads samples out of a Prometheus text exposition (a gateway's or agent's /metrics).</summary>
internal static class MetricsText
{
    /// <summary>The sum of the samples of <paramref name="name"/> whose line contains <paramref name="labelFilter"/>.</summary>
    public static double Sum(string exposition, string name, string labelFilter = "")
    {
        double sum = 0;
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] is '{' or ' ' && line.Contains(labelFilter, StringComparison.Ordinal))
            {
                sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return sum;
    }
}

using Amazon.S3.Model;
using DuckDB.NET.Data;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Tests.Common;

namespace PgOtelGateway.Integration.Tests.Cold;

/// <summary>Agent-shaped test data for the cold tier, and reading it back (S3 downloads, DuckDB).</summary>
internal static class ColdData
{
    public const int Databases = 2;

    /// <summary>Points per instance per scrape: size and commits per database, one ratio, one histogram.</summary>
    public const int PointsPerInstance = (2 * Databases) + 2;

    private static KeyValue Kv(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };

    /// <summary>
    /// One scrape of <paramref name="instances"/> PostgreSQL instances at <paramref name="unixMs"/>: a gauge
    /// (<c>{u}_size</c>, int, per database), a monotonic cumulative sum (<c>{u}_commits</c>, int, per database), a
    /// double gauge (<c>{u}_ratio</c>) and a histogram (<c>{u}_latency</c>). Values derive from the instance and step.
    /// </summary>
    public static ExportMetricsServiceRequest Scrape(string u, int instances, long unixMs, int step, long startMs)
    {
        var request = new ExportMetricsServiceRequest();
        var time = (ulong)unixMs * 1_000_000;
        var start = (ulong)startMs * 1_000_000;
        for (var i = 0; i < instances; i++)
        {
            var rm = new ResourceMetrics { Resource = new Resource() };
            rm.Resource.Attributes.Add(Kv("service.name", "postgresql"));
            rm.Resource.Attributes.Add(Kv("service.instance.id", $"{u}-pg{i}"));
            rm.Resource.Attributes.Add(Kv("db.system", "postgresql"));
            rm.Resource.Attributes.Add(Kv("db.cluster", $"{u}-cluster"));
            rm.Resource.Attributes.Add(Kv("db.instance", $"pg{i}:5432"));
            rm.Resource.Attributes.Add(Kv("db.role", i == 0 ? "primary" : "replica"));
            rm.Resource.Attributes.Add(Kv("host.name", $"pg{i}"));
            rm.Resource.Attributes.Add(Kv("db.version", "15.4"));
            var sm = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent", Version = "1" } };
            var size = new Gauge();
            var commits = new Sum { AggregationTemporality = AggregationTemporality.Cumulative, IsMonotonic = true };
            for (var d = 0; d < Databases; d++)
            {
                size.DataPoints.Add(new NumberDataPoint { TimeUnixNano = time, AsInt = SizeValue(i, d, step), Attributes = { Kv("datname", $"db{d}") } });
                commits.DataPoints.Add(new NumberDataPoint { TimeUnixNano = time, StartTimeUnixNano = start, AsInt = CommitsValue(i, d, step), Attributes = { Kv("datname", $"db{d}") } });
            }

            var ratio = new Gauge();
            ratio.DataPoints.Add(new NumberDataPoint { TimeUnixNano = time, AsDouble = RatioValue(i, step) });
            var latency = new Histogram { AggregationTemporality = AggregationTemporality.Cumulative };
            latency.DataPoints.Add(new HistogramDataPoint
            {
                TimeUnixNano = time,
                StartTimeUnixNano = start,
                Count = (ulong)(step + 1) * 3,
                Sum = (step + 1) * 1.5,
                ExplicitBounds = { 0.1, 1 },
                BucketCounts = { (ulong)step + 1, (ulong)step + 1, (ulong)step + 1 },
            });
            sm.Metrics.Add(new Metric { Name = u + "_size", Gauge = size });
            sm.Metrics.Add(new Metric { Name = u + "_commits", Sum = commits });
            sm.Metrics.Add(new Metric { Name = u + "_ratio", Gauge = ratio });
            sm.Metrics.Add(new Metric { Name = u + "_latency", Histogram = latency });
            rm.ScopeMetrics.Add(sm);
            request.ResourceMetrics.Add(rm);
        }

        return request;
    }

    public static long SizeValue(int instance, int database, int step) => (instance * 1_000_000L) + (database * 1000L) + step;

    public static long CommitsValue(int instance, int database, int step) => (step * 10L) + instance + database;

    public static double RatioValue(int instance, int step) => instance + (step / 100.0);

    /// <summary>Downloads every object under <paramref name="prefix"/> into <paramref name="directory"/>, keeping the key as the path.</summary>
    public static async Task<List<string>> DownloadAsync(string prefix, string directory)
    {
        using var s3 = TestEnvironment.S3.CreateClient();
        var keys = new List<string>();
        string? token = null;
        do
        {
            var page = await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = TestEnvironment.S3.Bucket, Prefix = prefix + "/", ContinuationToken = token }).WaitAsync(TestTimeouts.Short);
            foreach (var o in page.S3Objects ?? [])
            {
                keys.Add(o.Key);
            }

            token = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (token is not null);

        foreach (var key in keys)
        {
            using var get = await s3.GetObjectAsync(TestEnvironment.S3.Bucket, key).WaitAsync(TestTimeouts.Short);
            var path = Path.Combine(directory, key.Replace('/', Path.DirectorySeparatorChar));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await using var file = File.Create(path);
            await get.ResponseStream.CopyToAsync(file).WaitAsync(TestTimeouts.Short);
        }

        return keys;
    }

    /// <summary>Runs a DuckDB query and returns every row.</summary>
    public static List<object?[]> Query(string sql)
    {
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return rows;
    }

    /// <summary>A path as a DuckDB string literal.</summary>
    public static string Literal(string path) => "'" + path.Replace("'", "''", StringComparison.Ordinal) + "'";
}

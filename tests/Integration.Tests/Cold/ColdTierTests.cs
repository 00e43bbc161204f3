using System.Globalization;
using System.Text.RegularExpressions;
using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Metrics.V1;
using PgOtelGateway.Integration.Tests.Gateway;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Cold;

/// <summary>
/// The cold tier against real servers: Parquet files in s3rver read back with DuckDB give what Prometheus holds;
/// OTLP files decode to what was sent; the local-folder target; files left in staging go out at the next start.
/// </summary>
public sealed partial class ColdTierTests
{
    private const int Instances = 4;
    private const int Steps = 12;

    private static readonly string[] Columns =
    [
        "time", "start_time", "metric_name", "metric_type", "unit", "temporality", "is_monotonic", "value_double", "value_int",
        "count", "sum", "explicit_bounds", "bucket_counts", "service_name", "db_cluster", "db_instance", "db_role", "host_name",
        "resource_attributes", "attributes", "scope_name",
    ];

    private static readonly string[] Types =
    [
        "TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BOOLEAN", "DOUBLE", "BIGINT",
        "BIGINT", "DOUBLE", "DOUBLE[]", "BIGINT[]", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR",
        "MAP(VARCHAR, VARCHAR)", "MAP(VARCHAR, VARCHAR)", "VARCHAR",
    ];

    private static readonly string[] StringColumns =
        ["metric_name", "metric_type", "unit", "service_name", "db_cluster", "db_instance", "db_role", "host_name", "scope_name"];

    [GeneratedRegex(@"^cold-it/[a-z0-9_]+/year=\d{4}/month=\d{2}/day=\d{2}/hour=\d{2}/minute=\d{2}/cold-test-\d{13}-\d{8}\.parquet$")]
    private static partial Regex MinuteKey();

    /// <summary>Ten-second scrape times starting a few minutes back, so the data spans several minute partitions.</summary>
    private static long FirstScrapeMs() => ((DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 180_000) / 10_000) * 10_000;

    private static async Task<long> SendScrapesAsync(int grpcPort, string u, long firstMs, int steps)
    {
        long points = 0;
        for (var step = 0; step < steps; step++)
        {
            var request = ColdData.Scrape(u, Instances, firstMs + (step * 10_000L), step, firstMs - 3_600_000);
            points += Shared.Pipeline.MetricsCounting.DataPoints(request);
            var answer = await RawOtlpClient.GrpcAsync(grpcPort, request.ToByteArray()).WaitAsync(TestTimeouts.Short);
            Assert.True(answer.Code == 0, $"scrape {step} was not accepted: {answer}");
        }

        return points;
    }

    [Fact]
    public async Task Export_ToS3AndPrometheus_ParquetReadByDuckDbMatchesQueryRange()
    {
        var u = UniqueName.For();
        var prefix = "cold-it/" + u;
        using var staging = new TempDirectory("cold-staging");
        using var download = new TempDirectory("cold-download");
        var firstMs = FirstScrapeMs();
        long points;
        await using (var gateway = await ColdGateway.StartAsync(
            ColdGateway.RemoteWriteExporter() + "\n" + ColdGateway.S3Exporter(prefix, staging.Path), ["prometheusremotewrite", "awss3"]))
        {
            points = await SendScrapesAsync(gateway.GrpcPort, u, firstMs, Steps);
            Assert.Equal(Instances * ColdData.PointsPerInstance * Steps, points);
            await gateway.WaitForSentAsync("awss3", points, TestTimeouts.Pipeline);
            var row = await gateway.ExporterAsync("awss3");
            Assert.Equal(0, row.Dropped);
        }

        // Keys: the documented partition layout, one gateway id, numbered files.
        var keys = await ColdData.DownloadAsync(prefix, download.Path);
        Assert.NotEmpty(keys);
        Assert.All(keys, k => Assert.Matches(MinuteKey(), k));
        var glob = ColdData.Literal(Path.Combine(download.Path, "cold-it", "**", "*.parquet"));

        // Every point once, and each file's points inside its partition.
        var total = ColdData.Query($"select count(*) from read_parquet({glob}, hive_partitioning=true)");
        Assert.Equal(points, Convert.ToInt64(total[0][0], CultureInfo.InvariantCulture));
        var partitions = ColdData.Query($"""
            select year, month, day, hour, minute, min(epoch_ms(time)), max(epoch_ms(time))
            from read_parquet({glob}, hive_partitioning=true) group by all
            """);
        Assert.True(partitions.Count >= 2, "a few minutes of data spans more than one minute partition");
        foreach (var p in partitions)
        {
            foreach (var ms in new[] { p[5], p[6] })
            {
                var t = DateTimeOffset.FromUnixTimeMilliseconds(Convert.ToInt64(ms, CultureInfo.InvariantCulture));
                Assert.Equal(
                    [t.Year, t.Month, t.Day, t.Hour, t.Minute],
                    p[..5].Select(v => Convert.ToInt32(v, CultureInfo.InvariantCulture)).ToArray());
            }
        }

        // Column names and types, exactly.
        var file = ColdData.Literal(Directory.EnumerateFiles(download.Path, "*.parquet", SearchOption.AllDirectories).First());
        var schema = ColdData.Query($"describe select * from read_parquet({file}, hive_partitioning=false)");
        Assert.Equal(Columns, schema.Select(r => (string)r[0]!).ToArray());
        Assert.Equal(Types, schema.Select(r => (string)r[1]!).ToArray());

        // zstd everywhere, dictionary pages for the string columns.
        var metadata = ColdData.Query($"select path_in_schema, compression, encodings from parquet_metadata({glob})");
        Assert.All(metadata, m => Assert.Equal("ZSTD", m[1]));
        foreach (var column in StringColumns)
        {
            var chunks = metadata.Where(m => (string)m[0]! == column).ToList();
            Assert.NotEmpty(chunks);
            Assert.All(chunks, m => Assert.Contains("DICTIONARY", (string)m[2]!, StringComparison.Ordinal));
        }

        // A sample of series: the same values at the same times as Prometheus's query_range.
        using var prometheus = new PrometheusClient();
        var start = DateTimeOffset.FromUnixTimeMilliseconds(firstMs);
        var end = start.AddSeconds((Steps - 1) * 10);
        var samples = new (string PromQl, string Where, string Value)[]
        {
            ($"{u}_size{{instance=\"{u}-pg1\",datname=\"db1\"}}", $"metric_name = '{u}_size' and db_instance = 'pg1:5432' and attributes['datname'] = 'db1'", "value_int"),
            ($"{u}_commits_total{{instance=\"{u}-pg2\",datname=\"db0\"}}", $"metric_name = '{u}_commits' and db_instance = 'pg2:5432' and attributes['datname'] = 'db0'", "value_int"),
            ($"{u}_ratio{{instance=\"{u}-pg3\"}}", $"metric_name = '{u}_ratio' and db_instance = 'pg3:5432'", "value_double"),
            ($"{u}_latency_count{{instance=\"{u}-pg0\"}}", $"metric_name = '{u}_latency' and db_instance = 'pg0:5432'", "count"),
        };
        foreach (var (promql, where, value) in samples)
        {
            IReadOnlyList<PromSeries> series = [];
            await TestTimeouts.WaitUntilAsync(async () =>
            {
                series = await prometheus.QueryRangeAsync(promql, start, end, TimeSpan.FromSeconds(10));
                return series.Count == 1 && series[0].Samples.Count == Steps;
            }, TestTimeouts.Pipeline, $"{Steps} samples of {promql}");

            var parquet = ColdData.Query($"select epoch_ms(time), {value}::DOUBLE from read_parquet({glob}, hive_partitioning=true) where {where} order by time");
            Assert.Equal(
                series[0].Samples.Select(s => ((long)Math.Round(s.Time * 1000), s.Value)).ToArray(),
                parquet.Select(r => (Convert.ToInt64(r[0], CultureInfo.InvariantCulture), Convert.ToDouble(r[1], CultureInfo.InvariantCulture))).ToArray());
        }

        // The well-known resource attributes have columns; the rest are in the map; the histogram's buckets survive.
        var resource = ColdData.Query($"""
            select service_name, db_cluster, db_role, host_name, resource_attributes['db.version'], resource_attributes['service.instance.id'],
                   metric_type, temporality, is_monotonic, scope_name
            from read_parquet({glob}, hive_partitioning=false) where metric_name = '{u}_commits' and db_instance = 'pg1:5432' limit 1
            """)[0];
        Assert.Equal(["postgresql", $"{u}-cluster", "replica", "pg1", "15.4", $"{u}-pg1", "sum", "cumulative", true, "pgotel-agent"], resource);
        var histogram = ColdData.Query($"""
            select explicit_bounds, bucket_counts, sum from read_parquet({glob})
            where metric_name = '{u}_latency' and db_instance = 'pg0:5432' order by time desc limit 1
            """)[0];
        Assert.Equal([0.1, 1.0], ((System.Collections.IEnumerable)histogram[0]!).Cast<object>().Select(Convert.ToDouble));
        Assert.Equal([12L, 12L, 12L], ((System.Collections.IEnumerable)histogram[1]!).Cast<object>().Select(Convert.ToInt64));
        Assert.Equal(18.0, Convert.ToDouble(histogram[2], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Export_OtlpProtoToLocalFolder_FilesDecodeToTheSentPoints()
    {
        var u = UniqueName.For();
        using var staging = new TempDirectory("cold-staging");
        using var target = new TempDirectory("cold-target");
        var firstMs = FirstScrapeMs();
        var sent = new List<ExportMetricsServiceRequest>();
        var exporter = $"""
            awss3:
              s3uploader:
                endpoint: file://{target.Path}
                s3_prefix: otlp
              marshaler: otlp_proto
              compression: zstd
              file_max_age: 1s
              staging:
                directory: {staging.Path}
            """;
        await using (var gateway = await ColdGateway.StartAsync(exporter, ["awss3"]))
        {
            long points = 0;
            for (var step = 0; step < 5; step++)
            {
                var request = ColdData.Scrape(u, Instances, firstMs + (step * 10_000L), step, firstMs);
                sent.Add(request.Clone());
                points += Shared.Pipeline.MetricsCounting.DataPoints(request);
                var answer = await RawOtlpClient.GrpcAsync(gateway.GrpcPort, request.ToByteArray()).WaitAsync(TestTimeouts.Short);
                Assert.Equal(0, answer.Code);
            }

            await gateway.WaitForSentAsync("awss3", points, TestTimeouts.Pipeline);
        }

        var files = Directory.EnumerateFiles(Path.Combine(target.Path, "otlp"), "*", SearchOption.AllDirectories).ToList();
        Assert.NotEmpty(files);
        var received = new List<string>();
        foreach (var path in files)
        {
            Assert.EndsWith(".binpb.zst", path, StringComparison.Ordinal);
            using var decompressor = new ZstdSharp.Decompressor();
            var request = ExportMetricsServiceRequest.Parser.ParseFrom(decompressor.Unwrap(await File.ReadAllBytesAsync(path)).ToArray());
            received.AddRange(Flatten(request));
        }

        var expected = sent.SelectMany(Flatten).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, received.Order(StringComparer.Ordinal).ToList());
    }

    [Fact]
    public async Task Export_ParquetToLocalFolderByHour_DuckDbReadsEveryPoint()
    {
        var u = UniqueName.For();
        using var staging = new TempDirectory("cold-staging");
        using var target = new TempDirectory("cold-target");
        var firstMs = FirstScrapeMs();
        var exporter = $"""
            awss3:
              s3uploader:
                endpoint: file://{target.Path}
                s3_prefix: /pq/
                s3_partition: hour
              file_max_age: 1s
              staging:
                directory: {staging.Path}
            """;
        long points;
        await using (var gateway = await ColdGateway.StartAsync(exporter, ["awss3"]))
        {
            points = await SendScrapesAsync(gateway.GrpcPort, u, firstMs, 6);
            await gateway.WaitForSentAsync("awss3", points, TestTimeouts.Pipeline);
        }

        var files = Directory.EnumerateFiles(target.Path, "*", SearchOption.AllDirectories).ToList();
        Assert.NotEmpty(files);
        Assert.All(files, f => Assert.Matches(@"/pq/year=\d{4}/month=\d{2}/day=\d{2}/hour=\d{2}/cold-test-\d{13}-\d{8}\.parquet$", f));
        var glob = ColdData.Literal(Path.Combine(target.Path, "pq", "**", "*.parquet"));
        var rows = ColdData.Query($"select count(*), count(distinct metric_name), max(value_int) filter (where metric_name = '{u}_size') from read_parquet({glob}, hive_partitioning=true)")[0];
        Assert.Equal(points, Convert.ToInt64(rows[0], CultureInfo.InvariantCulture));
        Assert.Equal(4L, Convert.ToInt64(rows[1], CultureInfo.InvariantCulture));
        Assert.Equal(ColdData.SizeValue(Instances - 1, ColdData.Databases - 1, 5), Convert.ToInt64(rows[2], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Start_WithFilesLeftInStaging_UploadsThemFirst()
    {
        var u = UniqueName.For();
        using var staging = new TempDirectory("cold-staging");
        using var target = new TempDirectory("cold-target");
        var firstMs = FirstScrapeMs();

        // First run: the target cannot be reached, so everything acknowledged stays in staging.
        var unreachable = $"""
            awss3:
              s3uploader:
                endpoint: http://127.0.0.1:{FreePort.Get()}
                s3_bucket: nowhere
                access_key_id: x
                secret_access_key: y
              file_max_age: 1s
              staging:
                directory: {staging.Path}
              retry_on_failure:
                initial_interval: 100ms
                max_interval: 500ms
                timeout: 2s
            """;
        long points;
        await using (var gateway = await ColdGateway.StartAsync(unreachable, ["awss3"]))
        {
            points = await SendScrapesAsync(gateway.GrpcPort, u, firstMs, 4);
            await TestTimeouts.WaitUntilAsync(async () => (await gateway.ExporterAsync("awss3")).Failed > 0, TestTimeouts.Pipeline, "a failed upload");
            var row = await gateway.ExporterAsync("awss3");
            Assert.Equal(0, row.Sent);
            Assert.True(row.QueueRecords > 0 && row.QueueBytes > 0 && row.OldestAgeSeconds > 0, $"staging shows what waits: {row}");
            Assert.Contains("nowhere", row.LastError, StringComparison.Ordinal);
            Assert.DoesNotContain("secret", row.LastError!, StringComparison.OrdinalIgnoreCase);
        }

        Assert.NotEmpty(Directory.EnumerateFiles(Path.Combine(staging.Path, "ready"), "*.parquet", SearchOption.AllDirectories));

        // Second run on the same staging folder, with a reachable target: the files left over are uploaded.
        var reachable = $"""
            awss3:
              s3uploader:
                endpoint: file://{target.Path}
              staging:
                directory: {staging.Path}
            """;
        await using (var gateway = await ColdGateway.StartAsync(reachable, ["awss3"]))
        {
            await TestTimeouts.WaitUntilAsync(async () => (await gateway.ExporterAsync("awss3")).QueueRecords == 0, TestTimeouts.Pipeline, "staging to drain");
            Assert.Equal(points, (await gateway.ExporterAsync("awss3")).Sent);
        }

        var glob = ColdData.Literal(Path.Combine(target.Path, "metrics", "**", "*.parquet"));
        var count = ColdData.Query($"select count(*) from read_parquet({glob})")[0][0];
        Assert.Equal(points, Convert.ToInt64(count, CultureInfo.InvariantCulture));
        Assert.Empty(Directory.EnumerateFiles(staging.Path, "*.parquet", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Start_WithStagingFolderInUse_FailsNamingTheFolder()
    {
        using var staging = new TempDirectory("cold-staging");
        using var target = new TempDirectory("cold-target");
        var exporter = $"""
            awss3:
              s3uploader:
                endpoint: file://{target.Path}
              staging:
                directory: {staging.Path}
            """;
        await using var first = await ColdGateway.StartAsync(exporter, ["awss3"]);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ColdGateway.StartAsync(exporter, ["awss3"]));

        Assert.Contains(staging.Path, error.Message, StringComparison.Ordinal);
        Assert.Contains("in use", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Every number point of a request as "metric|resource|attributes|time|value".</summary>
    internal static IEnumerable<string> Flatten(ExportMetricsServiceRequest request)
    {
        foreach (var rm in request.ResourceMetrics)
        {
            var resource = string.Join(",", rm.Resource.Attributes.Select(a => a.Key + "=" + a.Value.StringValue).Order(StringComparer.Ordinal));
            foreach (var sm in rm.ScopeMetrics)
            {
                foreach (var m in sm.Metrics)
                {
                    IEnumerable<(ulong Time, string Attributes, string Value)> points = m.DataCase switch
                    {
                        Metric.DataOneofCase.Gauge => m.Gauge.DataPoints.Select(p => (p.TimeUnixNano, Attributes(p.Attributes), p.ToString())),
                        Metric.DataOneofCase.Sum => m.Sum.DataPoints.Select(p => (p.TimeUnixNano, Attributes(p.Attributes), p.ToString())),
                        Metric.DataOneofCase.Histogram => m.Histogram.DataPoints.Select(p => (p.TimeUnixNano, Attributes(p.Attributes), p.ToString())),
                        _ => [],
                    };
                    foreach (var (time, attributes, value) in points)
                    {
                        yield return $"{m.Name}|{resource}|{attributes}|{time}|{value}";
                    }
                }
            }
        }
    }

    private static string Attributes(Google.Protobuf.Collections.RepeatedField<OpenTelemetry.Proto.Common.V1.KeyValue> attributes) =>
        string.Join(",", attributes.Select(a => a.Key + "=" + a.Value.StringValue).Order(StringComparer.Ordinal));
}

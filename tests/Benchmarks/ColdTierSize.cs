using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Metrics.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Agent.Catalog;
using PgOtelGateway.Gateway.Export.Parquet;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// Bytes per data point of the cold tier's two marshalers on the same simulated agent data:
/// <c>dotnet run -c Release --project tests/Benchmarks -- cold-size [--instances N] [--minutes M] [--file-minutes F] [--out DIR] [--no-sort] [--no-dictionary]</c>.
/// <para>
/// A fleet of PostgreSQL instances is scraped every 10 s with the agent's catalog shapes (instance, database,
/// table, index and statement metrics; counters that grow at per-series rates, levels that drift, ratios and
/// durations as doubles). Each instance's scrape is one OTLP request, as the agent sends it. Files are cut the
/// way the exporter cuts them: one per partition of <c>--file-minutes</c> minutes (1 = the default minute
/// partition). Parquet goes through the exporter's own row mapping and writer (sorted, dictionary, zstd);
/// OTLP is the concatenated requests compressed with zstd level 3, as the <c>otlp_proto</c> marshaler writes them.
/// A day (8,640 scrapes) is scaled down to <c>--minutes</c>: per-file sizes do not depend on the time of day,
/// so bytes per point over a few dozen files stand for the whole day.
/// </para>
/// </summary>
internal static class ColdTierSize
{
    public static async Task<int> RunAsync(string[] args)
    {
        var instances = Option(args, "--instances", 40);
        var minutes = Option(args, "--minutes", 20);
        var fileMinutes = Option(args, "--file-minutes", 1);
        var outIndex = Array.IndexOf(args, "--out");
        var outDirectory = outIndex >= 0 && outIndex + 1 < args.Length ? args[outIndex + 1] : null;
        var fleet = new Fleet(instances, seed: 42);
        var start = new DateTimeOffset(2026, 11, 25, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        long points = 0, parquetBytes = 0, otlpBytes = 0, otlpZstdBytes = 0;
        var files = 0;
        var parquetTime = TimeSpan.Zero;
        var sort = Array.IndexOf(args, "--no-sort") < 0;
        var options = MetricsParquetWriter.Options(Parquet.CompressionMethod.Zstd);
        if (Array.IndexOf(args, "--no-dictionary") >= 0)
        {
            // What the dictionary hints buy: the library's own choice (it skips dictionaries of mostly distinct values).
            options = new Parquet.ParquetOptions { CompressionMethod = Parquet.CompressionMethod.Zstd, CompressionLevel = System.IO.Compression.CompressionLevel.Optimal };
        }
        using var compressor = new ZstdSharp.Compressor(3);
        for (var file = 0; file < minutes / fileMinutes; file++)
        {
            var rows = new MetricRowSet();
            using var otlp = new MemoryStream();
            for (var scrape = 0; scrape < fileMinutes * 6; scrape++)
            {
                var time = start + ((((file * fileMinutes * 6) + scrape) * 10_000L));
                foreach (var request in fleet.Scrape(time))
                {
                    points += rows.Add(request);
                    request.WriteTo(otlp);
                }
            }

            var timer = Stopwatch.StartNew();
            if (sort)
            {
                rows.Sort(fileMinutes * 60_000_000_000L);
            }
            using var parquet = new MemoryStream();
            await MetricsParquetWriter.WriteAsync(rows, 0, rows.Count, parquet, options, CancellationToken.None).ConfigureAwait(false);
            parquetTime += timer.Elapsed;
            parquetBytes += parquet.Length;
            if (outDirectory is not null)
            {
                // The exporter's layout, for a look with DuckDB: --out DIR writes DIR/metrics/year=…/….parquet.
                var first = start + (file * fileMinutes * 60_000L);
                var key = Gateway.Export.S3.ObjectKeys.Relative(
                    fileMinutes == 60 ? Gateway.Export.S3.S3Partition.Hour : Gateway.Export.S3.S3Partition.Minute, first * 1_000_000, "bench", file + 1, ".parquet");
                var path = Path.Combine(outDirectory, "metrics", key);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                await File.WriteAllBytesAsync(path, parquet.ToArray()).ConfigureAwait(false);
            }

            otlpBytes += otlp.Length;
            otlpZstdBytes += compressor.Wrap(otlp.GetBuffer().AsSpan(0, (int)otlp.Length)).Length;
            files++;
        }

        var parquetPerPoint = (double)parquetBytes / points;
        var otlpPerPoint = (double)otlpZstdBytes / points;
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"instances {instances}, {minutes} min of 10 s scrapes, files of {fileMinutes} min: {files} files, {points:N0} points ({fleet.PointsPerScrape:N0} per scrape of the fleet)"));
        Console.WriteLine("| marshaler | bytes | bytes/point |");
        Console.WriteLine("|---|---:|---:|");
        Console.WriteLine(string.Create(inv, $"| OTLP protobuf, uncompressed | {otlpBytes:N0} | {(double)otlpBytes / points:F2} |"));
        Console.WriteLine(string.Create(inv, $"| OTLP protobuf + zstd (otlp_proto) | {otlpZstdBytes:N0} | {otlpPerPoint:F2} |"));
        Console.WriteLine(string.Create(inv, $"| Parquet (sorted, dictionary, zstd) | {parquetBytes:N0} | {parquetPerPoint:F2} |"));
        Console.WriteLine(string.Create(inv, $"Parquet / OTLP+zstd = {parquetPerPoint / otlpPerPoint:F3}; Parquet row mapping + write: {points / parquetTime.TotalSeconds:N0} points/s"));
        return 0;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>The simulated fleet: per instance, the same series in the same order every scrape, each with its own behaviour.</summary>
    private sealed class Fleet
    {
        private readonly Instance[] _instances;

        public Fleet(int count, int seed)
        {
            _instances = new Instance[count];
            for (var i = 0; i < count; i++)
            {
                _instances[i] = new Instance(i, new Random(seed + i));
            }
        }

        public int PointsPerScrape { get; private set; }

        public IEnumerable<ExportMetricsServiceRequest> Scrape(long unixMs)
        {
            var points = 0;
            foreach (var instance in _instances)
            {
                var request = instance.Scrape(unixMs);
                points += Shared.Pipeline.MetricsCounting.DataPoints(request);
                yield return request;
            }

            PointsPerScrape = points;
        }
    }

    private sealed class Instance
    {
        private static readonly string[] LockModes = ["AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock", "ExclusiveLock", "AccessExclusiveLock"];
        private static readonly string[] Conflicts = ["tablespace", "lock", "snapshot", "bufferpin", "deadlock"];
        private static readonly string[] IoBackends = ["client backend", "autovacuum worker", "background writer", "checkpointer", "walsender"];
        private static readonly string[] IoContexts = ["normal", "vacuum", "bulkread"];
        private static readonly string[] IoOps = ["reads", "writes", "extends", "hits", "evictions"];
        private readonly int _index;
        private readonly Random _random;
        private readonly string _instance;
        private readonly string[] _databases;
        private readonly List<double> _state = [];
        private readonly List<double> _rate = [];
        private readonly ulong _startNanos;
        private int _cursor;

        public Instance(int index, Random random)
        {
            _index = index;
            _random = random;
            _instance = $"pg-{index:D3}.db.internal:5432";
            _databases = ["postgres", $"orders_{index % 7}", $"billing_{index % 5}", $"analytics_{index % 3}"];
            _startNanos = (ulong)new DateTimeOffset(2026, 11, 1, 3, 0, index % 60, TimeSpan.Zero).ToUnixTimeMilliseconds() * 1_000_000;
        }

        public ExportMetricsServiceRequest Scrape(long unixMs)
        {
            _cursor = 0;
            var set = new MetricSet((ulong)unixMs * 1_000_000, _startNanos, static _ => true);
            var primary = _index % 2 == 0;
            set.Add(MetricCatalog.Up, 1L);
            set.Add(MetricCatalog.MaxConnections, 200L);
            set.Add(MetricCatalog.ScrapeDuration, Duration(0.05));
            set.Add(MetricCatalog.WalBytes, Counter(2_000_000, 1e9));
            set.Add(MetricCatalog.WalFiles, Level(64, 2));
            set.Add(MetricCatalog.WalSize, Level(64L << 24, 1 << 24));
            foreach (var type in (string[])["timed", "requested"])
            {
                set.Add(MetricCatalog.Checkpoints, Counter(0.02, 1000), ("checkpoint_type", type));
            }

            foreach (var type in (string[])["write", "sync"])
            {
                set.Add(MetricCatalog.CheckpointTime, (double)Counter(300, 1e6), ("checkpoint_type", type));
            }

            foreach (var source in (string[])["checkpoint", "bgwriter", "backend"])
            {
                set.Add(MetricCatalog.BuffersWritten, Counter(50, 1e7), ("source", source));
            }

            set.Add(MetricCatalog.BgwriterMaxWritten, Counter(0.01, 100));
            set.Add(MetricCatalog.BuffersAllocated, Counter(400, 1e8));
            if (primary)
            {
                set.Add(MetricCatalog.Replicas, 1L);
                set.Add(MetricCatalog.ReplicationLag, (double)Level(20_000, 20_000), ("application_name", "walreceiver"), ("client_addr", $"10.0.{_index / 250}.{(_index + 1) % 250}"), ("state", "streaming"));
                set.Add(MetricCatalog.ReplicationReplayLag, Duration(0.01), ("application_name", "walreceiver"));
            }
            else
            {
                set.Add(MetricCatalog.ReplicationLagSeconds, Duration(0.5));
            }

            foreach (var mode in LockModes)
            {
                set.Add(MetricCatalog.Locks, Level(5, 5), ("mode", mode), ("granted", "true"));
            }

            foreach (var backend in IoBackends)
            {
                foreach (var context in IoContexts)
                {
                    foreach (var op in IoOps)
                    {
                        set.Add(MetricCatalog.IoOperations, Counter(100, 1e7), ("backend_type", backend), ("object", "relation"), ("context", context), ("operation", op));
                    }
                }
            }

            foreach (var db in _databases)
            {
                var d = ("database_name", (string?)db);
                set.Add(MetricCatalog.DatabaseConnections, Level(10, 4), d);
                var commits = Counter(150, 1e8);
                var rollbacks = Counter(1, 1e5);
                set.Add(MetricCatalog.DatabaseTransactions, commits, d, ("transaction_type", "commit"));
                set.Add(MetricCatalog.DatabaseTransactions, rollbacks, d, ("transaction_type", "rollback"));
                set.Add(MetricCatalog.DatabaseCommits, commits, d);
                set.Add(MetricCatalog.DatabaseRollbacks, rollbacks, d);
                var read = Counter(300, 1e8);
                var hit = Counter(30_000, 1e10);
                set.Add(MetricCatalog.DatabaseBlocks, read, d, ("block_type", "read"));
                set.Add(MetricCatalog.DatabaseBlocks, hit, d, ("block_type", "hit"));
                set.Add(MetricCatalog.CacheHitRatio, (double)hit / (read + hit), d);
                foreach (var op in (string[])["returned", "fetched", "inserted", "updated", "deleted"])
                {
                    set.Add(MetricCatalog.DatabaseTuples, Counter(5_000, 1e10), d, ("operation", op));
                }

                set.Add(MetricCatalog.DatabaseDeadlocks, Counter(0, 10), d);
                set.Add(MetricCatalog.DatabaseChecksumFailures, Counter(0, 1), d);
                set.Add(MetricCatalog.DatabaseTempBytes, Counter(100_000, 1e11), d);
                set.Add(MetricCatalog.DatabaseSize, Level(50L << 30, 8192 * 20), d);
                set.Add(MetricCatalog.DatabaseAge, Level(100_000_000, 2000), d);
                set.Add(MetricCatalog.TransactionRate, commits / 2_000_000.0, d);
                set.Add(MetricCatalog.DatabaseSessions, Counter(2, 1e6), d);
                foreach (var conflict in Conflicts)
                {
                    set.Add(MetricCatalog.DatabaseConflicts, Counter(0, 10), d, ("conflict_type", conflict));
                }

                var who = (("user_name", (string?)"app"), ("application_name", (string?)"orders-api"));
                set.Add(MetricCatalog.ConnectionsActive, Level(3, 3), d, who.Item1, who.Item2);
                set.Add(MetricCatalog.ConnectionsIdle, Level(10, 3), d, who.Item1, who.Item2);
                set.Add(MetricCatalog.ConnectionsIdleInTransaction, Level(0, 1), d, who.Item1, who.Item2);
                set.Add(MetricCatalog.LongRunningQueries, Level(0, 1), d, ("state", "active"));
                set.Add(MetricCatalog.LongestQuery, Duration(2), d, ("state", "active"));
                set.Add(MetricCatalog.LongestTransaction, Duration(5), d, ("state", "active"));
                set.Add(MetricCatalog.ScrapeDuration, Duration(0.02), d);
                if (db == "postgres")
                {
                    continue;
                }

                for (var t = 0; t < 25; t++)
                {
                    var schema = ("schema_name", (string?)(t < 20 ? "public" : "audit"));
                    var table = ("table_name", (string?)$"table_{t:D2}");
                    var live = Level(1_000_000 * (t + 1), 100);
                    var dead = Level(5_000, 500);
                    set.Add(MetricCatalog.TableRows, live, d, schema, table);
                    set.Add(MetricCatalog.TableDeadRows, dead, d, schema, table);
                    set.Add(MetricCatalog.TableBloatRatio, (double)dead / (live + dead), d, schema, table);
                    foreach (var op in (string[])["insert", "update", "hot_update", "delete"])
                    {
                        set.Add(MetricCatalog.TableModifications, Counter(20, 1e9), d, schema, table, ("operation", op));
                    }

                    set.Add(MetricCatalog.TableVacuum, Counter(0, 10), d, schema, table, ("vacuum_type", "manual"));
                    set.Add(MetricCatalog.TableVacuum, Counter(0.001, 10_000), d, schema, table, ("vacuum_type", "auto"));
                    set.Add(MetricCatalog.TableAnalyze, Counter(0, 10), d, schema, table, ("analyze_type", "manual"));
                    set.Add(MetricCatalog.TableAnalyze, Counter(0.001, 10_000), d, schema, table, ("analyze_type", "auto"));
                    set.Add(MetricCatalog.TableScans, Counter(2, 1e7), d, schema, table, ("scan_type", "sequential"));
                    set.Add(MetricCatalog.TableScans, Counter(200, 1e9), d, schema, table, ("scan_type", "index"));
                    set.Add(MetricCatalog.TableLastVacuumAge, Age(), d, schema, table);
                    set.Add(MetricCatalog.TableSize, Level((200L << 20) * ((t % 3) + 1), 8192), d, schema, table);
                    for (var x = 0; x < 2; x++)
                    {
                        var index = ("index_name", (string?)$"table_{t:D2}_{(x == 0 ? "pkey" : "created_at_idx")}");
                        set.Add(MetricCatalog.IndexSize, Level(50L << 20, 8192), d, schema, table, index);
                        set.Add(MetricCatalog.IndexScans, Counter(100, 1e9), d, schema, table, index);
                    }
                }
            }

            for (var s = 0; s < 20; s++)
            {
                var attrs = new (string, string?)[] { ("queryid", (-4_000_000_000_000_000_000L + (s * 7_777_777_777_777L) + _index).ToString(CultureInfo.InvariantCulture)), ("database_name", _databases[1 + (s % 3)]), ("user_name", "app") };
                set.Add(MetricCatalog.StatementCalls, Counter(50, 1e8), attrs);
                set.Add(MetricCatalog.StatementTime, (double)Counter(500, 1e9) / 1000.0, attrs);
                set.Add(MetricCatalog.StatementRows, Counter(80, 1e9), attrs);
            }

            var rm = new ResourceMetrics { Resource = new Resource() };
            void Add(string key, string value) => rm.Resource.Attributes.Add(new KeyValue { Key = key, Value = new AnyValue { StringValue = value } });
            Add("service.name", "postgresql");
            Add("service.instance.id", _instance);
            Add("db.system", "postgresql");
            Add("db.cluster", $"cluster-{_index / 2:D3}");
            Add("db.instance", _instance);
            Add("db.role", primary ? "primary" : "replica");
            Add("db.version", "16.4");
            Add("host.name", $"pg-{_index:D3}");
            Add("deployment.environment", "production");
            Add("agent.id", $"agent-pg-{_index:D3}");
            var scope = new ScopeMetrics { Scope = new InstrumentationScope { Name = "pgotel-agent/postgresql", Version = "1.0.0" } };
            scope.Metrics.Add(set.Metrics);
            rm.ScopeMetrics.Add(scope);
            var request = new ExportMetricsServiceRequest();
            request.ResourceMetrics.Add(rm);
            return request;
        }

        // Each helper keeps the state of the series at the cursor: the same call order every scrape.
        private ref double State(double initial, double rate)
        {
            if (_cursor == _state.Count)
            {
                _state.Add(initial);
                _rate.Add(rate);
            }

            return ref System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_state)[_cursor++];
        }

        /// <summary>A running total growing at about <paramref name="perSecond"/> (per-series rate 0.2–5×), from a random start.</summary>
        private long Counter(double perSecond, double startScale)
        {
            var rate = perSecond * Math.Exp((_random.NextDouble() * 3.2) - 1.6);
            ref var value = ref State(Math.Floor(_random.NextDouble() * startScale), rate);
            var seriesRate = _rate[_cursor - 1];

            // Bursty: a third of the intervals see no activity at all.
            if (_random.NextDouble() > 0.33)
            {
                value += Math.Round(seriesRate * 10 * _random.NextDouble() * 2);
            }

            return (long)value;
        }

        /// <summary>A level that drifts by up to <paramref name="step"/> per scrape, now and then.</summary>
        private long Level(long around, long step)
        {
            ref var value = ref State(around * (0.5 + _random.NextDouble()), step);
            if (_random.NextDouble() < 0.3)
            {
                value = Math.Max(0, value + Math.Round((_random.NextDouble() - 0.4) * step));
            }

            return (long)value;
        }

        private double Duration(double typical) => Math.Round(typical * _random.NextDouble() * 2, 6);

        private double Age()
        {
            ref var value = ref State(_random.NextDouble() * 86_400, 0);
            value += 10;
            return value;
        }
    }
}

using Parquet;
using Parquet.Schema;

namespace PgOtelGateway.Gateway.Export.Parquet;

/// <summary>
/// Writes sorted <see cref="MetricRow"/>s as one Parquet file (one row group): the cold tier's schema, every
/// string column dictionary-encoded, the chosen compression codec (zstd by default).
/// </summary>
internal static class MetricsParquetWriter
{
    // Column names are the schema documented in docs/cold-tier.md; do not rename them. Times are stored in
    // milliseconds, as in Prometheus: Parquet.Net 6.1 writes the statistics of micro- and nanosecond timestamps in
    // milliseconds, which would make readers that prune by statistics (DuckDB, Spark) skip matching row groups.
    private static readonly DateTimeDataField Time = new("time", DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Millis, isNullable: false);
    private static readonly DateTimeDataField StartTime = new("start_time", DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Millis, isNullable: true);
    private static readonly DataField MetricName = new("metric_name", typeof(string), isNullable: false);
    private static readonly DataField MetricType = new("metric_type", typeof(string), isNullable: false);
    private static readonly DataField Unit = new("unit", typeof(string), isNullable: false);
    private static readonly DataField Temporality = new("temporality", typeof(string), isNullable: true);
    private static readonly DataField IsMonotonic = new("is_monotonic", typeof(bool), isNullable: true);
    private static readonly DataField ValueDouble = new("value_double", typeof(double), isNullable: true);
    private static readonly DataField ValueInt = new("value_int", typeof(long), isNullable: true);
    private static readonly DataField Count = new("count", typeof(long), isNullable: true);
    private static readonly DataField Sum = new("sum", typeof(double), isNullable: true);
    private static readonly ListField ExplicitBounds = new("explicit_bounds", new DataField("element", typeof(double), isNullable: false));
    private static readonly ListField BucketCounts = new("bucket_counts", new DataField("element", typeof(long), isNullable: false));
    private static readonly DataField ServiceName = new("service_name", typeof(string), isNullable: true);
    private static readonly DataField DbCluster = new("db_cluster", typeof(string), isNullable: true);
    private static readonly DataField DbInstance = new("db_instance", typeof(string), isNullable: true);
    private static readonly DataField DbRole = new("db_role", typeof(string), isNullable: true);
    private static readonly DataField HostName = new("host_name", typeof(string), isNullable: true);
    private static readonly MapField ResourceAttributes = new("resource_attributes", new DataField("key", typeof(string), isNullable: false), new DataField("value", typeof(string), isNullable: true));
    private static readonly MapField Attributes = new("attributes", new DataField("key", typeof(string), isNullable: false), new DataField("value", typeof(string), isNullable: true));
    private static readonly DataField ScopeName = new("scope_name", typeof(string), isNullable: true);

    /// <summary>The file schema, in column order.</summary>
    public static readonly ParquetSchema Schema = new(
        Time, StartTime, MetricName, MetricType, Unit, Temporality, IsMonotonic, ValueDouble, ValueInt, Count, Sum,
        ExplicitBounds, BucketCounts, ServiceName, DbCluster, DbInstance, DbRole, HostName, ResourceAttributes, Attributes, ScopeName);

    /// <summary>Writer options for a codec: dictionary encoding for every string column whatever its cardinality.</summary>
    public static ParquetOptions Options(CompressionMethod compression)
    {
        var options = new ParquetOptions
        {
            CompressionMethod = compression,
            CompressionLevel = System.IO.Compression.CompressionLevel.Optimal,
            DictionaryEncodingThreshold = 1.0,
        };
        foreach (var field in (DataField[])[MetricName, MetricType, Unit, Temporality, ServiceName, DbCluster, DbInstance, DbRole, HostName, ScopeName,
            (DataField)ResourceAttributes.Key, (DataField)ResourceAttributes.Value, (DataField)Attributes.Key, (DataField)Attributes.Value])
        {
            options.ColumnEncodingHints[field.Path.ToString()] = EncodingHint.Dictionary;
        }

        return options;
    }

    /// <summary>Writes <paramref name="rows"/> (already sorted) to <paramref name="output"/> as one row group.</summary>
    public static async Task WriteAsync(MetricRowSet set, int start, int count, Stream output, ParquetOptions options, CancellationToken cancellationToken)
    {
        await using var writer = await ParquetWriter.CreateAsync(Schema, output, options, append: false, cancellationToken).ConfigureAwait(false);
        writer.CustomMetadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["pgotel.schema"] = "1" };
        using var group = writer.CreateRowGroup();
        var rows = set.Rows.Slice(start, count).ToArray();

        var times = new DateTime[count];
        var starts = new DateTime?[count];
        var names = new string[count];
        var types = new string[count];
        var units = new string[count];
        var temporalities = new string?[count];
        var monotonic = new bool?[count];
        var doubles = new double?[count];
        var ints = new long?[count];
        var counts = new long?[count];
        var sums = new double?[count];
        var services = new string?[count];
        var clusters = new string?[count];
        var instances = new string?[count];
        var roles = new string?[count];
        var hosts = new string?[count];
        var scopes = new string?[count];
        for (var i = 0; i < count; i++)
        {
            ref readonly var r = ref rows[i];
            times[i] = ToDateTime(r.TimeUnixNano);
            starts[i] = r.StartTimeUnixNano == 0 ? null : ToDateTime(r.StartTimeUnixNano);
            names[i] = r.MetricName;
            types[i] = r.MetricType;
            units[i] = r.Unit;
            temporalities[i] = r.Temporality;
            monotonic[i] = r.IsMonotonic;
            doubles[i] = r.ValueDouble;
            ints[i] = r.ValueInt;
            counts[i] = r.Count;
            sums[i] = r.Sum;
            services[i] = r.Resource.ServiceName;
            clusters[i] = r.Resource.DbCluster;
            instances[i] = r.Resource.DbInstance;
            roles[i] = r.Resource.DbRole;
            hosts[i] = r.Resource.HostName;
            scopes[i] = r.ScopeName;
        }

        await group.WriteAsync<DateTime>(Time, times, null, null, cancellationToken).ConfigureAwait(false);
        await group.WriteAsync<DateTime>(StartTime, starts, null, null, cancellationToken).ConfigureAwait(false);
        await group.WriteAsync(MetricName, names, null).ConfigureAwait(false);
        await group.WriteAsync(MetricType, types, null).ConfigureAwait(false);
        await group.WriteAsync(Unit, units, null).ConfigureAwait(false);
        await group.WriteAsync(Temporality, temporalities, null).ConfigureAwait(false);
        await group.WriteAsync<bool>(IsMonotonic, monotonic, null, null, cancellationToken).ConfigureAwait(false);
        await group.WriteAsync<double>(ValueDouble, doubles, null, null, cancellationToken).ConfigureAwait(false);
        await group.WriteAsync<long>(ValueInt, ints, null, null, cancellationToken).ConfigureAwait(false);
        await group.WriteAsync<long>(Count, counts, null, null, cancellationToken).ConfigureAwait(false);
        await group.WriteAsync<double>(Sum, sums, null, null, cancellationToken).ConfigureAwait(false);
        await WriteListAsync(group, ExplicitBounds, rows, static r => r.ExplicitBounds, cancellationToken).ConfigureAwait(false);
        await WriteListAsync(group, BucketCounts, rows, static r => r.BucketCounts, cancellationToken).ConfigureAwait(false);
        await group.WriteAsync(ServiceName, services, null).ConfigureAwait(false);
        await group.WriteAsync(DbCluster, clusters, null).ConfigureAwait(false);
        await group.WriteAsync(DbInstance, instances, null).ConfigureAwait(false);
        await group.WriteAsync(DbRole, roles, null).ConfigureAwait(false);
        await group.WriteAsync(HostName, hosts, null).ConfigureAwait(false);
        await WriteMapAsync(group, ResourceAttributes, rows, static r => r.Resource.Others, cancellationToken).ConfigureAwait(false);
        await WriteMapAsync(group, Attributes, rows, static r => r.Attributes, cancellationToken).ConfigureAwait(false);
        await group.WriteAsync(ScopeName, scopes, null).ConfigureAwait(false);
        group.CompleteValidate();
    }

    private static DateTime ToDateTime(long unixNano) => DateTime.UnixEpoch.AddTicks(unixNano / 100);

    // An optional LIST of required elements: definition 0 = null list, 1 = empty list, 2 = an element;
    // repetition 0 starts a row, 1 continues its list.
    private static async Task WriteListAsync<T>(ParquetRowGroupWriter group, ListField field, MetricRow[] rows, Func<MetricRow, T[]?> select, CancellationToken cancellationToken)
        where T : struct
    {
        var values = new List<T>();
        var definitions = new List<int>(rows.Length);
        var repetitions = new List<int>(rows.Length);
        foreach (var row in rows)
        {
            var list = select(row);
            if (list is null)
            {
                definitions.Add(0);
                repetitions.Add(0);
            }
            else if (list.Length == 0)
            {
                definitions.Add(1);
                repetitions.Add(0);
            }
            else
            {
                for (var i = 0; i < list.Length; i++)
                {
                    values.Add(list[i]);
                    definitions.Add(2);
                    repetitions.Add(i == 0 ? 0 : 1);
                }
            }
        }

        await group.WriteAllPartsAsync<T>((DataField)field.Item, values.ToArray(), definitions.ToArray(), repetitions.ToArray(), cancellationToken).ConfigureAwait(false);
    }

    // An optional MAP of required string keys to optional string values: key definitions 1 = empty map,
    // 2 = an entry; value definitions add 3 = a value that is present. Our maps are never null.
    private static async Task WriteMapAsync(ParquetRowGroupWriter group, MapField field, MetricRow[] rows, Func<MetricRow, KeyValuePair<string, string>[]> select, CancellationToken cancellationToken)
    {
        var keys = new List<ReadOnlyMemory<char>>();
        var values = new List<ReadOnlyMemory<char>>();
        var keyDefinitions = new List<int>(rows.Length);
        var valueDefinitions = new List<int>(rows.Length);
        var repetitions = new List<int>(rows.Length);
        foreach (var row in rows)
        {
            var map = select(row);
            if (map.Length == 0)
            {
                keyDefinitions.Add(1);
                valueDefinitions.Add(1);
                repetitions.Add(0);
                continue;
            }

            for (var i = 0; i < map.Length; i++)
            {
                keys.Add(map[i].Key.AsMemory());
                values.Add(map[i].Value.AsMemory());
                keyDefinitions.Add(2);
                valueDefinitions.Add(3);
                repetitions.Add(i == 0 ? 0 : 1);
            }
        }

        var repetitionArray = repetitions.ToArray();
        await group.WriteAllPartsAsync<ReadOnlyMemory<char>>((DataField)field.Key, keys.ToArray(), keyDefinitions.ToArray(), repetitionArray, cancellationToken).ConfigureAwait(false);
        await group.WriteAllPartsAsync<ReadOnlyMemory<char>>((DataField)field.Value, values.ToArray(), valueDefinitions.ToArray(), repetitionArray, cancellationToken).ConfigureAwait(false);
    }
}

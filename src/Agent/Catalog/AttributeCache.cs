using OpenTelemetry.Proto.Common.V1;

namespace PgOtelGateway.Agent.Catalog;

/// <summary>
/// Shared string attributes for the per-database statistics: one <see cref="KeyValue"/> per database, schema, table
/// and index name, kept from scrape to scrape, so a scrape of thousands of tables builds no attribute objects once
/// the names are known. A point refers to these objects; the pipeline never mutates an attribute object in place
/// (processors replace it), so sharing is safe. One instance per database, used by one task at a time.
/// </summary>
internal sealed class AttributeCache
{
    // Bounds memory if names churn (tables created and dropped): past this many names a map starts again.
    private const int MaxNames = 100_000;

    private readonly Dictionary<string, KeyValue> _schemas = new(StringComparer.Ordinal);
    private readonly Dictionary<string, KeyValue> _tables = new(StringComparer.Ordinal);
    private readonly Dictionary<string, KeyValue> _indexes = new(StringComparer.Ordinal);

    public AttributeCache(string database) => Database = Text("database_name", database);

    /// <summary><c>database_name</c>.</summary>
    public KeyValue Database { get; }

    public KeyValue Schema(string name) => Get(_schemas, "schema_name", name);

    public KeyValue Table(string name) => Get(_tables, "table_name", name);

    public KeyValue Index(string name) => Get(_indexes, "index_name", name);

    /// <summary>A string attribute.</summary>
    public static KeyValue Text(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };

    private static KeyValue Get(Dictionary<string, KeyValue> map, string key, string name)
    {
        if (map.TryGetValue(name, out var kv))
        {
            return kv;
        }

        if (map.Count >= MaxNames)
        {
            map.Clear();
        }

        kv = Text(key, name);
        map[name] = kv;
        return kv;
    }
}

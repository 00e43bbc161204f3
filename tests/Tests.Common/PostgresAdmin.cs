using Npgsql;

namespace PgOtelGateway.Tests.Common;

/// <summary>A throwaway database on the harness's primary, dropped (with its connections) on dispose.</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private TestDatabase(string name) => Name = name;

    /// <summary>The database name (unique per test).</summary>
    public string Name { get; }

    /// <summary>A superuser connection string to it on the primary.</summary>
    public string ConnectionString => TestEnvironment.Postgres.PrimarySuperuser(Name);

    /// <summary>Creates a database named after the calling test.</summary>
    public static async Task<TestDatabase> CreateAsync([System.Runtime.CompilerServices.CallerMemberName] string test = "")
    {
        var db = new TestDatabase(UniqueName.For(test));
        await PostgresAdmin.ExecuteAsync(TestEnvironment.Postgres.PrimarySuperuser(), $"CREATE DATABASE \"{db.Name}\"").ConfigureAwait(false);
        return db;
    }

    /// <summary>Runs SQL in this database as the superuser.</summary>
    public Task ExecuteAsync(string sql) => PostgresAdmin.ExecuteAsync(ConnectionString, sql);

    /// <summary>Runs a scalar query in this database as the superuser.</summary>
    public Task<T> ScalarAsync<T>(string sql) => PostgresAdmin.ScalarAsync<T>(ConnectionString, sql);

    /// <inheritdoc />
    public async ValueTask DisposeAsync() =>
        await PostgresAdmin.ExecuteAsync(TestEnvironment.Postgres.PrimarySuperuser(), $"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)").ConfigureAwait(false);
}

/// <summary>Small SQL helpers for test set-up.</summary>
public static class PostgresAdmin
{
    /// <summary>Runs one or more statements.</summary>
    public static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync().WaitAsync(TestTimeouts.Short).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync().WaitAsync(TestTimeouts.Pipeline).ConfigureAwait(false);
    }

    /// <summary>Runs a query and returns its first column of the first row.</summary>
    public static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync().WaitAsync(TestTimeouts.Short).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync().WaitAsync(TestTimeouts.Pipeline).ConfigureAwait(false);
        return (T)Convert.ChangeType(value!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }
}

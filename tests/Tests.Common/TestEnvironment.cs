using Npgsql;

namespace PgOtelGateway.Tests.Common;

/// <summary>
/// Endpoints of the real servers that <c>scripts/test.sh</c> started for this run. A missing variable is an
/// error, never a skip: tests that need a server fail when it is not there.
/// </summary>
public static class TestEnvironment
{
    /// <summary>The PostgreSQL 15 primary and its streaming standby.</summary>
    public static PostgresEndpoints Postgres { get; } = new(
        Get("PGOTEL_TEST_PG_HOST"),
        int.Parse(Get("PGOTEL_TEST_PG_PORT"), System.Globalization.CultureInfo.InvariantCulture),
        int.Parse(Get("PGOTEL_TEST_PG_STANDBY_PORT"), System.Globalization.CultureInfo.InvariantCulture),
        Get("PGOTEL_TEST_PG_SUPERUSER"),
        Get("PGOTEL_TEST_PG_MONITOR_USER"),
        Get("PGOTEL_TEST_PG_MONITOR_PASSWORD"),
        Get("PGOTEL_TEST_PG_CA_FILE"),
        Get("PGOTEL_TEST_PG_SOCKET_DIR"),
        Get("PGOTEL_TEST_PG_BIN"));

    /// <summary>Redis as <c>host:port</c>.</summary>
    public static string Redis => Get("PGOTEL_TEST_REDIS");

    /// <summary>Prometheus's base URL (remote-write receiver at <c>/api/v1/write</c>).</summary>
    public static Uri PrometheusUrl => new(Get("PGOTEL_TEST_PROMETHEUS_URL"));

    /// <summary>postgres_exporter's <c>/metrics</c> URL, exporting the primary.</summary>
    public static Uri PostgresExporterUrl => new(Get("PGOTEL_TEST_POSTGRES_EXPORTER_URL"));

    /// <summary>s3rver, with its bucket and keys.</summary>
    public static S3Endpoint S3 { get; } = new(
        new Uri(Get("PGOTEL_TEST_S3_ENDPOINT")),
        Get("PGOTEL_TEST_S3_BUCKET"),
        Get("PGOTEL_TEST_S3_ACCESS_KEY"),
        Get("PGOTEL_TEST_S3_SECRET_KEY"));

    /// <summary>The run directory; tests may put scratch files below it.</summary>
    public static string RunDirectory => Get("PGOTEL_TEST_RUN_DIR");

    /// <summary>Whether the long soak and fault variants were asked for (<c>--soak</c>).</summary>
    public static bool Soak => Environment.GetEnvironmentVariable("PGOTEL_TEST_SOAK") == "1";

    internal static string ServicesControlScript => Get("PGOTEL_TEST_SERVICES_CTL");

    /// <summary>Reads a variable the harness sets, or fails saying how to run the tests.</summary>
    public static string Get(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{name} is not set: run the tests through scripts/test.sh (or `scripts/test.sh --services-only` and export what it prints).");
}

/// <summary>The harness's PostgreSQL primary and standby.</summary>
public sealed record PostgresEndpoints(
    string Host,
    int Port,
    int StandbyPort,
    string Superuser,
    string MonitorUser,
    string MonitorPassword,
    string CaFile,
    string SocketDirectory,
    string BinDirectory)
{
    /// <summary>A superuser connection string to the primary (trust on loopback, no TLS).</summary>
    public string PrimarySuperuser(string database = "postgres") => Build(Port, Superuser, null, database);

    /// <summary>A superuser connection string to the standby.</summary>
    public string StandbySuperuser(string database = "postgres") => Build(StandbyPort, Superuser, null, database);

    /// <summary>The monitoring role (pg_monitor, password) on the primary.</summary>
    public string PrimaryMonitor(string database = "postgres") => Build(Port, MonitorUser, MonitorPassword, database);

    /// <summary>The monitoring role on the standby.</summary>
    public string StandbyMonitor(string database = "postgres") => Build(StandbyPort, MonitorUser, MonitorPassword, database);

    /// <summary>The primary as the agent's <c>endpoint</c> setting writes it.</summary>
    public string PrimaryEndpoint => $"{Host}:{Port}";

    /// <summary>The standby as the agent's <c>endpoint</c> setting writes it.</summary>
    public string StandbyEndpoint => $"{Host}:{StandbyPort}";

    private string Build(int port, string user, string? password, string database) => new NpgsqlConnectionStringBuilder
    {
        Host = Host,
        Port = port,
        Username = user,
        Password = password,
        Database = database,
        SslMode = SslMode.Disable,
        Pooling = false,
        Timeout = 15,
        CommandTimeout = 60,
    }.ConnectionString;
}

/// <summary>The harness's s3rver.</summary>
public sealed record S3Endpoint(Uri ServiceUrl, string Bucket, string AccessKey, string SecretKey)
{
    /// <summary>
    /// A client for s3rver: path-style addressing, its static keys, and checksums only when an operation needs
    /// them (AWSSDK v4 otherwise sends aws-chunked bodies with checksum trailers, which s3rver stores verbatim).
    /// Uploads must also set <c>UseChunkEncoding = false</c>.
    /// </summary>
    public Amazon.S3.AmazonS3Client CreateClient() => new(
        new Amazon.Runtime.BasicAWSCredentials(AccessKey, SecretKey),
        new Amazon.S3.AmazonS3Config
        {
            ServiceURL = ServiceUrl.ToString(),
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = Amazon.Runtime.RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = Amazon.Runtime.ResponseChecksumValidation.WHEN_REQUIRED,
        });
}

using System.Net;
using Amazon.S3.Model;
using Npgsql;
using PgOtelGateway.Shared.RemoteWrite.Proto;
using PgOtelGateway.Tests.Common;
using StackExchange.Redis;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Smoke;

/// <summary>Proves that test code reaches every real server the harness started.</summary>
public sealed class ServerSmokeTests
{
    private static PostgresEndpoints Pg => TestEnvironment.Postgres;

    [Fact]
    public async Task Query_OnPrimary_RunsWithPgStatStatementsLoaded()
    {
        var version = await PostgresAdmin.ScalarAsync<int>(Pg.PrimarySuperuser(), "SHOW server_version_num");
        var statements = await PostgresAdmin.ScalarAsync<long>(Pg.PrimaryMonitor(), "SELECT count(*) FROM pg_stat_statements");

        Assert.InRange(version, 150000, 159999);
        Assert.True(statements > 0, "pg_stat_statements recorded nothing");
        Assert.False(await PostgresAdmin.ScalarAsync<bool>(Pg.PrimarySuperuser(), "SELECT pg_is_in_recovery()"));
    }

    [Fact]
    public async Task Query_OnStandby_ReportsRecoveryAndSeesPrimaryWrites()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.ExecuteAsync("CREATE TABLE marker (id int); INSERT INTO marker VALUES (42)");

        Assert.True(await PostgresAdmin.ScalarAsync<bool>(Pg.StandbySuperuser(), "SELECT pg_is_in_recovery()"));
        await TestTimeouts.WaitUntilAsync(async () =>
        {
            try
            {
                return await PostgresAdmin.ScalarAsync<int>(Pg.StandbySuperuser(db.Name), "SELECT id FROM marker") == 42;
            }
            catch (PostgresException)
            {
                return false;
            }
        }, TestTimeouts.Pipeline, "the row to replicate to the standby");
    }

    [Fact]
    public async Task Connect_WithVerifyFullAndTheTestCa_UsesTls()
    {
        var builder = new NpgsqlConnectionStringBuilder(Pg.PrimaryMonitor())
        {
            Host = "localhost",
            SslMode = SslMode.VerifyFull,
            RootCertificate = Pg.CaFile,
        };

        var ssl = await PostgresAdmin.ScalarAsync<bool>(builder.ConnectionString, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");

        Assert.True(ssl);
    }

    [Fact]
    public async Task SetGet_OnRedis_RoundTrips()
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestEnvironment.Redis).WaitAsync(TestTimeouts.Short);
        var key = UniqueName.For();

        await redis.GetDatabase().StringSetAsync(key, "pgotel", TimeSpan.FromMinutes(1)).WaitAsync(TestTimeouts.Short);

        Assert.Equal("pgotel", (string?)await redis.GetDatabase().StringGetAsync(key).WaitAsync(TestTimeouts.Short));
    }

    [Fact]
    public async Task RemoteWrite_OfOneSample_IsReadBackThroughQueryApi()
    {
        var name = UniqueName.For();
        var request = new WriteRequest();
        request.Timeseries.Add(RemoteWriteClient.Series(name, 12.5, DateTimeOffset.UtcNow, ("job", "smoke")));

        var status = await RemoteWriteClient.SendAsync(new Uri(TestEnvironment.PrometheusUrl, "api/v1/write"), request);
        Assert.Equal(HttpStatusCode.NoContent, status);

        using var prometheus = new PrometheusClient();
        var result = await prometheus.WaitForAsync(name, r => r.Count == 1);
        Assert.Equal(12.5, result[0].Value);
        Assert.Equal("smoke", result[0].Labels["job"]);
    }

    [Fact]
    public async Task PutGetList_OnS3rver_RoundTrips()
    {
        using var s3 = TestEnvironment.S3.CreateClient();
        var key = "smoke/" + UniqueName.For() + ".txt";

        await s3.PutObjectAsync(new PutObjectRequest { BucketName = TestEnvironment.S3.Bucket, Key = key, ContentBody = "hello parquet", UseChunkEncoding = false })
            .WaitAsync(TestTimeouts.Short);
        using var get = await s3.GetObjectAsync(TestEnvironment.S3.Bucket, key).WaitAsync(TestTimeouts.Short);
        using var reader = new StreamReader(get.ResponseStream);
        var list = await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = TestEnvironment.S3.Bucket, Prefix = "smoke/" })
            .WaitAsync(TestTimeouts.Short);

        Assert.Equal("hello parquet", await reader.ReadToEndAsync());
        Assert.Contains(list.S3Objects, o => o.Key == key);
    }

    [Fact]
    public async Task Metrics_OfPostgresExporter_ShowTheDatabaseUp()
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Short };

        var text = await http.GetStringAsync(TestEnvironment.PostgresExporterUrl);

        Assert.Contains("\npg_up 1", text, StringComparison.Ordinal);
    }
}

/// <summary>The harness can take a server away and bring it back on the same port, for fault tests.</summary>
[Collection(ServiceFaultCollection.Name)]
[Trait("Category", ServiceFaultCollection.Category)]
public sealed class ServiceControlTests
{
    [Fact]
    public async Task StopThenStart_OfRedis_FailsWhileDownAndWorksAfter()
    {
        var options = ConfigurationOptions.Parse(TestEnvironment.Redis);
        options.AbortOnConnectFail = true;
        options.ConnectTimeout = 2000;

        await ServiceControl.StopAsync("redis");
        try
        {
            await Assert.ThrowsAsync<RedisConnectionException>(() => ConnectionMultiplexer.ConnectAsync(options).WaitAsync(TestTimeouts.Short));
        }
        finally
        {
            await ServiceControl.StartAsync("redis");
        }

        await using var redis = await ConnectionMultiplexer.ConnectAsync(options).WaitAsync(TestTimeouts.Short);
        var key = UniqueName.For();
        await redis.GetDatabase().StringSetAsync(key, "back").WaitAsync(TestTimeouts.Short);
        Assert.Equal("back", (string?)await redis.GetDatabase().StringGetAsync(key).WaitAsync(TestTimeouts.Short));
    }
}

using PgOtelGateway.Tests.Common;
using Xunit;
using static PgOtelGateway.Integration.Tests.Agent.AgentScrape;

namespace PgOtelGateway.Integration.Tests.Agent;

/// <summary>
/// The role is read on every scrape: a standby of its own (so the harness's standby stays one), promoted between two
/// scrapes of the same receiver, is a replica in the first and the primary in the next.
/// </summary>
public sealed class PromotionTests
{
    [Fact]
    public async Task Standby_PromotedBetweenScrapes_IsPrimaryAtTheNextScrape()
    {
        var pg = TestEnvironment.Postgres;
        var port = FreePort.Get();
        var data = Path.Combine(TestEnvironment.RunDirectory, UniqueName.For());
        var ctl = $"runuser -u postgres -- '{pg.BinDirectory}/pg_ctl' -D '{data}'";
        await Shell($"""
            mkdir -p '{data}' && chown postgres:postgres '{data}' && chmod 700 '{data}'
            runuser -u postgres -- '{pg.BinDirectory}/pg_basebackup' -h {pg.Host} -p {pg.Port} -U {pg.Superuser} -D '{data}' -R -X stream
            echo 'port = {port}' >> '{data}/postgresql.conf'
            {ctl} -l '{data}/server.log' -w -t 60 start
            """);
        try
        {
            await using var receiver = Receiver(Options("postgres", port: port));

            var before = await receiver.ScrapeOnceAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
            Assert.Equal(1, Single(before, "postgresql.up"));
            Assert.Equal("replica", Resource(before, "db.role"));
            Assert.NotNull(Single(before, "postgresql.replication.lag_seconds"));

            await Shell($"{ctl} -w -t 60 promote");

            var after = await receiver.ScrapeOnceAsync(CancellationToken.None).WaitAsync(TestTimeouts.Short);
            Assert.Equal(1, Single(after, "postgresql.up"));
            Assert.Equal("primary", Resource(after, "db.role"));
            Assert.Empty(Points(after, "postgresql.replication.lag_seconds"));
            Assert.Equal(Resource(before, "db.instance"), Resource(after, "db.instance"));
        }
        finally
        {
            await Shell($"{ctl} -m immediate -w stop || true; rm -rf '{data}'");
        }
    }

    private static async Task Shell(string script)
    {
        var (exit, stdout, stderr) = await Deploy.ToolRunner.RunAsync("bash", ["-ec", script]);
        Assert.True(exit == 0, $"{script}\nexit {exit}: {stdout}{stderr}");
    }
}

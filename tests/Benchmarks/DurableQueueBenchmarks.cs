using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using PgOtelGateway.Gateway.Queue;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Benchmarks;

/// <summary>
/// The cost of durability: concurrent clients append 1,000-point agent-shaped requests to the durable queue and
/// each waits for its acknowledgement, under <c>fsync: always</c>, <c>group</c> (no wait, the default),
/// <c>group</c> with <c>group_commit.interval: 2ms</c>, and <c>never</c>:
/// <c>dotnet run -c Release --project tests/Benchmarks -- --filter '*DurableQueue*'</c>.
/// One operation is one acknowledged request; 1,000 points each. The queue lives under the system temp folder.
/// </summary>
[MemoryDiagnoser]
public class DurableQueueBenchmarks
{
    private const int RequestsPerClient = 16;

    private byte[] _payload = [];
    private string _directory = "";
    private DurableLog? _log;

    [Params("always", "group", "group+2ms", "never")]
    public string Fsync { get; set; } = "group";

    [Params(1, 16)]
    public int Clients { get; set; } = 16;

    [GlobalSetup]
    public void Setup()
    {
        _payload = GatewayHotPathBenchmarks.AgentLikeRequest(1000).ToByteArray();
        _directory = Path.Combine(Path.GetTempPath(), "pgotel-bench-queue-" + Guid.NewGuid().ToString("N"));
        var options = new QueueOptions
        {
            Fsync = Enum.Parse<FsyncPolicy>(Fsync.Split('+')[0], ignoreCase: true),
            GroupCommit = new GroupCommitOptions { Interval = Fsync.EndsWith("+2ms", StringComparison.Ordinal) ? TimeSpan.FromMilliseconds(2) : TimeSpan.Zero },
            MaxSize = ByteSize.FromMiB(4096),
            SegmentSize = ByteSize.FromMiB(64),
        };
        _log = new DurableLog("bench", _directory, options, NullLogger.Instance);
        _log.Open();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log!.StopWritingAsync().GetAwaiter().GetResult();
        _log.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Description = "acknowledged 1000-point request", OperationsPerInvoke = RequestsPerClient * 16)]
    public async Task Append()
    {
        // Always 256 requests per invocation: 1 client sends them one after another, 16 clients 16 each at once.
        var tasks = new Task[Clients];
        var perClient = RequestsPerClient * 16 / Clients;
        for (var c = 0; c < Clients; c++)
        {
            tasks[c] = Task.Run(async () =>
            {
                for (var i = 0; i < perClient; i++)
                {
                    await _log!.AppendAsync(_payload).ConfigureAwait(false);
                }
            });
        }

        await Task.WhenAll(tasks).ConfigureAwait(false);

        // An exporter that keeps up: consumed segments go, so the queue never fills.
        _log!.DeleteSegmentsBefore(_log.CommittedOffset);
    }
}

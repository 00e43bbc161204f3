using PgOtelGateway.Gateway.Admin;

namespace PgOtelGateway.Gateway.Tests.Admin;

internal sealed class FakePipelineStatus(string id = "gw-test", bool ready = true) : IPipelineStatus
{
    public static readonly DateTimeOffset Started = new(2025, 3, 1, 10, 0, 0, TimeSpan.Zero);

    public PipelineStatusSnapshot Snapshot() => new(
        id,
        "1.2.3",
        Started,
        TimeSpan.FromSeconds(3725.5),
        ready,
        [new PipelineSummary("metrics", ["otlp"], ["memory_limiter", "dedupe", "batch"], ["prometheusremotewrite", "parquet"])]);
}

internal sealed class FakeRing : IRingStatus
{
    public static readonly DateTimeOffset Heartbeat = new(2025, 3, 1, 11, 0, 0, TimeSpan.Zero);

    private RingMemberState _selfState = RingMemberState.Active;

    public int LeaveCalls { get; private set; }

    public RingSnapshot Snapshot() => new("gw-b",
    [
        new RingMemberSnapshot("gw-c", "10.0.0.3:4317", RingMemberState.Joining, null, 0),
        new RingMemberSnapshot("gw-a", "10.0.0.1:4317", RingMemberState.Active, Heartbeat, 0.5),
        new RingMemberSnapshot("gw-b", "10.0.0.2:4317", _selfState, Heartbeat, _selfState == RingMemberState.Active ? 0.5 : 0),
    ]);

    public Task LeaveAsync(CancellationToken cancellationToken)
    {
        LeaveCalls++;
        _selfState = RingMemberState.Leaving;
        return Task.CompletedTask;
    }
}

internal sealed class FakeHa : IHaStatus
{
    public HaSnapshot Snapshot() => new("ha_tracker",
    [
        new HaClusterSnapshot("pg-orders", "agent-2", new DateTimeOffset(2025, 3, 1, 10, 30, 0, TimeSpan.Zero), 3),
        new HaClusterSnapshot("pg-billing", "agent-7", new DateTimeOffset(2025, 3, 1, 10, 5, 0, TimeSpan.Zero), 0),
    ]);
}

internal sealed class FakeDedup : IDedupStatus
{
    public DedupSnapshot Snapshot() => new("dedupe", 1200, 5000, 40, 7000, 2, 350);
}

internal sealed class FakeExporter(string name, string? lastError = null) : IExporterStatus
{
    public ExporterSnapshot Snapshot() => new(
        name, 12, 345_678, TimeSpan.FromSeconds(4.25), 1_000_000, 20, 3, lastError,
        lastError is null ? null : new DateTimeOffset(2025, 3, 1, 10, 59, 0, TimeSpan.Zero));
}

internal sealed class ThrowingDedup : IDedupStatus
{
    public DedupSnapshot Snapshot() => throw new InvalidOperationException("redis://:hunter2-secret@redis:6379 exploded");
}

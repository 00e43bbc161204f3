using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Queue;

/// <summary>When an append is forced to disk before the client is acknowledged.</summary>
internal enum FsyncPolicy
{
    /// <summary>Every append is written and fsync'd on its own (safest, slowest).</summary>
    Always,

    /// <summary>Appends arriving together are written as one batch and fsync'd once (group commit).</summary>
    Group,

    /// <summary>Appends reach the operating system (they survive a process crash) but are not fsync'd (not a power loss).</summary>
    Never,
}

/// <summary><c>gateway.queue</c>: the on-disk log between the processors and the exporters.</summary>
internal sealed class QueueOptions : IValidatableOptions
{
    /// <summary>
    /// Where the log lives. Empty means <c>data/queue/{gateway.id}</c> under the working directory. Each pipeline
    /// gets a sub-directory named after it; one gateway process holds each directory (a lock file).
    /// </summary>
    public string Directory { get; set; } = "";

    /// <summary>Most bytes on disk (records not yet consumed by every exporter); beyond it new data is refused.</summary>
    public ByteSize MaxSize { get; set; } = ByteSize.FromMiB(1024);

    /// <summary>How appends are made durable before the client gets success.</summary>
    public FsyncPolicy Fsync { get; set; } = FsyncPolicy.Group;

    /// <summary>How group commit gathers appends (used when <c>fsync: group</c>).</summary>
    public GroupCommitOptions GroupCommit { get; set; } = new();

    /// <summary>
    /// Size at which the log starts a new segment file; a segment is deleted once every exporter has passed it.
    /// At most a quarter of <see cref="MaxSize"/> is used, so consumed data in the segment being written can
    /// never fill the queue.
    /// </summary>
    public ByteSize SegmentSize { get; set; } = ByteSize.FromMiB(64);

    /// <summary>The segment size in effect: <see cref="SegmentSize"/>, at most a quarter of <see cref="MaxSize"/>.</summary>
    public long EffectiveSegmentBytes => Math.Max(64 * 1024, Math.Min(SegmentSize.Bytes, MaxSize.Bytes / 4));

    /// <summary>Most bytes of records each exporter has in flight (handed over, not yet confirmed).</summary>
    public ByteSize MaxInFlight { get; set; } = ByteSize.FromMiB(16);

    /// <summary>How often each exporter's cursor is written to disk (a crash replays at most about this much).</summary>
    public TimeSpan CursorSyncInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    public IEnumerable<string> Validate()
    {
        if (MaxSize.Bytes < 1024 * 1024)
        {
            yield return "gateway.queue.max_size must be at least 1MiB";
        }

        if (SegmentSize.Bytes < 64 * 1024)
        {
            yield return "gateway.queue.segment_size must be at least 64KiB";
        }

        if (MaxInFlight.Bytes < 1)
        {
            yield return "gateway.queue.max_in_flight must be above 0";
        }

        if (GroupCommit.Interval < TimeSpan.Zero || GroupCommit.Interval > TimeSpan.FromSeconds(1))
        {
            yield return "gateway.queue.group_commit.interval must be between 0 and 1s";
        }

        if (GroupCommit.MaxBytes.Bytes < 1)
        {
            yield return "gateway.queue.group_commit.max_bytes must be above 0";
        }

        if (CursorSyncInterval <= TimeSpan.Zero)
        {
            yield return "gateway.queue.cursor_sync_interval must be above 0";
        }
    }

    /// <summary>The directory of one pipeline's log.</summary>
    public string PipelineDirectory(string gatewayId, string pipelineId)
    {
        var root = Directory.Length > 0 ? Directory : Path.Combine("data", "queue", SafeName(gatewayId));
        return Path.GetFullPath(Path.Combine(root, SafeName(pipelineId)));
    }

    /// <summary>A component id as a file name: anything but letters, digits, '-', '_' and '.' becomes '_'.</summary>
    public static string SafeName(string id)
    {
        var chars = id.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!(char.IsAsciiLetterOrDigit(chars[i]) || chars[i] is '-' or '_' or '.'))
            {
                chars[i] = '_';
            }
        }

        return new string(chars);
    }
}

/// <summary><c>gateway.queue.group_commit</c>.</summary>
internal sealed class GroupCommitOptions
{
    /// <summary>
    /// How long the writer waits after the first append of a group for others to join it. 0 (the default) does not
    /// wait: the appends that arrive while one group is written and fsync'd form the next group, which already
    /// gathers concurrent requests without delaying a lone one.
    /// </summary>
    public TimeSpan Interval { get; set; } = TimeSpan.Zero;

    /// <summary>A group is written at once when it reaches this many bytes.</summary>
    public ByteSize MaxBytes { get; set; } = ByteSize.FromMiB(4);
}

using System.Text.Json.Serialization;

namespace PgOtelGateway.Gateway.Admin;

// The JSON bodies of the admin API (keys snake_case, times ISO-8601 UTC, durations in seconds). The CLI reads
// them back with the same types, so the API and the CLI cannot drift apart. docs/admin-api.md lists every field.

/// <summary><c>GET /api/v1/status</c>.</summary>
internal sealed record StatusResponse(
    string Id,
    string Version,
    DateTime StartedAt,
    double UptimeSeconds,
    bool Ready,
    IReadOnlyList<PipelineSummary> Pipelines);

/// <summary>One row of <c>GET /api/v1/ring</c>.</summary>
internal sealed record RingMemberResponse(string Id, string Address, string State, DateTime? LastHeartbeat, double OwnedFraction, bool Self);

/// <summary><c>GET /api/v1/ring</c>; <c>enabled: false</c> and no members when no ring is configured.</summary>
internal sealed record RingResponse(bool Enabled, string SelfId, IReadOnlyList<RingMemberResponse> Members);

/// <summary>One row of <c>GET /api/v1/ha</c>.</summary>
internal sealed record HaClusterResponse(string Processor, string Cluster, string ElectedReplica, DateTime Since, long Failovers);

/// <summary><c>GET /api/v1/ha</c>; <c>enabled: false</c> when no <c>ha_tracker</c> runs.</summary>
internal sealed record HaResponse(bool Enabled, IReadOnlyList<HaClusterResponse> Clusters);

/// <summary><c>GET /api/v1/dedup</c>; <c>enabled: false</c> when no <c>dedupe</c> processor runs.</summary>
internal sealed record DedupResponse(bool Enabled, IReadOnlyList<DedupSnapshot> Processors);

/// <summary>One row of <c>GET /api/v1/exporters</c>.</summary>
internal sealed record ExporterResponse(
    string Name,
    long QueueRecords,
    long QueueBytes,
    double? OldestItemAgeSeconds,
    long SentPoints,
    long FailedPoints,
    long DroppedPoints,
    string? LastError,
    DateTime? LastErrorTime);

/// <summary><c>GET /api/v1/exporters</c>.</summary>
internal sealed record ExportersResponse(IReadOnlyList<ExporterResponse> Exporters);

/// <summary>An agent that reported an instance, and when it last did.</summary>
internal sealed record InstanceAgentResponse(string Id, DateTime LastSeen);

/// <summary>One row of <c>GET /api/v1/instances</c>.</summary>
internal sealed record InstanceResponse(
    string Cluster,
    string Instance,
    string Role,
    IReadOnlyList<InstanceAgentResponse> Agents,
    DateTime FirstSeen,
    DateTime LastSeen,
    long Series,
    double PointsPerSecond);

/// <summary><c>GET /api/v1/instances</c>.</summary>
/// <param name="Enabled">False when no instance tracker runs.</param>
/// <param name="Instances">Instances seen within the retention, by cluster then instance.</param>
/// <param name="OverLimitResources">Resources not tracked because <c>max_instances</c> was reached.</param>
internal sealed record InstancesResponse(bool Enabled, IReadOnlyList<InstanceResponse> Instances, long OverLimitResources);

/// <summary><c>GET /api/v1/config</c>.</summary>
/// <param name="Source">The file the configuration came from, or <c>embedded defaults</c>.</param>
/// <param name="Yaml">The effective configuration, every secret replaced by <c>&lt;redacted&gt;</c>.</param>
internal sealed record ConfigResponse(string Source, string Yaml);

/// <summary><c>POST /api/v1/ring/leave</c>.</summary>
internal sealed record LeaveResponse(string SelfId, string State);

/// <summary>Any error.</summary>
internal sealed record ErrorResponse(string Error);

/// <summary>Source-generated serialization of the admin API: no reflection, snake_case keys.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(StatusResponse))]
[JsonSerializable(typeof(RingResponse))]
[JsonSerializable(typeof(HaResponse))]
[JsonSerializable(typeof(DedupResponse))]
[JsonSerializable(typeof(ExportersResponse))]
[JsonSerializable(typeof(InstancesResponse))]
[JsonSerializable(typeof(ConfigResponse))]
[JsonSerializable(typeof(LeaveResponse))]
[JsonSerializable(typeof(ErrorResponse))]
internal sealed partial class AdminJsonContext : JsonSerializerContext;

namespace PgOtelGateway.LoadGen;

/// <summary>What one request came back with.</summary>
/// <param name="Refused">The whole request was refused (an error status).</param>
/// <param name="RejectedPoints">Points the receiver rejected in an otherwise accepted request (OTLP partial success).</param>
internal readonly record struct SendOutcome(bool Refused, long RejectedPoints);

/// <summary>Sends request number n of the simulated agents' output over one protocol.</summary>
internal interface ILoadSender : IDisposable
{
    /// <summary>The last error seen, for the report.</summary>
    string? LastError { get; }

    /// <summary>Sends request number n; <paramref name="agentId"/>, when set, becomes the resource's <c>agent.id</c>.</summary>
    Task<SendOutcome> SendAsync(int n, DateTimeOffset now, string? agentId);
}

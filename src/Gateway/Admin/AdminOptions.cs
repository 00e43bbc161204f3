using PgOtelGateway.Shared.Hosting;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Gateway.Admin;

/// <summary><c>gateway.admin</c>: the admin API and status page.</summary>
internal sealed class AdminOptions : IValidatableOptions
{
    /// <summary>Listen address (<c>host:port</c>); empty turns the admin API off.</summary>
    public string Endpoint { get; set; } = "0.0.0.0:8080";

    /// <summary>
    /// Bearer token every <c>/api/v1/*</c> request must carry (<c>Authorization: Bearer …</c>); also
    /// <c>token_file</c>. Empty: no token is asked for (bind the endpoint to loopback then).
    /// </summary>
    [Secret]
    public string Token { get; set; } = "";

    /// <summary>What the PostgreSQL instance tracker behind <c>GET /api/v1/instances</c> keeps.</summary>
    public InstanceTrackerOptions Instances { get; set; } = new();

    /// <inheritdoc />
    public IEnumerable<string> Validate()
    {
        if (Endpoint.Length > 0)
        {
            string? problem = null;
            try
            {
                ListenAddress.Parse(Endpoint, "endpoint");
            }
            catch (FormatException ex)
            {
                problem = ex.Message;
            }

            if (problem is not null)
            {
                yield return problem;
            }
        }

        if (Token.Length > 0 && (Token.Trim().Length != Token.Length || Token.Any(char.IsControl)))
        {
            // A token with spaces or control characters cannot travel in an Authorization header intact.
            yield return "token: must not have leading or trailing spaces or control characters";
        }

        if (Instances.Retention <= TimeSpan.Zero)
        {
            yield return "instances.retention must be above 0";
        }

        if (Instances.MaxInstances < 1 || Instances.MaxAgentsPerInstance < 1)
        {
            yield return "instances.max_instances and instances.max_agents_per_instance must be at least 1";
        }

        if (Instances.SeriesWindow < TimeSpan.FromSeconds(1))
        {
            yield return "instances.series_window must be at least 1s";
        }
    }
}

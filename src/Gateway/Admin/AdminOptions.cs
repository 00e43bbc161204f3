using PgOtelGateway.Gateway.Hosting;
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
    }
}

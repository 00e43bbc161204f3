using Microsoft.Extensions.Logging;

namespace PgOtelGateway.Gateway.Admin;

internal sealed partial class AdminServer
{
    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "The admin API and status page listen on {Endpoint} and ask for {Auth}.")]
    private static partial void LogListening(ILogger logger, string endpoint, string auth);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Warning, Message = "The admin API on {Endpoint} is reachable beyond this host and asks for no token; set gateway.admin.token_file or bind it to 127.0.0.1.")]
    private static partial void LogNoToken(ILogger logger, string endpoint);
}

using Microsoft.Extensions.Logging;

namespace PgOtelGateway.Gateway.Admin;

internal sealed partial class AdminApi
{
    [LoggerMessage(EventId = 5101, Level = LogLevel.Information, Message = "Admin request {Method} {Path} from {Remote} was refused: it carried {Problem}.")]
    private static partial void LogUnauthorized(ILogger logger, string method, string path, string remote, string problem);

    [LoggerMessage(EventId = 5102, Level = LogLevel.Error, Message = "The {What} status could not be read for the admin API.")]
    private static partial void LogSourceFailed(ILogger logger, string what, Exception exception);

    [LoggerMessage(EventId = 5103, Level = LogLevel.Warning, Message = "Leaving the ring, as asked through the admin API by {Remote}.")]
    private static partial void LogLeaveRequested(ILogger logger, string remote);
}

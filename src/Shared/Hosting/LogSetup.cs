using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Shared.Hosting;

/// <summary>Logging as <c>service.telemetry.logs</c> asks: JSON (default) or one-line console, a level, quiet frameworks.</summary>
public static class LogSetup
{
    /// <summary>Configures <paramref name="logging"/>; <paramref name="toStandardError"/> keeps stdout free for data (collect-once).</summary>
    public static void Configure(ILoggingBuilder logging, LogsTelemetryOptions options, bool toStandardError = false)
    {
        logging.ClearProviders();
        if (options.Encoding == "console")
        {
            logging.AddSimpleConsole(o => o.SingleLine = true);
        }
        else
        {
            logging.AddJsonConsole(o =>
            {
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }

        if (toStandardError)
        {
            logging.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        }

        logging.SetMinimumLevel(options.Level.ToLowerInvariant() switch
        {
            "debug" => LogLevel.Debug,
            "warn" or "warning" => LogLevel.Warning,
            "error" => LogLevel.Error,
            _ => LogLevel.Information,
        });
        logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        logging.AddFilter("Grpc.AspNetCore", LogLevel.Warning);
        logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
    }
}

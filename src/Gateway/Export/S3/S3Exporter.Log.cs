using Microsoft.Extensions.Logging;

namespace PgOtelGateway.Gateway.Export.S3;

internal sealed partial class S3Exporter
{
    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Exporter {Exporter} writes {Marshaler} files to {Target}, staging in {Staging}.")]
    private static partial void LogStarted(ILogger logger, string exporter, string marshaler, string target, string staging);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Information, Message = "Exporter {Exporter} found {Files} files ({Bytes} bytes) left in staging {Staging}; they are uploaded now.")]
    private static partial void LogLeftInStaging(ILogger logger, string exporter, int files, long bytes, string staging);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Warning, Message = "Exporter {Exporter} cannot upload and will retry while the files wait in staging: {Detail}")]
    private static partial void LogUploadFailing(ILogger logger, string exporter, string detail);

    [LoggerMessage(EventId = 1204, Level = LogLevel.Information, Message = "Exporter {Exporter} uploads to {Target} again.")]
    private static partial void LogUploadRecovered(ILogger logger, string exporter, string target);

    [LoggerMessage(EventId = 1205, Level = LogLevel.Error, Message = "Exporter {Exporter} cannot write its staging journal; the data is refused and the client retries: {Detail}")]
    private static partial void LogStagingWriteFailed(ILogger logger, string exporter, string detail);

    [LoggerMessage(EventId = 1206, Level = LogLevel.Error, Message = "Exporter {Exporter} cannot convert staging journal {Journal} (attempt {Attempt}): {Detail}")]
    private static partial void LogConvertFailed(ILogger logger, string exporter, string journal, int attempt, string detail);

    [LoggerMessage(EventId = 1209, Level = LogLevel.Error, Message = "Exporter {Exporter} set staging journal {Journal} aside in {Folder} after repeated conversion failures; its points are counted as dropped.")]
    private static partial void LogSetAside(ILogger logger, string exporter, string journal, string folder);

    [LoggerMessage(EventId = 1207, Level = LogLevel.Warning, Message = "Exporter {Exporter} cut {Bytes} bytes from the end of staging journal {Journal}: a record torn by a crash, never acknowledged.")]
    private static partial void LogTornTail(ILogger logger, string exporter, string journal, long bytes);

    [LoggerMessage(EventId = 1208, Level = LogLevel.Information, Message = "Exporter {Exporter} stopped with {Files} files ({Bytes} bytes) in staging {Staging}; they are uploaded at the next start.")]
    private static partial void LogLeftForNextStart(ILogger logger, string exporter, int files, long bytes, string staging);
}

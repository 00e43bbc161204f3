using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Compression;
using System.Threading.Channels;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Metrics.V1;
using PgOtelGateway.Gateway.Export.Parquet;
using PgOtelGateway.Gateway.Telemetry;
using PgOtelGateway.Shared.Pipeline;
using PgOtelGateway.Shared.Storage;

namespace PgOtelGateway.Gateway.Export.S3;

/// <summary>
/// The cold tier (<c>awss3</c>): Parquet (or zstd OTLP) files in S3 or a local folder, hive-partitioned by time.
/// <para>
/// Data moves through a local staging folder in three steps, each durable before the next: (1) a request is
/// appended to the open journal and fsynced, then <see cref="ConsumeAsync"/> completes (concurrent requests
/// share one fsync); (2) a journal that reached <c>file_max_bytes</c> or <c>file_max_age</c> is closed and
/// converted into one file per time partition under <c>ready/</c> (written, fsynced, renamed, then the journal
/// is deleted); (3) the uploader sends ready files in order, retrying with backoff while the target is down,
/// and deletes each once stored. Whatever is in staging at start (a crash, an outage, a short shutdown) is
/// converted and uploaded then. Keys are fixed when a file is made, so a repeated step overwrites.
/// </para>
/// </summary>
internal sealed partial class S3Exporter : IMetricsConsumer, IPipelineComponent, Admin.ISelfPersistingExporter, IDisposable
{
    private const string JournalFolder = "journal";
    private const string ReadyFolder = "ready";
    private const string SequenceFile = "sequence";

    private readonly string _id;
    private readonly string _gatewayId;
    private readonly S3ExporterOptions _options;
    private readonly ILogger _logger;
    private readonly IColdTarget _target;
    private readonly string _journalDir;
    private readonly string _readyDir;
    private readonly string _sequencePath;
    private readonly string _prefix;
    private readonly Channel<Append> _appends = Channel.CreateUnbounded<Append>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim _journalClosed = new(0);
    private readonly SemaphoreSlim _fileReady = new(0);
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _stopUploads = new();

    // Closed journals and ready files waiting, by path: when made, bytes, points (0 when unknown).
    private readonly ConcurrentDictionary<string, Waiting> _waiting = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _convertFailures = new(StringComparer.Ordinal);
    private FileStream? _lock;
    private StagingJournal? _journal;
    private long _journalPoints;
    private long _nextSequence;
    private long _stagedBytes;
    private long _sent;
    private long _failed;
    private long _dropped;
    private long _filesUploaded;
    private string? _lastError;
    private DateTimeOffset? _lastErrorTime;
    private Task _writer = Task.CompletedTask;
    private Task _converter = Task.CompletedTask;
    private Task _uploader = Task.CompletedTask;
    private volatile bool _writerDone;

    public S3Exporter(string id, string gatewayId, S3ExporterOptions options, ILogger<S3Exporter> logger, IColdTarget? target = null)
    {
        _id = id;
        _gatewayId = gatewayId;
        _options = options;
        _logger = logger;
        var staging = options.Staging.Directory.Length > 0
            ? options.Staging.Directory
            : Path.Combine("data", "staging", ObjectKeys.SafeId(gatewayId), ObjectKeys.SafeId(id));
        StagingDirectory = Path.GetFullPath(staging);
        _journalDir = Path.Combine(StagingDirectory, JournalFolder);
        _readyDir = Path.Combine(StagingDirectory, ReadyFolder);
        _sequencePath = Path.Combine(StagingDirectory, SequenceFile);
        _prefix = options.S3uploader.S3Prefix;
        _target = target ?? CreateTarget(options);
    }

    /// <summary>The staging folder in use.</summary>
    public string StagingDirectory { get; }

    /// <summary>Where files go (no credentials).</summary>
    public string TargetDescription => _target.Description;

    /// <summary>Files uploaded since start.</summary>
    public long FilesUploaded => Interlocked.Read(ref _filesUploaded);

    /// <summary>Closed journals and files not uploaded yet, plus the open journal when it holds data.</summary>
    public int FilesWaiting => _waiting.Count + (_journal is { Records: > 0 } ? 1 : 0);

    private static IColdTarget CreateTarget(S3ExporterOptions options)
    {
        var endpoint = options.S3uploader.Endpoint;
        return endpoint.StartsWith("file://", StringComparison.OrdinalIgnoreCase)
            ? new LocalFolderTarget(endpoint["file://".Length..])
            : new S3Target(options.S3uploader, options.RetryOnFailure.Timeout);
    }

    /// <inheritdoc />
    public Admin.ExporterSnapshot Snapshot()
    {
        DateTimeOffset? oldest = _journal is { Records: > 0 } j ? j.OpenedAt : null;
        foreach (var (_, w) in _waiting)
        {
            if (oldest is null || w.Since < oldest)
            {
                oldest = w.Since;
            }
        }

        // A full staging area refuses new data (the client retries) and uploads retry for ever; only a journal that
        // cannot be converted is set aside (staging/failed/) and its points counted as dropped.
        return new Admin.ExporterSnapshot(
            _id, FilesWaiting, Interlocked.Read(ref _stagedBytes), oldest is null ? null : DateTimeOffset.UtcNow - oldest.Value,
            Interlocked.Read(ref _sent), Interlocked.Read(ref _failed), Interlocked.Read(ref _dropped), _lastError, _lastErrorTime);
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_journalDir);
        Directory.CreateDirectory(_readyDir);
        try
        {
            // One process per staging folder: a second one would interleave journals and delete the other's files.
            _lock = new FileStream(Path.Combine(StagingDirectory, "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new InvalidOperationException(
                $"exporter '{_id}': the staging folder {StagingDirectory} is in use by another process (set a distinct gateway.id or staging.directory): {ex.Message}", ex);
        }

        long last = 0;
        if (File.Exists(_sequencePath) && long.TryParse(File.ReadAllText(_sequencePath).Trim(), out var persisted))
        {
            last = persisted;
        }

        // Journals left by the last run are closed now (a torn tail is cut when they are converted).
        foreach (var path in Directory.EnumerateFiles(_journalDir, "*" + StagingJournal.Extension))
        {
            if (long.TryParse(Path.GetFileNameWithoutExtension(path), out var seq))
            {
                last = Math.Max(last, seq);
                var info = new FileInfo(path);
                _waiting[path] = new Waiting(info.LastWriteTimeUtc, info.Length, 0, IsJournal: true);
                Interlocked.Add(ref _stagedBytes, info.Length);
            }
        }

        foreach (var path in Directory.EnumerateFiles(_readyDir, "*", SearchOption.AllDirectories))
        {
            if (path.EndsWith(".tmp", StringComparison.Ordinal))
            {
                File.Delete(path);
                continue;
            }

            var info = new FileInfo(path);
            last = Math.Max(last, ObjectKeys.SequenceOf(info.Name));
            _waiting[path] = new Waiting(info.LastWriteTimeUtc, info.Length, await PointsInAsync(path, cancellationToken).ConfigureAwait(false), IsJournal: false);
            Interlocked.Add(ref _stagedBytes, info.Length);
        }

        _nextSequence = last + 1;
        if (!_waiting.IsEmpty)
        {
            LogLeftInStaging(_logger, _id, _waiting.Count, Interlocked.Read(ref _stagedBytes), StagingDirectory);
        }

        PublishStaging();
        LogStarted(_logger, _id, _options.Marshaler.ToString(), _target.Description, StagingDirectory);
        _writer = Task.Run(() => WriteLoopAsync(_stopping.Token), CancellationToken.None);
        _converter = Task.Run(() => ConvertLoopAsync(), CancellationToken.None);
        _uploader = Task.Run(() => UploadLoopAsync(_stopUploads.Token), CancellationToken.None);
        _journalClosed.Release();
        _fileReady.Release();
    }

    /// <summary>The rows of a Parquet file left in staging (its footer says), so uploads after a restart count them; 0 otherwise.</summary>
    private static async Task<long> PointsInAsync(string path, CancellationToken cancellationToken)
    {
        if (!path.EndsWith(".parquet", StringComparison.Ordinal))
        {
            return 0;
        }

        try
        {
            await using var reader = await global::Parquet.ParquetReader.CreateAsync(path, null, cancellationToken).ConfigureAwait(false);
            long rows = 0;
            for (var i = 0; i < reader.RowGroupCount; i++)
            {
                using var group = reader.OpenRowGroupReader(i);
                rows += group.RowCount;
            }

            return rows;
        }
        catch (Exception ex) when (ex is IOException or global::Parquet.ParquetException)
        {
            return 0;
        }
    }

    public async Task ConsumeAsync(ExportMetricsServiceRequest request, CancellationToken cancellationToken)
    {
        var points = MetricsCounting.DataPoints(request);
        if (points == 0)
        {
            return;
        }

        var payload = request.ToByteArray();
        var size = payload.Length + 8L;
        if (Interlocked.Add(ref _stagedBytes, size) > _options.Staging.MaxSize.Bytes)
        {
            Interlocked.Add(ref _stagedBytes, -size);
            GatewayMetrics.ColdStagingRefusals.WithLabels(_id).Inc();
            throw new PipelineRefusedException(RefusalReason.QueueFull,
                $"the staging area of exporter '{_id}' is full ({_options.Staging.MaxSize.Bytes} bytes waiting for upload)", TimeSpan.FromSeconds(5));
        }

        var append = new Append(payload, points);
        if (!_appends.Writer.TryWrite(append))
        {
            Interlocked.Add(ref _stagedBytes, -size);
            throw new PipelineRefusedException(RefusalReason.ShuttingDown, $"exporter '{_id}' is stopping", TimeSpan.FromSeconds(1));
        }

        // Completes once the record is on disk; a cancelled caller does not undo the append, and the client retries.
        await append.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _appends.Writer.TryComplete();
        try
        {
            await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
            await _converter.WaitAsync(cancellationToken).ConfigureAwait(false);

            // Upload what is ready while the shutdown deadline allows; the rest goes at the next start.
            while (!_waiting.IsEmpty && !_uploader.IsCompleted)
            {
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Past the deadline: nothing is lost, it stays in staging.
        }
        finally
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await _stopUploads.CancelAsync().ConfigureAwait(false);
            _journalClosed.Release();
            _fileReady.Release();
            await Task.WhenAll(_writer, _converter, _uploader).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).ConfigureAwait(false);
        }

        if (FilesWaiting > 0)
        {
            LogLeftForNextStart(_logger, _id, FilesWaiting, Interlocked.Read(ref _stagedBytes), StagingDirectory);
        }
    }

    // Step 1: append and fsync, many requests per fsync; roll the journal by size or age.
    private async Task WriteLoopAsync(CancellationToken stopping)
    {
        var reader = _appends.Reader;
        var batch = new List<Append>();
        try
        {
            while (true)
            {
                var wait = reader.WaitToReadAsync(stopping).AsTask();
                if (_journal is { Records: > 0 } open && !wait.IsCompleted)
                {
                    // Idle with an open journal: close it when it comes of age, even if no more data arrives.
                    var due = open.OpenedAt + _options.FileMaxAge - DateTimeOffset.UtcNow;
                    var aged = due <= TimeSpan.Zero;
                    if (!aged)
                    {
                        using var timer = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                        var first = await Task.WhenAny(wait, Task.Delay(due, timer.Token)).ConfigureAwait(false);
                        await timer.CancelAsync().ConfigureAwait(false);
                        aged = first != wait;
                    }

                    if (aged)
                    {
                        CloseJournal();
                    }
                }

                if (!await wait.ConfigureAwait(false))
                {
                    break;
                }

                batch.Clear();
                while (batch.Count < 1024 && reader.TryRead(out var next))
                {
                    batch.Add(next);
                }

                WriteBatch(batch);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        finally
        {
            CloseJournal();
            _writerDone = true;
            _journalClosed.Release();

            // Anything still queued was never written: its callers are told to retry.
            while (reader.TryRead(out var left))
            {
                left.Done.TrySetException(new PipelineRefusedException(RefusalReason.ShuttingDown, $"exporter '{_id}' is stopping", TimeSpan.FromSeconds(1)));
            }
        }
    }

    private void WriteBatch(List<Append> batch)
    {
        try
        {
            _journal ??= OpenJournal();
            foreach (var append in batch)
            {
                _journal.Append(append.Payload);
                _journalPoints += append.Points;
            }

            _journal.Sync();
            foreach (var append in batch)
            {
                append.Done.TrySetResult();
            }
        }
        catch (IOException ex)
        {
            // The journal may hold part of this batch: it is closed as it is (checksums cut a torn record) and
            // the callers retry; a retried request may then be stored twice, never lost.
            Failed($"cannot write staging journal: {ex.Message}");
            LogStagingWriteFailed(_logger, _id, ex.Message);
            foreach (var append in batch)
            {
                Interlocked.Add(ref _stagedBytes, -(append.Payload.Length + 8L));
                append.Done.TrySetException(new PipelineRefusedException(RefusalReason.Unavailable, $"exporter '{_id}' cannot write its staging area", TimeSpan.FromSeconds(5)));
            }

            CloseJournal();
            return;
        }

        if (_journal.Length >= _options.FileMaxBytes.Bytes || DateTimeOffset.UtcNow - _journal.OpenedAt >= _options.FileMaxAge)
        {
            CloseJournal();
        }

        PublishStaging();
    }

    private StagingJournal OpenJournal()
    {
        var seq = _nextSequence++;

        // The sequence survives restarts so keys never repeat, even once staging is empty.
        var temporary = _sequencePath + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            file.Write(System.Text.Encoding.ASCII.GetBytes(seq.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, _sequencePath, overwrite: true);
        DirectorySync.Flush(Path.GetDirectoryName(_sequencePath)!);
        _journalPoints = 0;
        return StagingJournal.Create(_journalDir, seq);
    }

    private void CloseJournal()
    {
        if (_journal is null)
        {
            return;
        }

        var journal = _journal;
        _journal = null;
        try
        {
            journal.Sync();
        }
        catch (IOException)
        {
            // Records not synced were not acknowledged either.
        }

        var length = journal.Length;
        journal.Dispose();
        if (journal.Records == 0)
        {
            File.Delete(journal.Path);
            return;
        }

        _waiting[journal.Path] = new Waiting(journal.OpenedAt, length, _journalPoints, IsJournal: true);
        _journalClosed.Release();
    }

    // Step 2: closed journals become ready files, oldest first.
    private async Task ConvertLoopAsync()
    {
        while (true)
        {
            await _journalClosed.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            var done = _writerDone || _stopping.IsCancellationRequested;
            foreach (var path in ClosedJournals())
            {
                try
                {
                    await ConvertAsync(path).ConfigureAwait(false);
                    _convertFailures.Remove(path);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // Kept for the next attempt (and the next start); a journal that fails again and again is set
                    // aside in failed/ so that it does not hold up everything behind it.
                    var attempts = _convertFailures.GetValueOrDefault(path) + 1;
                    _convertFailures[path] = attempts;
                    Failed($"cannot convert staging journal {Path.GetFileName(path)}: {ex.Message}");
                    LogConvertFailed(_logger, _id, path, attempts, ex.Message);
                    if (attempts >= 3)
                    {
                        SetAside(path);
                        continue;
                    }

                    await Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None).ConfigureAwait(false);
                    _journalClosed.Release();
                    break;
                }
            }

            if (done)
            {
                return;
            }
        }
    }

    private void SetAside(string journalPath)
    {
        var failed = Path.Combine(StagingDirectory, "failed");
        Directory.CreateDirectory(failed);
        File.Move(journalPath, Path.Combine(failed, Path.GetFileName(journalPath)), overwrite: true);
        _convertFailures.Remove(journalPath);
        if (_waiting.TryRemove(journalPath, out var w))
        {
            Interlocked.Add(ref _stagedBytes, -w.Bytes);
            Interlocked.Add(ref _dropped, w.Points);
            GatewayMetrics.ExporterDroppedPoints.WithLabels(_id, "unconvertible").Inc(w.Points);
        }

        LogSetAside(_logger, _id, journalPath, failed);
        PublishStaging();
    }

    private List<string> ClosedJournals()
    {
        var list = new List<string>();
        foreach (var (path, w) in _waiting)
        {
            if (w.IsJournal)
            {
                list.Add(path);
            }
        }

        list.Sort(StringComparer.Ordinal);
        return list;
    }

    private async Task ConvertAsync(string journalPath)
    {
        var sequence = long.Parse(Path.GetFileNameWithoutExtension(journalPath), System.Globalization.CultureInfo.InvariantCulture);
        var records = StagingJournal.ReadAll(journalPath, out var discarded);
        if (discarded > 0)
        {
            LogTornTail(_logger, _id, journalPath, discarded);
        }

        var made = new List<(string Path, long Bytes, long Points)>();
        if (_options.Marshaler == ColdMarshaler.Parquet)
        {
            await WriteParquetAsync(records, sequence, made).ConfigureAwait(false);
        }
        else
        {
            await WriteOtlpAsync(records, sequence, made).ConfigureAwait(false);
        }

        SyncDirectories(made);
        var journalBytes = _waiting.TryRemove(journalPath, out var w) ? w.Bytes : new FileInfo(journalPath).Length;
        File.Delete(journalPath);
        Interlocked.Add(ref _stagedBytes, -journalBytes);
        foreach (var (path, bytes, points) in made)
        {
            _waiting[path] = new Waiting(w?.Since ?? DateTimeOffset.UtcNow, bytes, points, IsJournal: false);
            Interlocked.Add(ref _stagedBytes, bytes);
        }

        PublishStaging();
        _fileReady.Release();
    }

    private async Task WriteParquetAsync(List<byte[]> records, long sequence, List<(string, long, long)> made)
    {
        var rows = new MetricRowSet();
        foreach (var record in records)
        {
            rows.Add(ExportMetricsServiceRequest.Parser.ParseFrom(record));
        }

        var bucket = ObjectKeys.BucketNanos(_options.S3uploader.S3Partition);
        rows.Sort(bucket);
        var options = MetricsParquetWriter.Options(_options.Compression switch
        {
            ColdCompression.Zstd => global::Parquet.CompressionMethod.Zstd,
            ColdCompression.Gzip => global::Parquet.CompressionMethod.Gzip,
            _ => global::Parquet.CompressionMethod.None,
        });

        // One file per partition: a partition's files hold only its own points.
        var start = 0;
        while (start < rows.Count)
        {
            var partition = rows[start].TimeUnixNano / bucket;
            var end = start + 1;
            var first = rows[start].TimeUnixNano;
            while (end < rows.Count && rows[end].TimeUnixNano / bucket == partition)
            {
                first = Math.Min(first, rows[end].TimeUnixNano);
                end++;
            }

            var relative = ObjectKeys.Relative(_options.S3uploader.S3Partition, first, _gatewayId, sequence, ".parquet");
            var path = await WriteReadyFileAsync(relative, stream => MetricsParquetWriter.WriteAsync(rows, start, end - start, stream, options, CancellationToken.None)).ConfigureAwait(false);
            made.Add((path, new FileInfo(path).Length, end - start));
            start = end;
        }
    }

    private async Task WriteOtlpAsync(List<byte[]> records, long sequence, List<(string, long, long)> made)
    {
        // Serialized requests concatenated are one valid request holding all their resource metrics.
        long first = long.MaxValue, points = 0;
        foreach (var record in records)
        {
            var request = ExportMetricsServiceRequest.Parser.ParseFrom(record);
            points += MetricsCounting.DataPoints(request);
            first = Math.Min(first, MetricRowSet.Earliest(request));
        }

        if (points == 0)
        {
            return;
        }

        var relative = ObjectKeys.Relative(_options.S3uploader.S3Partition, first == long.MaxValue ? 0 : first, _gatewayId, sequence, ObjectKeys.Extension(ColdMarshaler.OtlpProto, _options.Compression));
        var path = await WriteReadyFileAsync(relative, async stream =>
        {
            Stream output = _options.Compression switch
            {
                ColdCompression.Zstd => new ZstdSharp.CompressionStream(stream, 3, leaveOpen: true),
                ColdCompression.Gzip => new GZipStream(stream, CompressionLevel.Optimal, leaveOpen: true),
                _ => stream,
            };
            foreach (var record in records)
            {
                await output.WriteAsync(record).ConfigureAwait(false);
            }

            if (!ReferenceEquals(output, stream))
            {
                await output.DisposeAsync().ConfigureAwait(false);
            }
        }).ConfigureAwait(false);
        made.Add((path, new FileInfo(path).Length, points));
    }

    private async Task<string> WriteReadyFileAsync(string relative, Func<Stream, Task> write)
    {
        var path = Path.Combine(_readyDir, relative.Replace('/', Path.DirectorySeparatorChar));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        await using (var file = new FileStream(temporary, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16))
        {
            await write(file).ConfigureAwait(false);
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        return path;
    }

    private static void SyncDirectories(List<(string Path, long Bytes, long Points)> made)
    {
        // The renames are durable once their directories are synced.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, _, _) in made)
        {
            var dir = Path.GetDirectoryName(path)!;
            if (seen.Add(dir))
            {
                DirectorySync.Flush(dir);
            }
        }
    }

    // Step 3: upload ready files in order, retrying with backoff while the target is away.
    private async Task UploadLoopAsync(CancellationToken stopping)
    {
        var retry = _options.RetryOnFailure;
        var delay = retry.InitialInterval;
        var failing = false;
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                var ready = ReadyFiles();
                if (ready.Count == 0)
                {
                    if (_writerDone && !_waiting.Values.Any(w => w.IsJournal) && _converter.IsCompleted)
                    {
                        return;
                    }

                    await _fileReady.WaitAsync(TimeSpan.FromSeconds(5), stopping).ConfigureAwait(false);
                    continue;
                }

                foreach (var path in ready)
                {
                    var relative = Path.GetRelativePath(_readyDir, path).Replace(Path.DirectorySeparatorChar, '/');
                    var key = ObjectKeys.Full(_prefix, relative);
                    var waiting = _waiting.TryGetValue(path, out var w) ? w : new Waiting(DateTimeOffset.UtcNow, new FileInfo(path).Length, 0, false);
                    while (true)
                    {
                        var timer = Stopwatch.StartNew();
                        try
                        {
                            await _target.PutAsync(key, path, stopping).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (ex is not OperationCanceledException || !stopping.IsCancellationRequested)
                        {
                            GatewayMetrics.ExporterSendDuration.WithLabels(_id, "failed").Observe(timer.Elapsed.TotalSeconds);
                            GatewayMetrics.ColdUploadFailures.WithLabels(_id).Inc();
                            GatewayMetrics.ExporterFailedSends.WithLabels(_id).Inc();
                            Interlocked.Add(ref _failed, waiting.Points);
                            var detail = $"upload of {key} to {_target.Description} failed: {Describe(ex)}";
                            Failed(detail);
                            if (!failing)
                            {
                                LogUploadFailing(_logger, _id, detail);
                                failing = true;
                            }

                            var wait = TimeSpan.FromMilliseconds(delay.TotalMilliseconds * (0.8 + Random.Shared.NextDouble() * 0.4));
                            await Task.Delay(wait, stopping).ConfigureAwait(false);
                            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * retry.Multiplier, retry.MaxInterval.TotalMilliseconds));
                            continue;
                        }

                        GatewayMetrics.ExporterSendDuration.WithLabels(_id, "sent").Observe(timer.Elapsed.TotalSeconds);
                        break;
                    }

                    if (failing)
                    {
                        LogUploadRecovered(_logger, _id, _target.Description);
                        failing = false;
                    }

                    delay = retry.InitialInterval;
                    File.Delete(path);
                    _waiting.TryRemove(path, out _);
                    Interlocked.Add(ref _stagedBytes, -waiting.Bytes);
                    Interlocked.Add(ref _sent, waiting.Points);
                    Interlocked.Increment(ref _filesUploaded);
                    GatewayMetrics.ExporterSentPoints.WithLabels(_id).Inc(waiting.Points);
                    GatewayMetrics.ColdFilesUploaded.WithLabels(_id).Inc();
                    GatewayMetrics.ColdUploadedBytes.WithLabels(_id).Inc(waiting.Bytes);
                    PublishStaging();
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    private List<string> ReadyFiles()
    {
        var list = new List<(long Seq, string Path)>();
        foreach (var (path, w) in _waiting)
        {
            if (!w.IsJournal)
            {
                list.Add((ObjectKeys.SequenceOf(Path.GetFileName(path)), path));
            }
        }

        list.Sort(static (a, b) => a.Seq != b.Seq ? a.Seq.CompareTo(b.Seq) : string.CompareOrdinal(a.Path, b.Path));
        var paths = new List<string>(list.Count);
        foreach (var (_, path) in list)
        {
            paths.Add(path);
        }

        return paths;
    }

    private static string Describe(Exception ex)
    {
        var message = ex is Amazon.S3.AmazonS3Exception s3 ? $"{(int)s3.StatusCode} {s3.ErrorCode}: {s3.Message}" : ex.Message;
        if (ex.InnerException is { } inner && !message.Contains(inner.Message, StringComparison.Ordinal))
        {
            message += " (" + inner.Message + ")";
        }

        return message.Length > 300 ? message[..300] + "…" : message;
    }

    private void Failed(string detail)
    {
        _lastError = detail;
        _lastErrorTime = DateTimeOffset.UtcNow;
    }

    private void PublishStaging()
    {
        GatewayMetrics.ColdStagingBytes.WithLabels(_id).Set(Interlocked.Read(ref _stagedBytes));
        GatewayMetrics.ColdStagingFiles.WithLabels(_id).Set(FilesWaiting);
    }

    public void Dispose()
    {
        _journal?.Dispose();
        _lock?.Dispose();
        _target.Dispose();
        _stopping.Dispose();
        _stopUploads.Dispose();
        _journalClosed.Dispose();
        _fileReady.Dispose();
    }

    private sealed class Append(byte[] payload, int points)
    {
        public byte[] Payload { get; } = payload;

        public int Points { get; } = points;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed record Waiting(DateTimeOffset Since, long Bytes, long Points, bool IsJournal);
}

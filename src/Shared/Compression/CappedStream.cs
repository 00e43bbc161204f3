namespace PgOtelGateway.Shared.Compression;

/// <summary>
/// Reads a decompressing stream and fails as soon as more than <c>limit</c> bytes come out, so a small
/// compressed body cannot inflate into unbounded memory (a "zip bomb"). The limit applies to what was
/// decompressed, which is what a request size limit must mean.
/// </summary>
public sealed class CappedStream : Stream
{
    private readonly Stream _inner;
    private readonly long _limit;
    private readonly Func<long, Exception> _tooLarge;
    private readonly long _sizeHint;
    private readonly Action<long>? _copied;
    private long _read;

    /// <summary>
    /// Wraps <paramref name="inner"/>; <paramref name="tooLarge"/> makes the exception thrown past the limit.
    /// <paramref name="sizeHint"/>, when known, is the expected decompressed size, used to size an empty
    /// <see cref="MemoryStream"/> once in <see cref="CopyTo(Stream, int)"/>; <paramref name="copied"/> is told how
    /// many bytes that copy produced, so the next hint can be better.
    /// </summary>
    public CappedStream(Stream inner, long limit, Func<long, Exception> tooLarge, long sizeHint = 0, Action<long>? copied = null)
    {
        _inner = inner;
        _limit = limit;
        _tooLarge = tooLarge;
        _sizeHint = sizeHint;
        _copied = copied;
    }

    /// <summary>Bytes read so far.</summary>
    public long BytesRead => _read;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = _inner.Read(buffer);
        return Count(n);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Count(n);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>
    /// Copies everything out. An empty <see cref="MemoryStream"/> destination (what grpc-dotnet decompresses
    /// into) is first sized to the hint, capped at the limit: doubling its way up from 256 bytes, a 1 MB message
    /// goes through twelve arrays, the last five of them garbage on the large-object heap.
    /// </summary>
    public override void CopyTo(Stream destination, int bufferSize)
    {
        if (_sizeHint > 0 && destination is MemoryStream { Length: 0 } memory && memory.Capacity < _sizeHint)
        {
            memory.Capacity = (int)Math.Min(Math.Min(_sizeHint, _limit), Array.MaxLength);
        }

        base.CopyTo(destination, bufferSize);
        _copied?.Invoke(_read);
    }

    private int Count(int n)
    {
        _read += n;
        if (_read > _limit)
        {
            throw _tooLarge(_limit);
        }

        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

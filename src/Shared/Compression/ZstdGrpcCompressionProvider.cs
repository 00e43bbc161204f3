using System.IO.Compression;
using Grpc.Net.Compression;
using ZstdSharp;

namespace PgOtelGateway.Shared.Compression;

/// <summary>The <c>zstd</c> gRPC message encoding (grpc-encoding: zstd), for clients and servers alike.</summary>
public sealed class ZstdGrpcCompressionProvider : ICompressionProvider
{
    /// <summary>zstd's own default level, its balance of speed and size; what this encoding uses unless told otherwise.</summary>
    public const int DefaultLevel = 3;

    private readonly int _level;

    /// <summary>Creates the provider at <paramref name="level"/>.</summary>
    public ZstdGrpcCompressionProvider(int level = DefaultLevel) => _level = level;

    /// <inheritdoc />
    public string EncodingName => "zstd";

    /// <inheritdoc />
    public Stream CreateCompressionStream(Stream stream, CompressionLevel? compressionLevel) =>
        new CompressionStream(stream, _level, leaveOpen: true);

    /// <inheritdoc />
    public Stream CreateDecompressionStream(Stream stream) => new DecompressionStream(stream, leaveOpen: true);
}

/// <summary>Wraps another provider so decompression stops past a size limit (the limit that matters is after decompression).</summary>
public sealed class CappedDecompressionProvider : ICompressionProvider
{
    /// <summary>
    /// The decompressed-to-compressed ratio assumed when sizing the output up front, until messages have been
    /// seen. OTLP metric batches compress about 5 to 20 times; a larger message still grows the buffer as usual.
    /// </summary>
    public const int ExpectedRatio = 8;

    // Headroom over the recent ratio: a buffer a little too large costs its zeroing; one too small is copied
    // into one twice its size.
    private const double Headroom = 1.15;

    // The recent decompressed-to-compressed ratio (a moving average of what the last messages did; 0 before the
    // first). Clients send similar batches, so it predicts the next message well.
    private double _ratio;

    private readonly ICompressionProvider _inner;
    private readonly long _limit;
    private readonly Func<long, Exception> _tooLarge;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    public CappedDecompressionProvider(ICompressionProvider inner, long limit, Func<long, Exception> tooLarge)
    {
        _inner = inner;
        _limit = limit;
        _tooLarge = tooLarge;
    }

    /// <inheritdoc />
    public string EncodingName => _inner.EncodingName;

    /// <inheritdoc />
    public Stream CreateCompressionStream(Stream stream, CompressionLevel? compressionLevel) => _inner.CreateCompressionStream(stream, compressionLevel);

    /// <inheritdoc />
    public Stream CreateDecompressionStream(Stream stream)
    {
        // grpc-dotnet hands over the whole message as a seekable stream, so its length is known here.
        if (!stream.CanSeek || stream.Length == 0)
        {
            return new CappedStream(_inner.CreateDecompressionStream(stream), _limit, _tooLarge);
        }

        var compressed = stream.Length;
        var ratio = Volatile.Read(ref _ratio);
        var hint = (long)(compressed * (ratio > 0 ? ratio * Headroom : ExpectedRatio));
        return new CappedStream(_inner.CreateDecompressionStream(stream), _limit, _tooLarge, hint, decompressed =>
        {
            var seen = (double)decompressed / compressed;
            var before = Volatile.Read(ref _ratio);
            Volatile.Write(ref _ratio, before > 0 ? (0.75 * before) + (0.25 * seen) : seen);
        });
    }
}

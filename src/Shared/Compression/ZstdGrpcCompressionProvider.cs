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
    /// The decompressed-to-compressed ratio assumed when sizing the output up front. OTLP metric batches
    /// compress about 5 to 10 times; a larger message still grows the buffer as usual.
    /// </summary>
    public const int ExpectedRatio = 8;

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
        var hint = stream.CanSeek ? stream.Length * ExpectedRatio : 0;
        return new CappedStream(_inner.CreateDecompressionStream(stream), _limit, _tooLarge, hint);
    }
}

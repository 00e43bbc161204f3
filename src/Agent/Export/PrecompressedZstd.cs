using System.IO.Compression;
using Grpc.Net.Compression;
using PgOtelGateway.Shared.Compression;
using ZstdSharp;

namespace PgOtelGateway.Agent.Export;

/// <summary>
/// zstd for the agent's own requests, done in the request marshaller instead of by grpc-dotnet. With a compression
/// provider, grpc-dotnet first copies the serialized message into a new, zeroed array of its full size (12 MB for a
/// 20 × 500-table scrape, fresh large-object-heap pages each time) and only then compresses it. Here the encoder's
/// buffer is compressed straight into a kept output buffer, and grpc-dotnet only sees the compressed message
/// (~10 times smaller), which <see cref="PrecompressedZstdProvider"/> passes through unchanged with the
/// <c>zstd</c> message flag and encoding set as before.
/// </summary>
internal static class PrecompressedZstd
{
    // One compression context kept between scrapes (its working memory is allocated on first use); a concurrent
    // call simply makes its own.
    private static Compressor? s_idle;

    /// <summary>The output buffer, kept between requests like the encoder's (see <see cref="SpareBuffer"/>).</summary>
    internal static readonly SpareBuffer Buffers = new();

    /// <summary>Compresses <paramref name="data"/> into one zstd frame in the kept output buffer; dispose to give it back.</summary>
    public static CompressedMessage Compress(ReadOnlySpan<byte> data)
    {
        var compressor = Interlocked.Exchange(ref s_idle, null) ?? new Compressor(ZstdGrpcCompressionProvider.DefaultLevel);
        var buffer = Buffers.Rent(Compressor.GetCompressBound(data.Length));
        try
        {
            var length = compressor.Wrap(data, buffer);
            return new CompressedMessage(buffer, length);
        }
        catch
        {
            Buffers.Return(buffer);
            throw;
        }
        finally
        {
            if (Interlocked.CompareExchange(ref s_idle, compressor, null) is not null)
            {
                compressor.Dispose();
            }
        }
    }
}

/// <summary>A compressed message in <see cref="PrecompressedZstd"/>'s output buffer.</summary>
internal sealed class CompressedMessage : IDisposable
{
    private byte[]? _buffer;

    internal CompressedMessage(byte[] buffer, int length)
    {
        _buffer = buffer;
        Length = length;
    }

    public int Length { get; }

    public ReadOnlySpan<byte> Span => (_buffer ?? throw new ObjectDisposedException(nameof(CompressedMessage))).AsSpan(0, Length);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            PrecompressedZstd.Buffers.Return(buffer);
        }
    }
}

/// <summary>
/// The <c>zstd</c> encoding for a channel whose request marshaller compresses by itself
/// (<see cref="PrecompressedZstd"/>): requests pass through as written; responses are decompressed as usual.
/// </summary>
internal sealed class PrecompressedZstdProvider : ICompressionProvider
{
    private readonly ZstdGrpcCompressionProvider _zstd = new();

    public string EncodingName => "zstd";

    public Stream CreateCompressionStream(Stream stream, CompressionLevel? compressionLevel) => new PassThroughStream(stream);

    public Stream CreateDecompressionStream(Stream stream) => _zstd.CreateDecompressionStream(stream);

    /// <summary>Writes to the inner stream unchanged; leaves it open.</summary>
    private sealed class PassThroughStream(Stream inner) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            // grpc-dotnet collects the message in a MemoryStream: size it once instead of doubling up to it.
            if (inner is MemoryStream memory && memory.Capacity < memory.Length + buffer.Length)
            {
                memory.Capacity = (int)memory.Length + buffer.Length;
            }

            inner.Write(buffer);
        }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

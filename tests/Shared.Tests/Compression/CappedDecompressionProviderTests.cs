using System.IO.Compression;
using Grpc.Net.Compression;
using PgOtelGateway.Shared.Compression;
using Xunit;

namespace PgOtelGateway.Shared.Tests.Compression;

public sealed class CappedDecompressionProviderTests
{
    private const long Limit = 4 << 20;

    public static TheoryData<string> Encodings => ["zstd", "gzip"];

    [Theory]
    [MemberData(nameof(Encodings))]
    public void CopyTo_EmptyMemoryStream_IsSizedOnceFromTheCompressedLength_AndGetsTheWholeMessage(string encoding)
    {
        // Half random, half repeated: compresses well under 8 to 1, so the first size is enough.
        var message = new byte[200_000];
        new Random(7).NextBytes(message.AsSpan(0, 100_000));
        var compressed = Compress(encoding, message);
        var provider = Capped(encoding);

        var output = new MemoryStream();
        using (var stream = provider.CreateDecompressionStream(new MemoryStream(compressed)))
        {
            stream.CopyTo(output);
        }

        Assert.Equal(message, output.ToArray());
        Assert.Equal(compressed.Length * CappedDecompressionProvider.ExpectedRatio, output.Capacity);
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void CopyTo_AfterSimilarMessages_SizesTheOutputToTheirRatio_NotTheAssumedOne(string encoding)
    {
        // Mostly repeated bytes: these compress far better than 8 to 1, so the assumed ratio is too small and the
        // output doubles its way up; after a few such messages it is sized once, close to the real size.
        var message = new byte[300_000];
        new Random(11).NextBytes(message.AsSpan(0, 3_000));
        var compressed = Compress(encoding, message);
        var provider = Capped(encoding);

        var capacities = new List<int>();
        for (var i = 0; i < 6; i++)
        {
            var output = new MemoryStream();
            using (var stream = provider.CreateDecompressionStream(new MemoryStream(compressed)))
            {
                stream.CopyTo(output);
            }

            Assert.Equal(message, output.ToArray());
            capacities.Add(output.Capacity);
        }

        Assert.True(message.Length > compressed.Length * CappedDecompressionProvider.ExpectedRatio, $"ratio {message.Length / compressed.Length}");
        Assert.InRange(capacities[^1], message.Length, message.Length * 1.2);
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void CopyTo_MessageInflatingPastTheLimit_FailsAndTheFirstSizeStaysWithinTheLimit(string encoding)
    {
        var compressed = Compress(encoding, new byte[64 << 20]);
        var provider = Capped(encoding);

        var output = new MemoryStream();
        using var stream = provider.CreateDecompressionStream(new MemoryStream(compressed));
        var error = Assert.Throws<InvalidDataException>(() => stream.CopyTo(output));

        Assert.Contains("4194304", error.Message, StringComparison.Ordinal);
        Assert.True(output.Length <= Limit, $"{output.Length} bytes came out");
        Assert.True(output.Capacity <= 2 * Limit, $"capacity {output.Capacity}");
    }

    private static CappedDecompressionProvider Capped(string encoding) => new(
        encoding == "zstd" ? new ZstdGrpcCompressionProvider() : new GzipCompressionProvider(CompressionLevel.Fastest),
        Limit,
        limit => new InvalidDataException($"decompressed past {limit} bytes"));

    private static byte[] Compress(string encoding, byte[] message)
    {
        var provider = encoding == "zstd" ? (ICompressionProvider)new ZstdGrpcCompressionProvider() : new GzipCompressionProvider(CompressionLevel.Fastest);
        var output = new MemoryStream();
        using (var stream = provider.CreateCompressionStream(output, CompressionLevel.Fastest))
        {
            stream.Write(message);
        }

        return output.ToArray();
    }
}

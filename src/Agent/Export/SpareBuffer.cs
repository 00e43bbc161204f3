using System.Numerics;

namespace PgOtelGateway.Agent.Export;

/// <summary>
/// One large byte array kept from one request to the next. <c>ArrayPool&lt;byte&gt;.Shared</c> keeps a returned
/// array first in the returning thread's own slot, and the next scrape is serialized on whichever pool thread is
/// free: the rent then found nothing and allocated a fresh array of 16 MB (a 20 × 500-table scrape), whose pages the
/// kernel had to fault in and clear again at every scrape, while older copies waited in other threads' slots.
/// </summary>
internal sealed class SpareBuffer
{
    private byte[]? _spare;

    /// <summary>An array of at least <paramref name="minimumLength"/> bytes (contents undefined).</summary>
    public byte[] Rent(int minimumLength)
    {
        if (Interlocked.Exchange(ref _spare, null) is { } spare && spare.Length >= minimumLength)
        {
            return spare;
        }

        // Powers of two, as the shared pool sized them: a request a little larger than the last one still fits.
        return GC.AllocateUninitializedArray<byte>((int)Math.Min(BitOperations.RoundUpToPowerOf2((uint)minimumLength), (uint)Array.MaxLength));
    }

    /// <summary>Keeps <paramref name="buffer"/> for the next <see cref="Rent"/> (one is kept; a second is left to the GC).</summary>
    public void Return(byte[] buffer)
    {
        var spare = Volatile.Read(ref _spare);
        if (spare is null || spare.Length < buffer.Length)
        {
            Interlocked.CompareExchange(ref _spare, buffer, spare);
        }
    }
}

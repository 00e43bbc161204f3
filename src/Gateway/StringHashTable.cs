using System.Runtime.CompilerServices;

namespace PgOtelGateway.Gateway;

/// <summary>One slot of a <see cref="StringHashTable"/>: a string and its hash.</summary>
internal struct StringHashSlot<T>
{
    public string? Text;
    public T Hash;
}

/// <summary>
/// Per-thread tables that remember the hash of recently hashed strings by the string object itself. Decoded
/// requests reuse the same attribute key and value strings from request to request (the OTLP reader caches them),
/// so per-point hashing of attributes (dedupe identities, the admin API's series counts) mostly finds the answer
/// here. Strings cannot change, so a slot is never stale; a miss overwrites the slot in place, so nothing is
/// allocated once a thread has its table, and a table is only ever used by its own thread.
/// </summary>
internal static class StringHashTable
{
    private const int Size = 4096;

    /// <summary>The hash of <paramref name="text"/>, from <paramref name="table"/> (a [ThreadStatic] field) or computed.</summary>
    public static T Of<T>(ref StringHashSlot<T>[]? table, string text, Func<string, T> hash)
    {
        table ??= new StringHashSlot<T>[Size];
        ref var slot = ref table[RuntimeHelpers.GetHashCode(text) & (Size - 1)];
        if (!ReferenceEquals(slot.Text, text))
        {
            slot.Hash = hash(text);
            slot.Text = text;
        }

        return slot.Hash;
    }
}

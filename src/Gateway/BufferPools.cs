using System.Buffers;

namespace PgOtelGateway.Gateway;

/// <summary>
/// The pool of the hot path's request-sized byte buffers: durable-queue records, encoded remote-write series,
/// framed and compressed remote-write bodies. <see cref="ArrayPool{T}.Shared"/> keeps up to eight arrays per size
/// per core plus one per thread, and gives them back only under memory pressure, so after a burst at the
/// megabyte sizes used here tens of MiB stay on the large-object heap for good. This pool keeps at most four
/// arrays per size; past that, buffers are left to the GC.
/// </summary>
internal static class BufferPools
{
    /// <summary>Byte buffers up to 64 MiB (the largest request) are pooled; larger ones are allocated and dropped.</summary>
    public static readonly ArrayPool<byte> Bytes = ArrayPool<byte>.Create(64 << 20, 4);
}

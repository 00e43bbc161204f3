using System.Numerics;

namespace PgOtelGateway.Gateway.Admin;

/// <summary>
/// A HyperLogLog distinct counter of 64-bit series hashes over a sliding window: two sketches of 2^11 one-byte
/// registers (4 KiB together) take turns, so the estimate covers between one and two windows of recent series
/// and a series that stopped is forgotten. Standard error ≈ 2.3 %; exact-ish (linear counting) for small counts.
/// Not thread-safe: the owner locks.
/// </summary>
internal sealed class SeriesSketch
{
    private const int Precision = 11;
    private const int RegisterCount = 1 << Precision;

    // alpha_m for m >= 128 (Flajolet et al.).
    private const double Alpha = 0.7213 / (1 + (1.079 / RegisterCount));

    private readonly long _windowTicks;
    private byte[] _current = new byte[RegisterCount];
    private byte[] _previous = new byte[RegisterCount];
    private long _windowStart;

    /// <summary>Creates a sketch whose windows are <paramref name="window"/> long, starting at <paramref name="nowTicks"/>.</summary>
    public SeriesSketch(TimeSpan window, long nowTicks)
    {
        _windowTicks = Math.Max(1, window.Ticks);
        _windowStart = nowTicks;
    }

    /// <summary>Counts one series hash in the current window.</summary>
    public void Add(ulong hash)
    {
        var index = (int)(hash >> (64 - Precision));

        // The sentinel bit bounds the rank when the remaining bits are all zero.
        var rest = (hash << Precision) | (1UL << (Precision - 1));
        var rank = (byte)(BitOperations.LeadingZeroCount(rest) + 1);
        if (_current[index] < rank)
        {
            _current[index] = rank;
        }
    }

    /// <summary>Moves the window forward to <paramref name="nowTicks"/>; call before <see cref="Add"/> or <see cref="Estimate"/>.</summary>
    public void Advance(long nowTicks)
    {
        var elapsed = nowTicks - _windowStart;
        if (elapsed < _windowTicks)
        {
            return;
        }

        if (elapsed >= 2 * _windowTicks)
        {
            Array.Clear(_current);
            Array.Clear(_previous);
            _windowStart = nowTicks;
            return;
        }

        (_previous, _current) = (_current, _previous);
        Array.Clear(_current);
        _windowStart += _windowTicks;
    }

    /// <summary>Distinct series seen in the current and the previous window.</summary>
    public long Estimate()
    {
        double sum = 0;
        var zeros = 0;
        for (var i = 0; i < RegisterCount; i++)
        {
            var rank = Math.Max(_current[i], _previous[i]);
            if (rank == 0)
            {
                zeros++;
            }

            sum += Math.ScaleB(1.0, -rank);
        }

        var estimate = Alpha * RegisterCount * RegisterCount / sum;
        if (estimate <= 2.5 * RegisterCount && zeros > 0)
        {
            // Linear counting: far more accurate while most registers are still empty.
            estimate = RegisterCount * Math.Log((double)RegisterCount / zeros);
        }

        return (long)Math.Round(estimate);
    }
}

using System.Globalization;

namespace PgOtelGateway.Shared.Configuration;

/// <summary>A size in bytes, written in configuration as <c>512MiB</c>, <c>64MB</c>, <c>1GiB</c> or a plain byte count.</summary>
public readonly record struct ByteSize(long Bytes) : IComparable<ByteSize>
{
    /// <summary>Makes a size from mebibytes.</summary>
    public static ByteSize FromMiB(long mib) => new(mib * 1024 * 1024);

    /// <summary>Makes a size from kibibytes.</summary>
    public static ByteSize FromKiB(long kib) => new(kib * 1024);

    /// <summary>Parses <c>123</c>, <c>10KB</c>, <c>10KiB</c>, <c>1.5GiB</c> (case-insensitive; B optional).</summary>
    public static bool TryParse(string text, out ByteSize size)
    {
        size = default;
        var s = text.Trim();
        var i = 0;
        while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
        {
            i++;
        }

        if (i == 0 || !double.TryParse(s.AsSpan(0, i), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
        {
            return false;
        }

        var unit = s[i..].Trim().ToUpperInvariant();
        double factor = unit switch
        {
            "" or "B" => 1,
            "K" or "KB" => 1e3,
            "KI" or "KIB" => 1024,
            "M" or "MB" => 1e6,
            "MI" or "MIB" => 1024 * 1024,
            "G" or "GB" => 1e9,
            "GI" or "GIB" => 1024d * 1024 * 1024,
            "T" or "TB" => 1e12,
            "TI" or "TIB" => 1024d * 1024 * 1024 * 1024,
            _ => -1,
        };
        if (factor < 0)
        {
            return false;
        }

        size = new ByteSize((long)Math.Round(number * factor));
        return true;
    }

    /// <inheritdoc />
    public int CompareTo(ByteSize other) => Bytes.CompareTo(other.Bytes);

    /// <summary>Whether one size is smaller than another.</summary>
    public static bool operator <(ByteSize left, ByteSize right) => left.Bytes < right.Bytes;

    /// <summary>Whether one size is larger than another.</summary>
    public static bool operator >(ByteSize left, ByteSize right) => left.Bytes > right.Bytes;

    /// <summary>Whether one size is smaller than or equal to another.</summary>
    public static bool operator <=(ByteSize left, ByteSize right) => left.Bytes <= right.Bytes;

    /// <summary>Whether one size is larger than or equal to another.</summary>
    public static bool operator >=(ByteSize left, ByteSize right) => left.Bytes >= right.Bytes;

    /// <summary>The size in the largest binary unit that divides it exactly, e.g. <c>64MiB</c>.</summary>
    public override string ToString()
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        var value = Bytes;
        var u = 0;
        while (u < units.Length - 1 && value != 0 && value % 1024 == 0)
        {
            value /= 1024;
            u++;
        }

        return value.ToString(CultureInfo.InvariantCulture) + units[u];
    }
}

using System.Globalization;
using System.Text;

namespace PgOtelGateway.Gateway.Export.S3;

/// <summary>
/// Object keys of the cold tier: <c>{prefix}/year=YYYY/month=MM/day=DD/hour=HH/minute=mm/{gateway-id}-{first-ts}-{seq}.{ext}</c>
/// (no <c>minute=</c> level with hourly partitions). <c>first-ts</c> is the earliest point of the file in Unix
/// milliseconds and <c>seq</c> the staging sequence number, so a key is fixed when the file is made and a retried
/// upload overwrites the same object.
/// </summary>
internal static class ObjectKeys
{
    /// <summary>The key below the prefix (also the file's path below the staging <c>ready/</c> folder).</summary>
    public static string Relative(S3Partition partition, long firstUnixNano, string gatewayId, long sequence, string extension)
    {
        var first = DateTime.UnixEpoch.AddTicks(firstUnixNano / 100);
        var sb = new StringBuilder(96);
        sb.Append(CultureInfo.InvariantCulture, $"year={first.Year:D4}/month={first.Month:D2}/day={first.Day:D2}/hour={first.Hour:D2}/");
        if (partition == S3Partition.Minute)
        {
            sb.Append(CultureInfo.InvariantCulture, $"minute={first.Minute:D2}/");
        }

        sb.Append(CultureInfo.InvariantCulture, $"{SafeId(gatewayId)}-{firstUnixNano / 1_000_000}-{sequence:D8}{extension}");
        return sb.ToString();
    }

    /// <summary>The full object key: the prefix (trimmed of slashes) and the relative key.</summary>
    public static string Full(string prefix, string relative)
    {
        var p = prefix.Trim('/');
        return p.Length == 0 ? relative : p + "/" + relative;
    }

    /// <summary>The partition bucket of a time: minutes or hours since the epoch, as nanoseconds per bucket.</summary>
    public static long BucketNanos(S3Partition partition) => partition == S3Partition.Minute ? 60_000_000_000L : 3_600_000_000_000L;

    /// <summary>The file name extension of a marshaler and compression.</summary>
    public static string Extension(ColdMarshaler marshaler, ColdCompression compression) => marshaler switch
    {
        ColdMarshaler.Parquet => ".parquet",
        _ => compression switch
        {
            ColdCompression.Zstd => ".binpb.zst",
            ColdCompression.Gzip => ".binpb.gz",
            _ => ".binpb",
        },
    };

    /// <summary>The sequence number in a file name made by <see cref="Relative"/>, or -1.</summary>
    public static long SequenceOf(string fileName)
    {
        var dot = fileName.IndexOf('.', StringComparison.Ordinal);
        var stem = dot < 0 ? fileName : fileName[..dot];
        var dash = stem.LastIndexOf('-');
        return dash >= 0 && long.TryParse(stem.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var seq) ? seq : -1;
    }

    /// <summary>The gateway id as it may appear in a key: letters, digits, '_' and '-' ('.' would break the extension).</summary>
    public static string SafeId(string id)
    {
        var chars = id.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!char.IsAsciiLetterOrDigit(chars[i]) && chars[i] != '-' && chars[i] != '_')
            {
                chars[i] = '_';
            }
        }

        return chars.Length == 0 ? "gateway" : new string(chars);
    }
}

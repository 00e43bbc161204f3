using System.Text;

namespace PgOtelGateway.Gateway.Admin;

/// <summary>Aligned plain-text columns for the admin CLI: a header row, two spaces between columns, no trailing spaces.</summary>
internal sealed class TextTable
{
    private readonly string[] _headers;
    private readonly bool[] _rightAligned;
    private readonly List<string[]> _rows = [];

    /// <summary>Creates a table; a header ending in <c>&gt;</c> is right-aligned (the marker is not printed).</summary>
    public TextTable(params string[] headers)
    {
        _headers = new string[headers.Length];
        _rightAligned = new bool[headers.Length];
        for (var i = 0; i < headers.Length; i++)
        {
            _rightAligned[i] = headers[i].EndsWith('>');
            _headers[i] = _rightAligned[i] ? headers[i][..^1] : headers[i];
        }
    }

    /// <summary>Adds a row; empty or missing cells print as '-', control characters (from client-supplied names) as '?'.</summary>
    public TextTable Add(params string?[] cells)
    {
        var row = new string[_headers.Length];
        for (var i = 0; i < row.Length; i++)
        {
            row[i] = Clean(i < cells.Length ? cells[i] : null);
        }

        _rows.Add(row);
        return this;
    }

    /// <summary>Writes the table.</summary>
    public void WriteTo(TextWriter writer)
    {
        var widths = new int[_headers.Length];
        for (var i = 0; i < widths.Length; i++)
        {
            widths[i] = _headers[i].Length;
            foreach (var row in _rows)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }

        WriteRow(writer, _headers, widths);
        foreach (var row in _rows)
        {
            WriteRow(writer, row, widths);
        }
    }

    private void WriteRow(TextWriter writer, string[] cells, int[] widths)
    {
        var line = new StringBuilder();
        for (var i = 0; i < cells.Length; i++)
        {
            if (i > 0)
            {
                line.Append("  ");
            }

            var pad = widths[i] - cells[i].Length;
            if (_rightAligned[i])
            {
                line.Append(' ', pad).Append(cells[i]);
            }
            else
            {
                line.Append(cells[i]);
                if (i < cells.Length - 1)
                {
                    line.Append(' ', pad);
                }
            }
        }

        writer.WriteLine(line.ToString().TrimEnd());
    }

    private static string Clean(string? cell)
    {
        if (string.IsNullOrEmpty(cell))
        {
            return "-";
        }

        // Names come from clients; a terminal escape sequence in one must not reach the operator's terminal.
        var chars = cell.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsControl(chars[i]))
            {
                chars[i] = '?';
            }
        }

        return new string(chars);
    }
}

namespace PgOtelGateway.Shared.Cli;

/// <summary>
/// The command line both binaries share: <c>[command] [--config FILE] [other options]</c>. The command
/// defaults to <c>run</c>; options other than <c>--config</c> are left for the command to read.
/// </summary>
public sealed class CommandLine
{
    private CommandLine(string command, string? configPath, IReadOnlyList<string> rest)
    {
        Command = command;
        ConfigPath = configPath;
        Rest = rest;
    }

    /// <summary>The command: <c>run</c>, <c>validate</c>, or one the binary adds.</summary>
    public string Command { get; }

    /// <summary>The value of <c>--config</c>, or null for the embedded defaults.</summary>
    public string? ConfigPath { get; }

    /// <summary>Everything else, in order.</summary>
    public IReadOnlyList<string> Rest { get; }

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> with a usage message on a malformed line.</summary>
    public static CommandLine Parse(IReadOnlyList<string> args)
    {
        string? command = null;
        string? config = null;
        var rest = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--config" || arg == "-c")
            {
                if (i + 1 >= args.Count)
                {
                    throw new ArgumentException("--config needs a file path");
                }

                config = args[++i];
            }
            else if (arg.StartsWith("--config=", StringComparison.Ordinal))
            {
                config = arg["--config=".Length..];
            }
            else if (command is null && !arg.StartsWith('-'))
            {
                command = arg;
            }
            else
            {
                rest.Add(arg);
            }
        }

        return new CommandLine(command ?? "run", config, rest);
    }

    /// <summary>The value that follows <paramref name="option"/> in <see cref="Rest"/> (<c>--url U</c> or <c>--url=U</c>).</summary>
    public string? Option(string option)
    {
        for (var i = 0; i < Rest.Count; i++)
        {
            if (Rest[i] == option && i + 1 < Rest.Count)
            {
                return Rest[i + 1];
            }

            if (Rest[i].StartsWith(option + "=", StringComparison.Ordinal))
            {
                return Rest[i][(option.Length + 1)..];
            }
        }

        return null;
    }

    /// <summary>Whether a bare flag such as <c>--verbose</c> is present.</summary>
    public bool Flag(string flag) => Rest.Contains(flag);
}

namespace PgOtelGateway.Shared.Configuration;

/// <summary>One problem in a configuration file, with the dotted key path and the line it stands on.</summary>
public sealed record ConfigError(string Path, int Line, string Message)
{
    /// <inheritdoc />
    public override string ToString() =>
        Line > 0 ? $"line {Line}: {Path}: {Message}" : $"{Path}: {Message}";
}

/// <summary>Thrown when a configuration cannot be loaded; carries every error found, not only the first.</summary>
public sealed class ConfigException : Exception
{
    /// <summary>Creates the exception from the errors found.</summary>
    public ConfigException(IReadOnlyList<ConfigError> errors)
        : base(FormatMessage(errors))
    {
        Errors = errors;
    }

    /// <summary>Creates the exception for a single error.</summary>
    public ConfigException(string message)
        : this([new ConfigError("", 0, message)])
    {
    }

    /// <summary>Creates an exception with a message and an inner cause.</summary>
    public ConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [new ConfigError("", 0, message)];
    }

    /// <summary>Creates an exception with no detail.</summary>
    public ConfigException()
        : this("invalid configuration")
    {
    }

    /// <summary>Every error found, in file order.</summary>
    public IReadOnlyList<ConfigError> Errors { get; }

    private static string FormatMessage(IReadOnlyList<ConfigError> errors) =>
        errors.Count == 1
            ? "invalid configuration: " + errors[0]
            : $"invalid configuration ({errors.Count} errors):{Environment.NewLine}  " +
              string.Join(Environment.NewLine + "  ", errors);
}

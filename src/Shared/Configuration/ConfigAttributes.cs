namespace PgOtelGateway.Shared.Configuration;

/// <summary>Names the YAML key of an option when it is not the snake_case form of the property name.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field, AllowMultiple = false)]
public sealed class ConfigKeyAttribute(string key) : Attribute
{
    /// <summary>The YAML key.</summary>
    public string Key { get; } = key;
}

/// <summary>Marks an option that must be given (a missing or empty value is an error naming the key).</summary>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false)]
public sealed class ConfigRequiredAttribute : Attribute;

/// <summary>
/// Marks a secret: it may be given inline or as <c>{key}_file</c> (the file's content, trailing newline
/// removed), and it is redacted wherever the configuration is shown. On a dictionary, every value is secret.
/// </summary>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false)]
public sealed class SecretAttribute : Attribute;

/// <summary>Options that check themselves after binding (cross-field rules, ranges).</summary>
public interface IValidatableOptions
{
    /// <summary>Returns one message per problem, each naming the key it is about; empty when valid.</summary>
    IEnumerable<string> Validate();
}

using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace PgOtelGateway.Gateway.Admin;

/// <summary>The admin token check: <c>Authorization: Bearer TOKEN</c>, compared in constant time.</summary>
internal sealed class BearerTokenCheck
{
    /// <summary>The challenge sent with a 401.</summary>
    public const string Challenge = "Bearer realm=\"pgotel-admin\"";

    // Comparing digests keeps the comparison constant-time in the token's length as well as its content.
    private readonly byte[]? _expectedDigest;

    /// <summary>Creates the check; an empty token lets every request through.</summary>
    public BearerTokenCheck(string token)
    {
        _expectedDigest = token.Length == 0 ? null : SHA256.HashData(Encoding.UTF8.GetBytes(token));
    }

    /// <summary>Whether a token is asked for at all.</summary>
    public bool Required => _expectedDigest is not null;

    /// <summary>What a request's credentials amount to.</summary>
    public TokenResult Check(HttpRequest request)
    {
        if (_expectedDigest is null)
        {
            return TokenResult.Accepted;
        }

        var headers = request.Headers.Authorization;
        if (headers.Count != 1 || headers[0] is not { } header)
        {
            return TokenResult.Missing;
        }

        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            return TokenResult.Missing;
        }

        var token = header.AsSpan(scheme.Length).Trim();
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        var bytes = Encoding.UTF8.GetByteCount(token) <= 1024 ? stackalloc byte[1024] : new byte[Encoding.UTF8.GetByteCount(token)];
        var length = Encoding.UTF8.GetBytes(token, bytes);
        SHA256.HashData(bytes[..length], digest);
        return CryptographicOperations.FixedTimeEquals(digest, _expectedDigest) ? TokenResult.Accepted : TokenResult.Wrong;
    }
}

/// <summary>The outcome of <see cref="BearerTokenCheck.Check"/>.</summary>
internal enum TokenResult
{
    /// <summary>No token needed, or the right one.</summary>
    Accepted,

    /// <summary>No bearer token.</summary>
    Missing,

    /// <summary>A bearer token, not the right one.</summary>
    Wrong,
}

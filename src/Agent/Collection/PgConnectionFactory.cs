using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Npgsql;

namespace PgOtelGateway.Agent.Collection;

/// <summary>
/// Connection settings for one instance: endpoint parsing, credentials, application_name, statement_timeout and
/// TLS. TLS verification is done here (not by Npgsql) so that <c>server_name</c> works and a failure says why.
/// </summary>
internal sealed class PgConnectionFactory
{
    private readonly PostgresqlReceiverOptions _options;
    private readonly string _host;
    private readonly int _port;
    private readonly string _defaultDatabase;
    private readonly X509Certificate2Collection? _roots;
    private readonly ConcurrentDictionary<string, NpgsqlDataSource> _sources = new(StringComparer.Ordinal);

    public PgConnectionFactory(string endpoint, PostgresqlReceiverOptions options)
    {
        _options = options;
        (_host, _port, _defaultDatabase) = ParseEndpoint(endpoint, options.Transport);
        if (options.Tls.CaFile.Length > 0)
        {
            _roots = [];
            _roots.ImportFromPemFile(options.Tls.CaFile);
        }
    }

    /// <summary><c>host:port</c> as it appears in <c>db.instance</c>.</summary>
    public string Instance => $"{_host}:{_port}";

    /// <summary>The database cluster-wide queries run in.</summary>
    public string DefaultDatabase => _defaultDatabase;

    /// <summary>Why the last TLS handshake was refused, for the error message.</summary>
    public string? LastTlsProblem { get; private set; }

    public NpgsqlDataSource DataSource(string database) => _sources.GetOrAdd(database, Create);

    private NpgsqlDataSource Create(string database)
    {
        var csb = new NpgsqlConnectionStringBuilder
        {
            Host = _host,
            Port = _port,
            Database = database,
            Username = _options.Username,
            Password = _options.Password.Length > 0 ? _options.Password : null,
            ApplicationName = _options.ApplicationName,
            // The broker keeps connections open between scrapes; Npgsql's own pool would hide how many exist.
            Pooling = false,
            Timeout = Math.Max(1, (int)Math.Ceiling(_options.Timeout.TotalSeconds)),
            CommandTimeout = Math.Max(1, (int)Math.Ceiling(_options.Timeout.TotalSeconds)) + 1,
            Options = $"-c statement_timeout={(int)_options.Timeout.TotalMilliseconds} -c lock_timeout=1000",
        };

        var tls = _options.Tls;
        var mode = tls.Insecure ? PgTlsMode.Disable : tls.InsecureSkipVerify ? PgTlsMode.Require : tls.Mode;
        csb.SslMode = mode switch
        {
            PgTlsMode.Disable => SslMode.Disable,
            PgTlsMode.Allow => SslMode.Allow,
            PgTlsMode.Prefer => SslMode.Prefer,
            _ => SslMode.Require,
        };
        if (tls.CertFile.Length > 0)
        {
            csb.SslCertificate = tls.CertFile;
            csb.SslKey = tls.KeyFile.Length > 0 ? tls.KeyFile : null;
        }

        var builder = new NpgsqlDataSourceBuilder(csb.ConnectionString);
        if (mode is PgTlsMode.VerifyCa or PgTlsMode.VerifyFull)
        {
            var expected = tls.ServerName.Length > 0 ? tls.ServerName : _host;
            builder.UseSslClientAuthenticationOptionsCallback(ssl =>
            {
                ssl.TargetHost = expected;
                ssl.RemoteCertificateValidationCallback = (_, cert, chain, errors) => Verify(cert, errors, mode == PgTlsMode.VerifyFull, expected);
            });
        }
        else
        {
            builder.UseSslClientAuthenticationOptionsCallback(ssl => ssl.RemoteCertificateValidationCallback = static (_, _, _, _) => true);
        }

        return builder.Build();
    }

    private bool Verify(X509Certificate? certificate, SslPolicyErrors errors, bool checkName, string expectedName)
    {
        if (certificate is null)
        {
            LastTlsProblem = "the server sent no certificate";
            return false;
        }

        if (checkName && (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            LastTlsProblem = $"the server certificate does not match the name '{expectedName}' (tls.server_name or the endpoint host)";
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (_roots is not null)
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(_roots);
        }

        if (!chain.Build(new X509Certificate2(certificate)))
        {
            LastTlsProblem = "the server certificate is not signed by a trusted CA (tls.ca_file): " +
                string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()));
            return false;
        }

        LastTlsProblem = null;
        return true;
    }

    internal static (string Host, int Port, string Database) ParseEndpoint(string endpoint, PgTransport transport)
    {
        if (endpoint.StartsWith("postgres://", StringComparison.Ordinal) || endpoint.StartsWith("postgresql://", StringComparison.Ordinal))
        {
            var uri = new Uri(endpoint);
            var db = uri.AbsolutePath.Trim('/');
            return (uri.Host, uri.Port > 0 ? uri.Port : 5432, db.Length > 0 ? db : "postgres");
        }

        if (transport == PgTransport.Unix)
        {
            // A socket directory, optionally with :port (the socket file is .s.PGSQL.<port>).
            var colonAt = endpoint.LastIndexOf(':');
            return colonAt > 0 && int.TryParse(endpoint.AsSpan(colonAt + 1), out var p) ? (endpoint[..colonAt], p, "postgres") : (endpoint, 5432, "postgres");
        }

        var colon = endpoint.LastIndexOf(':');
        if (colon > 0 && int.TryParse(endpoint.AsSpan(colon + 1), out var port))
        {
            return (endpoint[..colon].Trim('[', ']'), port, "postgres");
        }

        return (endpoint, 5432, "postgres");
    }
}

using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace PgOtelGateway.Shared.Security;

/// <summary>Client-side TLS from the usual config keys: a CA to trust, a client certificate, a server name.</summary>
public static class TlsClientSetup
{
    /// <summary>Fills <paramref name="ssl"/>; empty values leave the system defaults.</summary>
    public static void Apply(SslClientAuthenticationOptions ssl, string caFile, string certFile, string keyFile, string serverName, bool insecureSkipVerify)
    {
        if (serverName.Length > 0)
        {
            ssl.TargetHost = serverName;
        }

        if (certFile.Length > 0)
        {
            var cert = keyFile.Length > 0 ? X509Certificate2.CreateFromPemFile(certFile, keyFile) : X509CertificateLoader.LoadCertificateFromFile(certFile);
            ssl.ClientCertificates = [cert];
        }

        if (insecureSkipVerify)
        {
            ssl.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
            return;
        }

        if (caFile.Length > 0)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(caFile);
            ssl.CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            ssl.CertificateChainPolicy.CustomTrustStore.AddRange(roots);
        }
    }
}

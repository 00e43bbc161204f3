using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using PgOtelGateway.Tests.Common;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// A throwaway PKI in PEM files, as an operator would hand the gateway and the agent: a CA, a server certificate
/// for 127.0.0.1 and a client certificate signed by it, and a client certificate from a second, untrusted CA.
/// </summary>
internal sealed class TestCertificates : IDisposable
{
    private readonly TempDirectory _dir = new("pgotel-pki");

    public TestCertificates()
    {
        using var ca = MakeCa("pgotel test CA");
        using var rogueCa = MakeCa("someone else's CA");
        CaFile = WritePem("ca", ca, withKey: false);

        using var server = Issue(ca, "127.0.0.1", client: false);
        ServerCertFile = WritePem("server", server, withKey: true);
        ServerKeyFile = _dir.File("server.key");

        using var client = Issue(ca, "agent-1", client: true);
        ClientCertFile = WritePem("client", client, withKey: true);
        ClientKeyFile = _dir.File("client.key");

        using var rogue = Issue(rogueCa, "intruder", client: true);
        RogueCertFile = WritePem("rogue", rogue, withKey: true);
        RogueKeyFile = _dir.File("rogue.key");
    }

    public string CaFile { get; }

    public string ServerCertFile { get; }

    public string ServerKeyFile { get; }

    public string ClientCertFile { get; }

    public string ClientKeyFile { get; }

    public string RogueCertFile { get; }

    public string RogueKeyFile { get; }

    private static X509Certificate2 MakeCa(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, string name, bool client)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(client ? "1.3.6.1.5.5.7.3.2" : "1.3.6.1.5.5.7.3.1")], false));
        if (!client)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(System.Net.IPAddress.Loopback);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }

        var serial = RandomNumberGenerator.GetBytes(12);
        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(29), serial);
        return issued.CopyWithPrivateKey(key);
    }

    private string WritePem(string name, X509Certificate2 certificate, bool withKey)
    {
        var path = _dir.File(name + ".crt");
        File.WriteAllText(path, certificate.ExportCertificatePem());
        if (withKey)
        {
            File.WriteAllText(_dir.File(name + ".key"), certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        }

        return path;
    }

    public void Dispose() => _dir.Dispose();
}

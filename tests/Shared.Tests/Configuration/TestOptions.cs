using PgOtelGateway.Shared.Configuration;

namespace PgOtelGateway.Shared.Tests.Configuration;

public enum TestMode
{
    Disable,
    VerifyFull,
}

public sealed class TestTlsOptions
{
    public TestMode Mode { get; set; } = TestMode.Disable;

    public string CaFile { get; set; } = "";
}

public sealed class TestReceiverOptions : IValidatableOptions
{
    [ConfigRequired]
    public string Endpoint { get; set; } = "";

    public string Username { get; set; } = "";

    [Secret]
    public string Password { get; set; } = "";

    public TimeSpan CollectionInterval { get; set; } = TimeSpan.FromSeconds(10);

    public ByteSize MaxRequestSize { get; set; } = ByteSize.FromMiB(64);

    public int MaxOpenConns { get; set; } = 5;

    public bool Enabled { get; set; } = true;

    public List<string> Databases { get; set; } = [];

    public TestTlsOptions Tls { get; set; } = new();

    [Secret]
    public Dictionary<string, string> Headers { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        if (MaxOpenConns < 1)
        {
            yield return "max_open_conns must be at least 1";
        }
    }
}

public sealed class TestExporterOptions
{
    public string Endpoint { get; set; } = "localhost:4317";
}

public sealed class TestGatewaySection
{
    public string Id { get; set; } = "gw-0";
}

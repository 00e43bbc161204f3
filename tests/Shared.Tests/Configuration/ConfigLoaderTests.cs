using PgOtelGateway.Shared.Configuration;
using Xunit;

namespace PgOtelGateway.Shared.Tests.Configuration;

public sealed class ConfigLoaderTests
{
    private static ComponentRegistry Registry() => new ComponentRegistry()
        .AddReceiver<TestReceiverOptions>("postgresql")
        .AddExporter<TestExporterOptions>("otlp")
        .AddProcessor<TestExporterOptions>("batch")
        .AddExtension<TestExporterOptions>("health_check")
        .AddSection<TestGatewaySection>("gateway");

    private static PipelineConfig Load(string yaml, Dictionary<string, string>? env = null, string? baseDir = null) =>
        ConfigLoader.Load(yaml, Registry(), "test.yaml", baseDir, name => env is not null && env.TryGetValue(name, out var v) ? v : null);

    private static ConfigException LoadFails(string yaml, Dictionary<string, string>? env = null) =>
        Assert.Throws<ConfigException>(() => Load(yaml, env));

    private const string Pipeline = """
        service:
          pipelines:
            metrics:
              receivers: [postgresql]
              exporters: [otlp]
        """;

    [Fact]
    public void Load_WithAnEmptyEnvDefault_BindsAnEmptyStringNotNull()
    {
        var config = Load("""
            receivers:
              postgresql:
                endpoint: db:5432
                username: ${env:PGOTEL_UNSET_USER:-}
            exporters:
              otlp:
                endpoint: gw:4317
            """ + "\n" + Pipeline);

        Assert.Equal("", config.Receivers["postgresql"].OptionsAs<TestReceiverOptions>().Username);
    }

    [Fact]
    public void Load_WithCollectorStyleConfig_BindsEveryValue()
    {
        var config = Load("""
            receivers:
              postgresql:
                endpoint: db:5432
                username: monitor
                collection_interval: 1m30s
                max_request_size: 16MiB
                max_open_conns: 3
                enabled: no
                databases: [app, analytics]
                tls:
                  mode: verify-full
                  ca_file: /etc/ca.pem
              postgresql/replica:
                endpoint: replica:5432
            exporters:
              otlp:
                endpoint: gw:4317
            gateway:
              id: gw-7
            """ + "\n" + Pipeline);

        var options = config.Receivers["postgresql"].OptionsAs<TestReceiverOptions>();
        Assert.Equal("db:5432", options.Endpoint);
        Assert.Equal("monitor", options.Username);
        Assert.Equal(TimeSpan.FromSeconds(90), options.CollectionInterval);
        Assert.Equal(16L * 1024 * 1024, options.MaxRequestSize.Bytes);
        Assert.Equal(3, options.MaxOpenConns);
        Assert.False(options.Enabled);
        Assert.Equal(["app", "analytics"], options.Databases);
        Assert.Equal(TestMode.VerifyFull, options.Tls.Mode);
        Assert.Equal("/etc/ca.pem", options.Tls.CaFile);

        var replica = config.Receivers["postgresql/replica"];
        Assert.Equal("postgresql", replica.Type);
        Assert.Equal("replica", replica.Name);
        Assert.Equal(["postgresql"], config.Service.Pipelines["metrics"].Receivers);
        Assert.Equal("gw-7", config.Section<TestGatewaySection>("gateway").Id);
    }

    [Fact]
    public void Load_WithMisspeltKey_NamesTheKeyItsLineAndASuggestion()
    {
        var ex = LoadFails("""
            receivers:
              postgresql:
                endpoint: db:5432
                colection_interval: 10s
            exporters:
              otlp:
            """ + "\n" + Pipeline);

        var error = Assert.Single(ex.Errors);
        Assert.Equal(4, error.Line);
        Assert.Equal("receivers.postgresql.colection_interval", error.Path);
        Assert.Contains("unknown key 'colection_interval'", error.Message, StringComparison.Ordinal);
        Assert.Contains("did you mean 'collection_interval'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_WithUnknownComponentType_NamesItAndItsLine()
    {
        var ex = LoadFails("""
            receivers:
              postgresq:
                endpoint: x
            """);

        var error = Assert.Single(ex.Errors);
        Assert.Equal(2, error.Line);
        Assert.Contains("unknown receiver type 'postgresq'", error.Message, StringComparison.Ordinal);
        Assert.Contains("did you mean 'postgresql'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_WithUnknownTopLevelSection_FailsNamingIt()
    {
        var ex = LoadFails("gatway:\n  id: x\n");
        Assert.Contains("unknown top-level section 'gatway'", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, ex.Errors[0].Line);
    }

    [Fact]
    public void Load_WithMissingRequiredValue_NamesIt()
    {
        var ex = LoadFails("receivers:\n  postgresql:\n    username: x\n");
        var error = Assert.Single(ex.Errors);
        Assert.Equal("receivers.postgresql.endpoint", error.Path);
        Assert.Contains("required", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_WithRequiredValueFromUnsetVariable_ReportsItEmpty()
    {
        var ex = LoadFails("receivers:\n  postgresql:\n    endpoint: ${env:PG_ENDPOINT}\n");
        Assert.Contains("receivers.postgresql.endpoint", ex.Message, StringComparison.Ordinal);
        Assert.Contains("empty", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("${env:PG}", "db:5432")]
    [InlineData("${env:MISSING:-fallback:1}", "fallback:1")]
    [InlineData("${env:EMPTY:-fallback}", "fallback")]
    [InlineData("postgres://${env:PG}/app", "postgres://db:5432/app")]
    [InlineData("cost $$5", "cost $5")]
    public void Load_WithEnvironmentReferences_ExpandsThem(string raw, string expected)
    {
        var env = new Dictionary<string, string> { ["PG"] = "db:5432", ["EMPTY"] = "" };
        var config = Load($"receivers:\n  postgresql:\n    endpoint: \"{raw}\"\n", env);
        Assert.Equal(expected, config.Receivers["postgresql"].OptionsAs<TestReceiverOptions>().Endpoint);
    }

    [Fact]
    public void Load_WithUnsupportedReference_FailsWithItsLine()
    {
        var ex = LoadFails("receivers:\n  postgresql:\n    endpoint: ${PG}\n");
        Assert.Equal(3, ex.Errors[0].Line);
        Assert.Contains("${env:NAME}", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("collection_interval: ten", "collection_interval", "duration")]
    [InlineData("max_request_size: 12 parsecs", "max_request_size", "size")]
    [InlineData("max_open_conns: many", "max_open_conns", "whole number")]
    [InlineData("enabled: perhaps", "enabled", "true or false")]
    [InlineData("databases: app", "databases", "list")]
    [InlineData("tls:\n      mode: sometimes", "tls.mode", "one of disable, verify_full")]
    public void Load_WithWrongType_SaysWhatWasExpected(string line, string key, string expected)
    {
        var ex = LoadFails($"receivers:\n  postgresql:\n    endpoint: x\n    {line}\n");
        var error = Assert.Single(ex.Errors);
        Assert.Equal("receivers.postgresql." + key, error.Path);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_WithValidationRuleBroken_ReportsTheRule()
    {
        var ex = LoadFails("receivers:\n  postgresql:\n    endpoint: x\n    max_open_conns: 0\n");
        Assert.Contains("max_open_conns must be at least 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_WithSeveralErrors_ReportsAllInLineOrder()
    {
        var ex = LoadFails("receivers:\n  postgresql:\n    endpoint: x\n    bogus: 1\n    enabled: maybe\nexporters:\n  otlp:\n    nope: 2\n");
        Assert.Equal([4, 5, 8], ex.Errors.Select(e => e.Line));
    }

    [Fact]
    public void Load_WithSecretFromFile_ReadsTheFileAndRedactsNothingButTheSecret()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "pw"), "s3cr3t-value\n");
        var config = Load("receivers:\n  postgresql:\n    endpoint: x\n    password_file: pw\n", baseDir: dir.Path);

        Assert.Equal("s3cr3t-value", config.Receivers["postgresql"].OptionsAs<TestReceiverOptions>().Password);
        Assert.DoesNotContain("s3cr3t-value", config.RedactedYaml, StringComparison.Ordinal);
        Assert.Contains("password_file: pw", config.RedactedYaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_WithMissingSecretFile_FailsWithoutShowingContent()
    {
        var ex = LoadFails("receivers:\n  postgresql:\n    endpoint: x\n    password_file: /nonexistent/pw\n");
        Assert.Contains("cannot read secret file '/nonexistent/pw'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RedactedYaml_HidesInlineSecretsAndSecretMaps_EvenWhenTheyComeFromTheEnvironment()
    {
        var env = new Dictionary<string, string> { ["PGPASS"] = "hunter2-from-env" };
        var config = Load("""
            receivers:
              postgresql:
                endpoint: db:5432
                password: ${env:PGPASS}
                headers:
                  Authorization: Bearer tok-123
            """, env);

        Assert.Equal("hunter2-from-env", config.Receivers["postgresql"].OptionsAs<TestReceiverOptions>().Password);
        Assert.DoesNotContain("hunter2-from-env", config.RedactedYaml, StringComparison.Ordinal);
        Assert.DoesNotContain("tok-123", config.RedactedYaml, StringComparison.Ordinal);
        Assert.Contains("db:5432", config.RedactedYaml, StringComparison.Ordinal);
        Assert.Contains("<redacted>", config.RedactedYaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_WithWrongTypeForSecret_DoesNotEchoTheValue()
    {
        var ex = LoadFails("receivers:\n  postgresql:\n    endpoint: x\n    headers: [leaked-token]\n");
        Assert.DoesNotContain("leaked-token", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_WithPipelineReferencingUnknownComponent_NamesThePipelineLine()
    {
        var ex = LoadFails("exporters:\n  otlp:\nservice:\n  pipelines:\n    metrics:\n      receivers: [postgresql]\n      exporters: [otlp]\n");
        var error = Assert.Single(ex.Errors);
        Assert.Equal(5, error.Line);
        Assert.Contains("receiver 'postgresql' is used here but not configured", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_WithTracesPipeline_SaysOnlyMetricsAreSupported()
    {
        var ex = LoadFails("service:\n  pipelines:\n    traces:\n      receivers: []\n");
        Assert.Contains("only metrics pipelines are supported", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_WithEmptyBlock_UsesDefaults()
    {
        var config = Load("exporters:\n  otlp:\n");
        Assert.Equal("localhost:4317", config.Exporters["otlp"].OptionsAs<TestExporterOptions>().Endpoint);
    }

    [Fact]
    public void Load_WithYamlSyntaxError_ReportsTheLine()
    {
        var ex = LoadFails("receivers:\n  postgresql:\n    endpoint: [unclosed\n");
        Assert.True(ex.Errors[0].Line >= 3);
        Assert.Contains("YAML syntax error", ex.Message, StringComparison.Ordinal);
    }

    private sealed class TempDir : IDisposable
    {
        public TempDir() => Directory.CreateDirectory(Path);

        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "pgotel-cfg-" + Guid.NewGuid().ToString("N"));

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}

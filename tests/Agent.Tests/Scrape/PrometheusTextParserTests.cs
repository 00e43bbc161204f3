using PgOtelGateway.Agent.Scrape;
using Xunit;

namespace PgOtelGateway.Agent.Tests.Scrape;

public sealed class PrometheusTextParserTests
{
    private static List<PromFamily> Parse(string text) => new PrometheusTextParser().Parse(text);

    [Fact]
    public void Parse_HelpAndType_AssignsFamilyTypeAndHelp()
    {
        var families = Parse("""
            # HELP pg_up Whether the last scrape of postgres was able to connect.
            # TYPE pg_up gauge
            pg_up 1
            # HELP pg_stat_database_xact_commit Number of transactions in this database that have been committed
            # TYPE pg_stat_database_xact_commit counter
            pg_stat_database_xact_commit{datid="5",datname="postgres",server="127.0.0.1:5432"} 57
            """);

        Assert.Equal(2, families.Count);
        Assert.Equal("pg_up", families[0].Name);
        Assert.Equal(PromMetricType.Gauge, families[0].Type);
        Assert.Equal("Whether the last scrape of postgres was able to connect.", families[0].Help);
        Assert.Equal(PromMetricType.Counter, families[1].Type);
        var sample = Assert.Single(families[1].Samples);
        Assert.Equal(57, sample.Value);
        Assert.Equal([new PromLabel("datid", "5"), new PromLabel("datname", "postgres"), new PromLabel("server", "127.0.0.1:5432")], sample.Labels);
    }

    [Theory]
    [InlineData("NaN", double.NaN)]
    [InlineData("+Inf", double.PositiveInfinity)]
    [InlineData("Inf", double.PositiveInfinity)]
    [InlineData("-Inf", double.NegativeInfinity)]
    [InlineData("1.5e+06", 1.5e6)]
    [InlineData("-0.25", -0.25)]
    [InlineData("42", 42d)]
    public void Parse_SpecialAndExponentValues_AreRead(string text, double expected)
    {
        var sample = Assert.Single(Assert.Single(Parse($"m {text}\n")).Samples);
        Assert.Equal(expected, sample.Value);
    }

    [Fact]
    public void Parse_EscapedLabelValues_AreUnescaped()
    {
        var sample = Assert.Single(Assert.Single(Parse("""m{path="C:\\dir\\file",quote="say \"hi\"",nl="a\nb"} 1""")).Samples);
        Assert.Equal(@"C:\dir\file", sample.Labels[0].Value);
        Assert.Equal("say \"hi\"", sample.Labels[1].Value);
        Assert.Equal("a\nb", sample.Labels[2].Value);
    }

    [Fact]
    public void Parse_BraceAndCommaInsideQuotedValue_DoNotEndTheLabelSet()
    {
        var sample = Assert.Single(Assert.Single(Parse("m{q=\"select a, b from t where x = '}'\",z=\"1\"} 3\n")).Samples);
        Assert.Equal("select a, b from t where x = '}'", sample.Labels[0].Value);
        Assert.Equal("1", sample.Labels[1].Value);
        Assert.Equal(3, sample.Value);
    }

    [Fact]
    public void Parse_HelpEscapes_AreUnescaped()
    {
        var family = Assert.Single(Parse("# HELP m first line\\nsecond \\\\ end\n# TYPE m gauge\nm 1\n"));
        Assert.Equal("first line\nsecond \\ end", family.Help);
    }

    [Fact]
    public void Parse_Timestamps_AreKeptInMilliseconds()
    {
        var samples = Assert.Single(Parse("m{a=\"1\"} 5 1700000000123\nm{a=\"2\"} 6\nm{a=\"3\"} 7 -1\n")).Samples;
        Assert.Equal(1700000000123, samples[0].TimestampMs);
        Assert.Null(samples[1].TimestampMs);
        Assert.Equal(-1, samples[2].TimestampMs);
    }

    [Fact]
    public void Parse_TrailingCommaSpacesAndCrLf_AreAccepted()
    {
        var sample = Assert.Single(Assert.Single(Parse("m { a = \"x\" , b=\"y\", }   2 \r\n\r\n")).Samples);
        Assert.Equal(2, sample.Labels.Length);
        Assert.Equal("y", sample.Labels[1].Value);
        Assert.Equal(2, sample.Value);
    }

    [Fact]
    public void Parse_UntypedSamplesWithoutMetadata_BecomeUntypedFamilies()
    {
        var families = Parse("# a plain comment\nfoo 1\nbar{x=\"1\"} 2\nbar{x=\"2\"} 3\n");
        Assert.Equal(["foo", "bar"], families.Select(f => f.Name));
        Assert.All(families, f => Assert.Equal(PromMetricType.Untyped, f.Type));
        Assert.Equal(2, families[1].Samples.Count);
    }

    [Fact]
    public void Parse_CounterTypedWithoutTotal_OwnsItsTotalSample()
    {
        var family = Assert.Single(Parse("# TYPE requests counter\nrequests_total{code=\"200\"} 7\n"));
        Assert.Equal("requests", family.Name);
        Assert.Equal(PromMetricType.Counter, family.Type);
        Assert.Equal("requests_total", Assert.Single(family.Samples).Name);
    }

    [Fact]
    public void Parse_Histogram_GroupsBucketSumAndCount()
    {
        var family = Assert.Single(Parse("""
            # TYPE rt histogram
            rt_bucket{le="0.1"} 1
            rt_bucket{le="1"} 3
            rt_bucket{le="+Inf"} 4
            rt_sum 2.5
            rt_count 4
            """));
        Assert.Equal(PromMetricType.Histogram, family.Type);
        Assert.Equal(5, family.Samples.Count);
    }

    [Fact]
    public void Parse_Summary_GroupsQuantilesSumAndCount()
    {
        var family = Assert.Single(Parse("""
            # TYPE gc summary
            gc{quantile="0.5"} 0.001
            gc{quantile="1"} 0.01
            gc_sum 0.2
            gc_count 30
            """));
        Assert.Equal(PromMetricType.Summary, family.Type);
        Assert.Equal(4, family.Samples.Count);
    }

    [Fact]
    public void Parse_MalformedLines_AreSkippedAndCounted()
    {
        var parser = new PrometheusTextParser();
        var families = parser.Parse("good 1\n{bad} 1\nm{a=\"unterminated} 1\nm{a=\"1\"} notanumber\nok 2\n");
        Assert.Equal(["good", "ok"], families.Select(f => f.Name));
        Assert.Equal(3, parser.InvalidLines);
        Assert.StartsWith("line 2:", parser.FirstProblem, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_TheSameTextTwice_ReusesNameAndValueStrings()
    {
        var parser = new PrometheusTextParser();
        const string text = "pg_stat_database_xact_commit{datname=\"postgres\"} 1\n";
        var first = Assert.Single(Assert.Single(parser.Parse(text)).Samples);
        var second = Assert.Single(Assert.Single(parser.Parse(text)).Samples);
        Assert.Same(first.Name, second.Name);
        Assert.Same(first.Labels[0].Name, second.Labels[0].Name);
        Assert.Same(first.Labels[0].Value, second.Labels[0].Value);
    }

    [Fact]
    public void Parse_ARealPostgresExporterScrape_ReadsEveryLineAndStaysAllocationLight()
    {
        // A scrape of prometheus-postgres-exporter 0.11 taken from the test harness.
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Scrape", "postgres_exporter-0.11.txt"));
        var parser = new PrometheusTextParser();
        var families = parser.Parse(text);
        Assert.Equal(0, parser.InvalidLines);
        Assert.Equal(PromMetricType.Summary, families.Single(f => f.Name == "go_gc_duration_seconds").Type);
        Assert.Equal(PromMetricType.Gauge, families.Single(f => f.Name == "pg_up").Type);
        Assert.Equal(PromMetricType.Counter, families.Single(f => f.Name == "pg_stat_database_xact_commit").Type);
        var samples = families.Sum(f => f.Samples.Count);
        Assert.Equal(text.Split('\n').Count(l => l.Length > 0 && l[0] != '#'), samples);

        // A steady scrape reuses every name and label string: what it allocates is the samples and their label
        // arrays, well under the size of the text itself (a string per token would be several times it).
        var before = GC.GetAllocatedBytesForCurrentThread();
        parser.Parse(text);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < text.Length * 2, $"{allocated} bytes allocated for {text.Length} characters ({samples} samples)");
    }
}

using System.Text.RegularExpressions;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>
/// The Dockerfiles, read as the builder reads them (no Docker engine here): every file they copy is in the build
/// context and not excluded by .dockerignore, the runtime stage is non-root with a health check, and the exposed
/// ports and the entry point match the binaries.
/// </summary>
public sealed partial class DockerfileTests
{
    [Theory]
    [InlineData("src/Gateway/Dockerfile", "PgOtelGateway.Gateway.dll", new[] { 4317, 4318, 8080, 8888, 13133 })]
    [InlineData("src/Agent/Dockerfile", "PgOtelGateway.Agent.dll", new[] { 8888, 13133 })]
    public void Dockerfile_CopiesOnlyWhatTheContextHasAndRunsTheBinaryAsNonRoot(string dockerfile, string dll, int[] ports)
    {
        var lines = Instructions(File.ReadAllText(Path.Combine(DeployFiles.Root, dockerfile)));
        var ignore = File.ReadAllLines(Path.Combine(DeployFiles.Root, ".dockerignore"))
            .Select(l => l.Trim()).Where(l => l.Length > 0 && l[0] != '#').ToList();

        // Multi-stage: an SDK build stage and an ASP.NET Core runtime stage.
        var froms = lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, froms.Count);
        Assert.Contains("dotnet/sdk:10.0", froms[0], StringComparison.Ordinal);
        Assert.Contains("dotnet/aspnet:10.0", froms[1], StringComparison.Ordinal);

        // Every COPY from the context names something that exists and that .dockerignore lets through.
        foreach (var copy in lines.Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from=", StringComparison.Ordinal)))
        {
            var parts = copy.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            foreach (var source in parts[1..^1])
            {
                var path = Path.Combine(DeployFiles.Root, source.TrimEnd('/'));
                Assert.True(File.Exists(path) || Directory.Exists(path), $"{dockerfile}: COPY {source}: not in the repository");
                Assert.False(Ignored(source.TrimEnd('/'), ignore), $"{dockerfile}: COPY {source}: excluded by .dockerignore");
            }
        }

        // Nothing the build needs is ignored: the project files, their sources and the protos.
        foreach (var needed in new[] { "src/Shared/Shared.csproj", "src/Shared/Translation/PrometheusNaming.cs", "protos/prometheus/remote.proto", ".editorconfig", "Directory.Build.props" })
        {
            Assert.False(Ignored(needed, ignore), $".dockerignore excludes {needed}");
        }

        // The runtime stage: non-root user, health check on /health of 13133, the binary, the ports.
        var runtime = lines.SkipWhile(l => l != froms[1]).ToList();
        var user = runtime.Single(l => l.StartsWith("USER ", StringComparison.Ordinal));
        Assert.DoesNotContain("root", user, StringComparison.Ordinal);
        Assert.NotEqual("USER 0", user);
        Assert.Contains(runtime, l => l.StartsWith("HEALTHCHECK ", StringComparison.Ordinal) && l.Contains(":13133/health", StringComparison.Ordinal));
        Assert.Contains(runtime, l => l.StartsWith("ENTRYPOINT ", StringComparison.Ordinal) && l.Contains(dll, StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(AppContext.BaseDirectory, dll)), $"{dll} is not what the project builds");
        var exposed = runtime.Where(l => l.StartsWith("EXPOSE ", StringComparison.Ordinal))
            .SelectMany(l => l["EXPOSE ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)).Select(int.Parse).Order();
        Assert.Equal(ports.Order(), exposed);
    }

    [Fact]
    public void Compose_BuildsFromTheDockerfilesInTheRepository()
    {
        var compose = File.ReadAllText(Path.Combine(DeployFiles.Root, "docker-compose.yml"));
        var dockerfiles = DockerfileKey().Matches(compose).Select(m => m.Groups[1].Value).Distinct(StringComparer.Ordinal).ToList();

        Assert.Equal(["src/Agent/Dockerfile", "src/Gateway/Dockerfile"], dockerfiles.Order(StringComparer.Ordinal));
        Assert.All(dockerfiles, d => Assert.True(File.Exists(Path.Combine(DeployFiles.Root, d))));
    }

    /// <summary>Instructions with line continuations joined and comments dropped.</summary>
    private static List<string> Instructions(string text)
    {
        var joined = text.Replace("\\\n", " ", StringComparison.Ordinal);
        return [.. joined.Split('\n').Select(l => Spaces().Replace(l.Trim(), " ")).Where(l => l.Length > 0 && l[0] != '#')];
    }

    /// <summary>.dockerignore matching for the pattern forms used there: dir/, **/dir/, *.ext, **/name, exact paths.</summary>
    private static bool Ignored(string path, List<string> patterns)
    {
        var ignored = false;
        foreach (var raw in patterns)
        {
            var negate = raw.StartsWith('!');
            var pattern = (negate ? raw[1..] : raw).TrimEnd('/');
            var regex = "^" + Regex.Escape(pattern).Replace(@"\*\*/", "(.*/)?", StringComparison.Ordinal).Replace(@"\*", "[^/]*", StringComparison.Ordinal) + "(/.*)?$";
            if (Regex.IsMatch(path, regex))
            {
                ignored = !negate;
            }
        }

        return ignored;
    }

    [GeneratedRegex(@"dockerfile:\s*(\S+)")]
    private static partial Regex DockerfileKey();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}

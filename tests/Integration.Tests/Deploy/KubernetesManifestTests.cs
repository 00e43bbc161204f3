using System.Globalization;
using YamlDotNet.RepresentationModel;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Deploy;

/// <summary>
/// deploy/kubernetes renders with <c>kubectl kustomize</c>, and the rendered objects fit together: kinds,
/// selectors and labels, ports against the configurations they run, probes, drain, storage, resources.
/// </summary>
public sealed class KubernetesManifestTests
{
    [Fact]
    public async Task KubectlKustomize_RendersObjectsThatFitTogether()
    {
        var objects = await RenderAsync();

        // Kinds.
        var kinds = objects.Select(o => o.Kind).ToList();
        foreach (var kind in new[] { "Namespace", "ConfigMap", "Service", "Deployment", "StatefulSet", "DaemonSet", "PodDisruptionBudget" })
        {
            Assert.Contains(kind, kinds);
        }

        Assert.All(objects.Where(o => o.Kind != "Namespace"), o => Assert.Equal("pgotel", o.Namespace));
        var workloads = objects.Where(o => o.Kind is "Deployment" or "StatefulSet" or "DaemonSet").ToList();

        // Every workload's selector matches its own pod labels; every container has requests and limits.
        foreach (var w in workloads)
        {
            Assert.True(Matches(Map(w.Node, "spec", "selector", "matchLabels"), PodLabels(w)), $"{w.Kind}/{w.Name}: selector does not match its pod labels");
            foreach (var c in Containers(w))
            {
                Assert.NotNull(Map(c, "resources", "requests"));
                Assert.NotNull(Map(c, "resources", "limits"));
            }
        }

        // Every Service and the PDB select pods of some workload, and a Service's named target ports exist there.
        foreach (var svc in objects.Where(o => o.Kind == "Service"))
        {
            var selector = Map(svc.Node, "spec", "selector")!;
            var targets = workloads.Where(w => Matches(selector, PodLabels(w))).ToList();
            Assert.True(targets.Count > 0, $"Service {svc.Name} selects no pods");
            foreach (var port in Seq(svc.Node, "spec", "ports").Cast<YamlMappingNode>())
            {
                var target = DeployFiles.Scalar(port, "targetPort");
                Assert.All(targets, w => Assert.True(ContainerPorts(w).ContainsKey(target!), $"Service {svc.Name}: {w.Name} has no port named {target}"));
            }
        }

        var pdb = objects.Single(o => o.Kind == "PodDisruptionBudget");
        var gateway = objects.Single(o => o.Kind == "StatefulSet" && o.Name == "pgotel-gateway");
        Assert.True(Matches(Map(pdb.Node, "spec", "selector", "matchLabels")!, PodLabels(gateway)), "the PDB does not select the gateways");

        // The StatefulSet's headless Service selects it, and is the ring's DNS membership name.
        var headlessName = Scalar(gateway.Node, "spec", "serviceName");
        var headless = objects.Single(o => o.Kind == "Service" && o.Name == headlessName);
        Assert.Equal("None", Scalar(headless.Node, "spec", "clusterIP"));
        Assert.True(Matches(Map(headless.Node, "spec", "selector")!, PodLabels(gateway)));
        var gatewayConfig = ConfigFromConfigMap(objects, gateway, "gateway.yaml");
        Assert.Equal(headlessName, Scalar(gatewayConfig, "gateway", "ring", "members", "dns", "hostname"));

        // DNS membership probes each A record of the headless Service on the OTLP gRPC port, and the pod answers with
        // its gateway.id: that must be the pod name (stable, and what the admin API and file names show).
        var dnsPort = Scalar(gatewayConfig, "gateway", "ring", "members", "dns", "port");
        Assert.Equal(Port(Scalar(gatewayConfig, "receivers", "otlp", "protocols", "grpc", "endpoint")).ToString(CultureInfo.InvariantCulture), dnsPort);
        Assert.Contains(Seq(headless.Node, "spec", "ports").Cast<YamlMappingNode>(), p => DeployFiles.Scalar(p, "port") == dnsPort);
        Assert.StartsWith("${env:POD_NAME", Scalar(gatewayConfig, "gateway", "id")!, StringComparison.Ordinal);
        Assert.Contains(Seq(Containers(gateway).Single(), "env").Cast<YamlMappingNode>(),
            e => DeployFiles.Scalar(e, "name") == "POD_NAME" && Scalar(e, "valueFrom", "fieldRef", "fieldPath") == "metadata.name");

        // The client Service carries OTLP gRPC and HTTP.
        var client = objects.Single(o => o.Kind == "Service" && o.Name == "pgotel-gateway");
        Assert.Equal(["4317", "4318"], Seq(client.Node, "spec", "ports").Cast<YamlMappingNode>().Select(p => DeployFiles.Scalar(p, "port")!).Order(StringComparer.Ordinal));

        // Container ports are exactly the ports the gateway's configuration listens on.
        var gatewayContainer = Containers(gateway).Single();
        var ports = ContainerPorts(gateway);
        var configured = new[]
        {
            Port(Scalar(gatewayConfig, "receivers", "otlp", "protocols", "grpc", "endpoint")),
            Port(Scalar(gatewayConfig, "receivers", "otlp", "protocols", "http", "endpoint")),
            Port(Scalar(gatewayConfig, "gateway", "admin", "endpoint")),
            Port(Scalar(gatewayConfig, "service", "telemetry", "metrics", "address")),
            Port(Scalar(gatewayConfig, "extensions", "health_check", "endpoint")),
        };
        Assert.Equal(configured.Order(), ports.Values.Order());
        Assert.Equal([4317, 4318, 8080, 8888, 13133], configured.Order());

        // Readiness on /ready of the health port; preStop drains through the admin API on the admin port.
        var health = Port(Scalar(gatewayConfig, "extensions", "health_check", "endpoint"));
        Assert.Equal("/ready", Scalar(gatewayContainer, "readinessProbe", "httpGet", "path"));
        Assert.Equal(health, ResolvePort(ports, Scalar(gatewayContainer, "readinessProbe", "httpGet", "port")));
        var preStop = string.Join(' ', Seq(gatewayContainer, "lifecycle", "preStop", "exec", "command").Select(n => ((YamlScalarNode)n).Value));
        Assert.Contains($"127.0.0.1:{Port(Scalar(gatewayConfig, "gateway", "admin", "endpoint"))}/api/v1/ring/leave", preStop, StringComparison.Ordinal);
        Assert.Contains("--post-data", preStop, StringComparison.Ordinal);

        // The durable queue sits on the per-pod volume claim.
        var claim = Scalar((YamlMappingNode)Seq(gateway.Node, "spec", "volumeClaimTemplates")[0], "metadata", "name");
        var queueDir = Scalar(gatewayConfig, "gateway", "queue", "directory")!;
        var mount = Seq(gatewayContainer, "volumeMounts").Cast<YamlMappingNode>().Single(m => DeployFiles.Scalar(m, "name") == claim);
        Assert.StartsWith(DeployFiles.Scalar(mount, "mountPath")! + "/", queueDir, StringComparison.Ordinal);

        // So does the cold tier's staging folder (data waits there, fsync'd, until uploaded).
        Assert.StartsWith(DeployFiles.Scalar(mount, "mountPath")! + "/", Scalar(gatewayConfig, "exporters", "awss3", "staging", "directory")!, StringComparison.Ordinal);

        // The agent: the DB secret, its configured ports, readiness on /ready.
        var agent = objects.Single(o => o.Kind == "DaemonSet" && o.Name == "pgotel-agent");
        var agentConfig = ConfigFromConfigMap(objects, agent, "agent.yaml");
        var agentPorts = ContainerPorts(agent);
        Assert.Equal(
            new[] { Port(Scalar(agentConfig, "service", "telemetry", "metrics", "address")), Port(Scalar(agentConfig, "extensions", "health_check", "endpoint")) }.Order(),
            agentPorts.Values.Order());
        var agentContainer = Containers(agent).Single();
        Assert.Equal("/ready", Scalar(agentContainer, "readinessProbe", "httpGet", "path"));
        Assert.Equal(13133, ResolvePort(agentPorts, Scalar(agentContainer, "readinessProbe", "httpGet", "port")));
        var secrets = SecretNames(agent);
        Assert.Contains("pgotel-postgres-monitoring", secrets);
        var passwordFile = Scalar(agentConfig, "receivers", "postgresql", "password_file")!;
        Assert.Contains("/etc/pgotel/postgres/password", passwordFile, StringComparison.Ordinal);

        // Every secret the manifests use is one docs/operations.md tells the operator to create.
        var operations = await File.ReadAllTextAsync(Path.Combine(DeployFiles.Root, "docs", "operations.md"));
        foreach (var secret in workloads.SelectMany(SecretNames).Distinct(StringComparer.Ordinal))
        {
            Assert.Contains(secret, operations, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ScrapeConfig_PassesPromtool_AndFindsTheRenderedMetricsServices()
    {
        var file = Path.Combine(DeployFiles.Root, "deploy", "kubernetes", "prometheus", "pgotel-scrape.yml");
        var (exit, stdout, stderr) = await ToolRunner.RunAsync(ToolRunner.Require("promtool"), ["check", "config", file]);
        Assert.True(exit == 0, stdout + stderr);

        // Each DNS name is <service>.<namespace>.svc.cluster.local of a rendered headless Service that selects
        // the pods of the job's workload and exposes the port the job scrapes (the self-metrics port, 8888).
        var objects = await RenderAsync();
        var jobs = Seq(DeployFiles.LoadYaml(file)!, "scrape_configs").Cast<YamlMappingNode>().ToList();
        Assert.Equal(["pgotel-agent", "pgotel-gateway"], jobs.Select(j => DeployFiles.Scalar(j, "job_name")).Order(StringComparer.Ordinal));
        foreach (var job in jobs)
        {
            var sd = (YamlMappingNode)Seq(job, "dns_sd_configs")[0];
            var name = ((YamlScalarNode)Seq(sd, "names")[0]).Value!;
            var parts = name.Split('.');
            Assert.Equal("svc.cluster.local", string.Join('.', parts[2..]));
            var svc = objects.SingleOrDefault(o => o.Kind == "Service" && o.Name == parts[0] && o.Namespace == parts[1]);
            Assert.True(svc is not null, $"{name}: no such Service in the rendered base");
            Assert.Equal("None", Scalar(svc.Node, "spec", "clusterIP"));
            var workload = objects.Single(o => o.Kind is "StatefulSet" or "DaemonSet" && o.Name == DeployFiles.Scalar(job, "job_name"));
            Assert.True(Matches(Map(svc.Node, "spec", "selector"), PodLabels(workload)), $"{svc.Name} does not select {workload.Name}");
            Assert.Equal(8888, ContainerPorts(workload)[Scalar((YamlMappingNode)Seq(svc.Node, "spec", "ports")[0], "targetPort")!]);
            Assert.Equal("8888", DeployFiles.Scalar(sd, "port"));
        }
    }

    private sealed record K8sObject(string Kind, string Name, string? Namespace, YamlMappingNode Node);

    private static async Task<List<K8sObject>> RenderAsync()
    {
        var (exit, stdout, stderr) = await ToolRunner.RunAsync(ToolRunner.Require("kubectl"), ["kustomize", "deploy/kubernetes"]);
        Assert.True(exit == 0, stderr);
        var stream = new YamlStream();
        stream.Load(new StringReader(stdout));
        return [.. stream.Documents.Select(d => (YamlMappingNode)d.RootNode).Select(n => new K8sObject(
            DeployFiles.Scalar(n, "kind")!, Scalar(n, "metadata", "name")!, Scalar(n, "metadata", "namespace"), n))];
    }

    /// <summary>The configuration file a workload mounts from its generated ConfigMap (name with hash suffix).</summary>
    private static YamlMappingNode ConfigFromConfigMap(List<K8sObject> objects, K8sObject workload, string key)
    {
        var volumes = Seq(workload.Node, "spec", "template", "spec", "volumes").Cast<YamlMappingNode>();
        var names = volumes.Select(v => Scalar(v, "configMap", "name")).OfType<string>().ToList();
        var map = objects.Single(o => o.Kind == "ConfigMap" && names.Contains(o.Name) && Map(o.Node, "data")!.Children.ContainsKey(key));
        var stream = new YamlStream();
        stream.Load(new StringReader(Scalar(map.Node, "data", key)!));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static Dictionary<string, string> PodLabels(K8sObject w) =>
        Map(w.Node, "spec", "template", "metadata", "labels")!.Children.ToDictionary(kv => ((YamlScalarNode)kv.Key).Value!, kv => ((YamlScalarNode)kv.Value).Value!, StringComparer.Ordinal);

    private static bool Matches(YamlMappingNode? selector, Dictionary<string, string> labels) =>
        selector is not null && selector.Children.Count > 0 &&
        selector.Children.All(kv => labels.TryGetValue(((YamlScalarNode)kv.Key).Value!, out var v) && v == ((YamlScalarNode)kv.Value).Value);

    private static IEnumerable<YamlMappingNode> Containers(K8sObject w) => Seq(w.Node, "spec", "template", "spec", "containers").Cast<YamlMappingNode>();

    private static Dictionary<string, int> ContainerPorts(K8sObject w) =>
        Containers(w).SelectMany(c => Seq(c, "ports").Cast<YamlMappingNode>())
            .ToDictionary(p => DeployFiles.Scalar(p, "name")!, p => int.Parse(DeployFiles.Scalar(p, "containerPort")!, System.Globalization.CultureInfo.InvariantCulture), StringComparer.Ordinal);

    private static HashSet<string> SecretNames(K8sObject w)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var v in Seq(w.Node, "spec", "template", "spec", "volumes").Cast<YamlMappingNode>())
        {
            if (Scalar(v, "secret", "secretName") is { } s)
            {
                names.Add(s);
            }
        }

        foreach (var c in Containers(w))
        {
            foreach (var e in Seq(c, "env").Cast<YamlMappingNode>())
            {
                if (Scalar(e, "valueFrom", "secretKeyRef", "name") is { } s)
                {
                    names.Add(s);
                }
            }
        }

        return names;
    }

    private static int ResolvePort(Dictionary<string, int> ports, string? port) =>
        int.TryParse(port, out var n) ? n : ports[port!];

    private static int Port(string? endpoint)
    {
        Assert.NotNull(endpoint);
        return int.Parse(endpoint[(endpoint.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static YamlNode? Node(YamlNode node, params string[] path)
    {
        var current = node;
        foreach (var key in path)
        {
            if (current is not YamlMappingNode m || !m.Children.TryGetValue(key, out var next))
            {
                return null;
            }

            current = next;
        }

        return current;
    }

    private static YamlMappingNode? Map(YamlNode node, params string[] path) => Node(node, path) as YamlMappingNode;

    private static string? Scalar(YamlNode node, params string[] path) => (Node(node, path) as YamlScalarNode)?.Value;

    private static YamlSequenceNode Seq(YamlNode node, params string[] path) => Node(node, path) as YamlSequenceNode ?? new YamlSequenceNode();
}

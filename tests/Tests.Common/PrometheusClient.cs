using System.Globalization;
using System.Text.Json;

namespace PgOtelGateway.Tests.Common;

/// <summary>One series of a Prometheus query result: its labels and its samples (one for an instant query).</summary>
public sealed record PromSeries(IReadOnlyDictionary<string, string> Labels, IReadOnlyList<(double Time, double Value)> Samples)
{
    /// <summary>The metric name.</summary>
    public string Name => Labels.TryGetValue("__name__", out var n) ? n : "";

    /// <summary>The value of an instant query's sample.</summary>
    public double Value => Samples[^1].Value;
}

/// <summary>Reads back what reached Prometheus, through its HTTP API, as a user would.</summary>
public sealed class PrometheusClient : IDisposable
{
    private readonly HttpClient _http;

    /// <summary>A client for the given Prometheus (the harness's by default).</summary>
    public PrometheusClient(Uri? baseUrl = null)
    {
        _http = new HttpClient { BaseAddress = baseUrl ?? TestEnvironment.PrometheusUrl, Timeout = TestTimeouts.Short };
    }

    /// <summary><c>/api/v1/query</c>: an instant vector.</summary>
    public async Task<IReadOnlyList<PromSeries>> QueryAsync(string promql, DateTimeOffset? at = null)
    {
        var url = "api/v1/query?query=" + Uri.EscapeDataString(promql);
        if (at is not null)
        {
            url += "&time=" + (at.Value.ToUnixTimeMilliseconds() / 1000.0).ToString(CultureInfo.InvariantCulture);
        }

        return Parse(await GetDataAsync(url).ConfigureAwait(false));
    }

    /// <summary><c>/api/v1/query_range</c>: a range of samples per series.</summary>
    public async Task<IReadOnlyList<PromSeries>> QueryRangeAsync(string promql, DateTimeOffset start, DateTimeOffset end, TimeSpan step)
    {
        var url = "api/v1/query_range?query=" + Uri.EscapeDataString(promql) +
            "&start=" + Seconds(start) + "&end=" + Seconds(end) +
            "&step=" + step.TotalSeconds.ToString(CultureInfo.InvariantCulture);
        return Parse(await GetDataAsync(url).ConfigureAwait(false));
    }

    /// <summary>Every raw sample of <paramref name="selector"/> in the last <paramref name="window"/> (a range-vector query).</summary>
    public Task<IReadOnlyList<PromSeries>> RawSamplesAsync(string selector, TimeSpan window) =>
        QueryAsync($"{selector}[{(long)Math.Ceiling(window.TotalSeconds)}s]");

    /// <summary>All metric names Prometheus holds.</summary>
    public async Task<IReadOnlyList<string>> MetricNamesAsync()
    {
        var data = await GetDataAsync("api/v1/label/__name__/values").ConfigureAwait(false);
        var names = new List<string>();
        foreach (var item in data.EnumerateArray())
        {
            names.Add(item.GetString()!);
        }

        return names;
    }

    /// <summary>Polls an instant query until <paramref name="accept"/> holds for its result, or fails with the last result.</summary>
    public async Task<IReadOnlyList<PromSeries>> WaitForAsync(string promql, Func<IReadOnlyList<PromSeries>, bool> accept, TimeSpan? timeout = null)
    {
        IReadOnlyList<PromSeries> last = [];
        try
        {
            await TestTimeouts.WaitUntilAsync(async () =>
            {
                last = await QueryAsync(promql).ConfigureAwait(false);
                return accept(last);
            }, timeout ?? TestTimeouts.Pipeline, $"Prometheus query `{promql}`").ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException(ex.Message + "; last result: " + Describe(last), ex);
        }

        return last;
    }

    /// <summary>A short text form of a result, for assertion messages.</summary>
    public static string Describe(IReadOnlyList<PromSeries> result) =>
        result.Count == 0 ? "(empty)" : string.Join("; ", result.Take(10).Select(s =>
            "{" + string.Join(",", s.Labels.Select(kv => $"{kv.Key}={kv.Value}")) + "} " +
            string.Join(" ", s.Samples.Select(v => v.Value.ToString(CultureInfo.InvariantCulture)))));

    private async Task<JsonElement> GetDataAsync(string url)
    {
        using var response = await _http.GetAsync(url).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"Prometheus answered {(int)response.StatusCode} to {url}: {body}");
        }

        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("data").Clone();
    }

    private static List<PromSeries> Parse(JsonElement data)
    {
        var series = new List<PromSeries>();
        if (data.ValueKind != JsonValueKind.Object || !data.TryGetProperty("result", out var result))
        {
            return series;
        }

        foreach (var item in result.EnumerateArray())
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var label in item.GetProperty("metric").EnumerateObject())
            {
                labels[label.Name] = label.Value.GetString()!;
            }

            var samples = new List<(double, double)>();
            if (item.TryGetProperty("value", out var value))
            {
                samples.Add(Sample(value));
            }

            if (item.TryGetProperty("values", out var values))
            {
                foreach (var v in values.EnumerateArray())
                {
                    samples.Add(Sample(v));
                }
            }

            series.Add(new PromSeries(labels, samples));
        }

        return series;
    }

    private static (double, double) Sample(JsonElement pair) =>
        (pair[0].GetDouble(), double.Parse(pair[1].GetString()!, CultureInfo.InvariantCulture));

    private static string Seconds(DateTimeOffset t) => (t.ToUnixTimeMilliseconds() / 1000.0).ToString(CultureInfo.InvariantCulture);

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();
}

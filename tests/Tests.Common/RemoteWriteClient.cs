using System.Net.Http.Headers;
using Google.Protobuf;
using PgOtelGateway.Shared.RemoteWrite.Proto;

namespace PgOtelGateway.Tests.Common;

/// <summary>Sends a remote-write 1.0 request straight to Prometheus (or any receiver), for tests that need data there.</summary>
public static class RemoteWriteClient
{
    /// <summary>Posts <paramref name="request"/> snappy-compressed with the spec's headers; returns the status code.</summary>
    public static async Task<System.Net.HttpStatusCode> SendAsync(Uri writeUrl, WriteRequest request)
    {
        using var http = new HttpClient { Timeout = TestTimeouts.Short };
        var body = Snappier.Snappy.CompressToArray(request.ToByteArray());
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        content.Headers.ContentEncoding.Add("snappy");
        using var message = new HttpRequestMessage(HttpMethod.Post, writeUrl) { Content = content };
        message.Headers.Add("X-Prometheus-Remote-Write-Version", "0.1.0");
        message.Headers.UserAgent.ParseAdd("pgotel-tests/1.0");
        using var response = await http.SendAsync(message).ConfigureAwait(false);
        return response.StatusCode;
    }

    /// <summary>A one-sample series.</summary>
    public static TimeSeries Series(string name, double value, DateTimeOffset time, params (string Name, string Value)[] labels)
    {
        var series = new TimeSeries();
        series.Labels.Add(new Label { Name = "__name__", Value = name });
        foreach (var (n, v) in labels.OrderBy(l => l.Name, StringComparer.Ordinal))
        {
            series.Labels.Add(new Label { Name = n, Value = v });
        }

        series.Samples.Add(new Sample { Value = value, Timestamp = time.ToUnixTimeMilliseconds() });
        return series;
    }
}

using Google.Protobuf;
using PgOtelGateway.Tests.Common;
using Xunit;

namespace PgOtelGateway.Integration.Tests.Gateway;

/// <summary>
/// Every bad-input and overload case, over both transports: the status a client sees (gRPC code or HTTP
/// status), the retry hint when it should retry, and partial success when only some points are bad.
/// </summary>
public sealed class BadInputStatusTests
{
    private const int Ok = 0, InvalidArgument = 3, ResourceExhausted = 8, Unavailable = 14, Unauthenticated = 16;

    public static TheoryData<string, string, int, bool> Cases => new()
    {
        // case, transport, expected gRPC code or HTTP status, retry hint expected
        { "malformed", "grpc", InvalidArgument, false },
        { "malformed", "http", 400, false },
        { "malformed_json", "http", 400, false },
        { "unsupported_content_type", "http", 415, false },
        { "too_large", "grpc", ResourceExhausted, false },
        { "too_large", "http", 413, false },
        { "gzip_bomb", "grpc", ResourceExhausted, false },
        { "gzip_bomb", "http", 413, false },
        { "zstd_bomb", "grpc", ResourceExhausted, false },
        { "zstd_bomb", "http", 413, false },
        { "no_token", "grpc", Unauthenticated, false },
        { "no_token", "http", 401, false },
        { "wrong_token", "grpc", Unauthenticated, false },
        { "wrong_token", "http", 401, false },
        { "rate_limited", "grpc", ResourceExhausted, true },
        { "rate_limited", "http", 429, true },
        { "over_point_limits", "grpc", Ok, false },
        { "over_point_limits", "http", 200, false },
        { "memory_limit", "grpc", Unavailable, true },
        { "memory_limit", "http", 503, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Export_WithBadInputOrOverload_ReturnsTheOtlpStatus(string @case, string transport, int expected, bool retryHint)
    {
        var (receiver, processors, processorList) = @case switch
        {
            "too_large" or "gzip_bomb" or "zstd_bomb" => ("max_request_size: 1MiB", "", ""),
            "no_token" or "wrong_token" => ("auth:\n  bearer_token: s3cret-token", "", ""),
            "rate_limited" => ("rate_limiting:\n  requests_per_second: 0.01\n  burst: 2", "", ""),
            "over_point_limits" => ("limits:\n  max_attributes: 4\n  max_label_value_bytes: 64", "", ""),
            "memory_limit" => ("", "memory_limiter:\n  check_interval: 100ms\n  limit_mib: 1\n  spike_limit_mib: 0", "memory_limiter, "),
            _ => ("", "", ""),
        };
        await using var gateway = await TestGateway.StartAsync(receiver, processors, processorList);
        var metric = UniqueName.For(@case);
        var valid = RawOtlpClient.Request(metric).ToByteArray();
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);

        OtlpAnswer answer;
        switch (@case)
        {
            case "malformed":
                answer = await Send(gateway, transport, [0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]);
                Assert.Contains("malformed", answer.Message, StringComparison.Ordinal);
                break;
            case "malformed_json":
                answer = await RawOtlpClient.HttpAsync(gateway.HttpPort, "{\"resourceMetrics\": [ {"u8.ToArray(), "application/json");
                Assert.Contains("JSON", answer.Message, StringComparison.Ordinal);
                break;
            case "unsupported_content_type":
                answer = await RawOtlpClient.HttpAsync(gateway.HttpPort, valid, "text/plain");
                Assert.Contains("Content-Type", answer.Message, StringComparison.Ordinal);
                break;
            case "too_large":
                answer = await Send(gateway, transport, RawOtlpClient.Request(metric, 60_000).ToByteArray());
                break;
            case "gzip_bomb" or "zstd_bomb":
                var encoding = @case == "gzip_bomb" ? "gzip" : "zstd";
                // Zeros inflate to 256 MiB; the limit is 1 MiB. The body on the wire is a few hundred KiB at most.
                var bomb = RawOtlpClient.Bomb(encoding, 256 << 20);
                Assert.True(bomb.Length < 512 * 1024, $"bomb is {bomb.Length} bytes");
                allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
                answer = await Send(gateway, transport, bomb, encoding);
                break;
            case "no_token":
                answer = await Send(gateway, transport, valid);
                break;
            case "wrong_token":
                answer = await Send(gateway, transport, valid, token: "not-the-token");
                Assert.DoesNotContain("s3cret-token", answer.Message, StringComparison.Ordinal);
                break;
            case "rate_limited":
                Assert.Equal(transport == "grpc" ? Ok : 200, (await Send(gateway, transport, valid)).Code);
                Assert.Equal(transport == "grpc" ? Ok : 200, (await Send(gateway, transport, valid)).Code);
                answer = await Send(gateway, transport, valid);
                break;
            case "over_point_limits":
                var request = RawOtlpClient.Request(metric, 4, (p, i) =>
                {
                    if (i == 1)
                    {
                        p.Attributes.Add(new OpenTelemetry.Proto.Common.V1.KeyValue { Key = "long", Value = new() { StringValue = new string('x', 65) } });
                    }
                    else if (i == 2)
                    {
                        for (var k = 0; k < 3; k++)
                        {
                            p.Attributes.Add(new OpenTelemetry.Proto.Common.V1.KeyValue { Key = "k" + k, Value = new() { StringValue = "v" } });
                        }
                    }
                });
                answer = await Send(gateway, transport, request.ToByteArray());
                Assert.Equal(2, answer.Rejected);
                Assert.NotEqual("", answer.Message);
                using (var prometheus = new PrometheusClient())
                {
                    // The two good points arrive; the two bad ones do not.
                    var kept = await prometheus.WaitForAsync(metric, r => r.Count == 2);
                    Assert.Equal(["0", "3"], kept.Select(s => s.Labels["i"]).Order());
                }

                break;
            case "memory_limit":
                answer = await Send(gateway, transport, valid);
                break;
            default:
                throw new InvalidOperationException(@case);
        }

        Assert.True(expected == answer.Code, $"{@case} over {transport}: expected {expected}, got {answer}");
        if (retryHint)
        {
            Assert.True(answer.RetryAfter > TimeSpan.Zero, $"no retry hint: {answer}");
        }

        if (@case.EndsWith("bomb", StringComparison.Ordinal))
        {
            // Inflating the bomb would allocate 256 MiB; capped decompression stops right after the 1 MiB limit.
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
            Assert.True(allocated < 64L << 20, $"{allocated / (1 << 20)} MiB allocated while refusing a bomb");
        }

        // Whatever went wrong, the gateway still takes good data afterwards.
        if (@case is not ("rate_limited" or "memory_limit" or "no_token" or "wrong_token"))
        {
            Assert.Equal(transport == "grpc" ? Ok : 200, (await Send(gateway, transport, valid)).Code);
        }
    }

    private static Task<OtlpAnswer> Send(TestGateway gateway, string transport, byte[] body, string? encoding = null, string? token = null) =>
        transport == "grpc"
            ? RawOtlpClient.GrpcAsync(gateway.GrpcPort, body, encoding, token)
            : RawOtlpClient.HttpAsync(gateway.HttpPort, body, encoding: encoding, token: token);
}

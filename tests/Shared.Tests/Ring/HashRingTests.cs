using OpenTelemetry.Proto.Common.V1;
using OpenTelemetry.Proto.Resource.V1;
using PgOtelGateway.Shared.Ring;
using Xunit;
using Xunit.Abstractions;

namespace PgOtelGateway.Shared.Tests.Ring;

public sealed class HashRingTests(ITestOutputHelper output)
{
    private const int Keys = 100_000;

    /// <summary>100,000 stream keys shaped like the agent's: 50 instances × 200 metrics × 10 attribute sets.</summary>
    private static ulong[] StreamKeys()
    {
        var keys = new ulong[Keys];
        var n = 0;
        for (var instance = 0; n < Keys; instance++)
        {
            var resource = new Resource();
            resource.Attributes.Add(Kv("service.name", "postgresql"));
            resource.Attributes.Add(Kv("service.instance.id", $"db-{instance}.example:5432"));
            var r = StreamHash.OfResource(resource);
            for (var metric = 0; metric < 200 && n < Keys; metric++)
            {
                var name = StreamHash.OfName($"postgresql.metric_{metric}");
                for (var db = 0; db < 10 && n < Keys; db++)
                {
                    var attributes = new Google.Protobuf.Collections.RepeatedField<KeyValue> { Kv("database_name", $"db{db}") };
                    keys[n++] = StreamHash.OfStream(r, name, StreamHash.OfAttributes(attributes));
                }
            }
        }

        return keys;
    }

    private static KeyValue Kv(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };

    private static int[] Counts(HashRing ring, ulong[] keys)
    {
        var counts = new int[ring.Members.Count];
        foreach (var key in keys)
        {
            counts[ring.OwnerOf(key)]++;
        }

        return counts;
    }

    [Theory]
    [InlineData("gateway-0,gateway-1,gateway-2", "gateway-3")]
    [InlineData("pgotel-gateway-0.pgotel-gateway-headless,pgotel-gateway-1.pgotel-gateway-headless,pgotel-gateway-2.pgotel-gateway-headless", "pgotel-gateway-3.pgotel-gateway-headless")]
    [InlineData("10.0.0.11:4317,10.0.0.12:4317,10.0.0.13:4317", "10.0.0.14:4317")]
    public void OwnerOf_ThreeToFourMembers_MovesAQuarterOfKeysOnlyToTheNewMember(string three, string added)
    {
        var keys = StreamKeys();
        var before = new HashRing(three.Split(','), 128);
        var after = new HashRing([.. three.Split(','), added], 128);
        var newcomer = after.IndexOf(added);
        var moved = 0;
        foreach (var key in keys)
        {
            var was = before.Members[before.OwnerOf(key)];
            var now = after.Members[after.OwnerOf(key)];
            if (was != now)
            {
                moved++;
                Assert.Equal(newcomer, after.OwnerOf(key));
            }
        }

        var fraction = moved / (double)Keys;
        output.WriteLine($"{three} + {added}: {fraction:P2} of {Keys} keys moved");
        Assert.InRange(fraction, 0.20, 0.30);
    }

    [Theory]
    [InlineData("gateway-0,gateway-1,gateway-2")]
    [InlineData("gateway-0,gateway-1,gateway-2,gateway-3")]
    [InlineData("10.0.0.11:4317,10.0.0.12:4317,10.0.0.13:4317,10.0.0.14:4317")]
    [InlineData("a,b,c,d,e,f")]
    public void OwnerOf_StreamKeys_SpreadWithinTenPercentOfEven(string members)
    {
        var ring = new HashRing(members.Split(','), 128);
        var even = Keys / (double)ring.Members.Count;
        var counts = Counts(ring, StreamKeys());
        output.WriteLine($"{members}: keys per member {string.Join(", ", counts)}; worst {counts.Max(c => Math.Abs(c - even)) / even:P2} off even");
        foreach (var count in counts)
        {
            Assert.InRange(count, even * 0.9, even * 1.1);
        }

        // The estimate the admin API shows agrees with the real spread.
        for (var m = 0; m < ring.Members.Count; m++)
        {
            Assert.InRange(ring.OwnedFraction(m), 0.9 / ring.Members.Count, 1.1 / ring.Members.Count);
        }
    }

    [Fact]
    public void OwnerOf_MemberLeaves_OnlyItsKeysMove()
    {
        var keys = StreamKeys();
        var before = new HashRing(["g0", "g1", "g2", "g3"], 128);
        var after = new HashRing(["g0", "g1", "g3"], 128);
        foreach (var key in keys)
        {
            var was = before.Members[before.OwnerOf(key)];
            if (was != "g2")
            {
                Assert.Equal(was, after.Members[after.OwnerOf(key)]);
            }
        }
    }

    [Fact]
    public void Constructor_MembersInAnyOrder_BuildTheSameRing()
    {
        var a = new HashRing(["g2", "g0", "g1"], 128);
        var b = new HashRing(["g1", "g2", "g0", "g1"], 128);
        Assert.Equal(a.Members, b.Members);
        foreach (var key in StreamKeys().AsSpan(0, 5000))
        {
            Assert.Equal(a.OwnerOf(key), b.OwnerOf(key));
        }
    }

    [Fact]
    public void Constructor_EveryTokenCollides_KeepsAllTokensDistinctAndDeterministic()
    {
        // At attempt 0 every member gets the same 16 tokens; later attempts fall back to the real derivation.
        static ulong Colliding(string id, int index, int attempt) => attempt == 0 ? (ulong)index * 1_000_003UL : HashRing.DefaultToken(id, index, attempt);
        var ring = new HashRing(["g0", "g1", "g2"], 16, Colliding);
        var reversed = new HashRing(["g2", "g1", "g0"], 16, Colliding);

        Assert.Equal(2 * 16, ring.Collisions);
        var all = new HashSet<ulong>();
        for (var m = 0; m < 3; m++)
        {
            var tokens = ring.TokensOf(m);
            Assert.Equal(16, tokens.Count);
            foreach (var t in tokens)
            {
                Assert.True(all.Add(t), "a token is held twice");
            }

            Assert.Equal(tokens, reversed.TokensOf(m));
            Assert.True(ring.OwnedFraction(m) > 0);
        }

        // The member that sorts first keeps the contested tokens.
        for (var j = 0; j < 16; j++)
        {
            Assert.Contains((ulong)j * 1_000_003UL, ring.TokensOf(0));
        }
    }

    [Fact]
    public void Constructor_TwoTokensOfOneMemberCollide_DerivesTheLaterAgain()
    {
        static ulong Colliding(string id, int index, int attempt) => attempt == 0 && index < 2 ? 42UL : HashRing.DefaultToken(id, index, attempt);
        var ring = new HashRing(["solo", "other"], 8, Colliding);
        Assert.Equal(8, ring.TokensOf(ring.IndexOf("solo")).Count);
        Assert.Equal(8, ring.TokensOf(ring.IndexOf("other")).Count);
        Assert.Equal(8 * 2, ring.TokensOf(0).Concat(ring.TokensOf(1)).Distinct().Count());
    }

    [Fact]
    public void OwnerOf_EmptyRing_ReturnsMinusOne()
    {
        Assert.Equal(-1, HashRing.Empty.OwnerOf(12345));
        Assert.Equal(0, new HashRing(["only"], 128).OwnerOf(12345));
    }

    [Fact]
    public void DefaultToken_IsStableAcrossBuilds()
    {
        // Gateways and agents of different builds must agree: pin values of the token derivation.
        Assert.Equal(892730631923437159UL, HashRing.DefaultToken("gateway-0", 0, 0));
        Assert.Equal(13403134002219151246UL, HashRing.DefaultToken("gateway-1", 127, 0));
        Assert.Equal(2305545480281484096UL, HashRing.DefaultToken("gateway-0", 3, 2));
        Assert.NotEqual(HashRing.DefaultToken("gateway-0", 0, 0), HashRing.DefaultToken("gateway-0", 1, 0));
        Assert.NotEqual(HashRing.DefaultToken("gateway-0", 0, 0), HashRing.DefaultToken("gateway-0", 0, 1));
        Assert.NotEqual(HashRing.DefaultToken("gateway-0", 0, 0), HashRing.DefaultToken("gateway-1", 0, 0));
    }
}

using System.IO.Hashing;
using System.Text;

namespace PgOtelGateway.Shared.Ring;

/// <summary>
/// An immutable consistent-hash ring over 64-bit hashes. Each member places <c>tokens_per_member</c> tokens
/// derived from its id alone, so every gateway and agent that knows the same members builds the same ring.
/// </summary>
/// <remarks>
/// <para>A key is looked up with several probes (multi-probe consistent hashing): the key's hash and
/// <see cref="Probes"/>−1 re-mixes of it each find their next token clockwise, and the token closest to its
/// probe wins. With 128 random tokens per member, one probe leaves members owning ±10–25 % of an even share;
/// eight probes bring that to a few per cent while keeping the consistent-hashing property: when a member joins,
/// keys move only to it, and when one leaves only its keys move.</para>
/// <para>Tokens never collide silently: when two tokens get the same value, the one of the member that sorts
/// first (ordinal id, then token index) keeps it and the other is derived again with the next attempt number,
/// until all are distinct. Every member thus has exactly its number of tokens, on every node alike.</para>
/// </remarks>
internal sealed class HashRing
{
    /// <summary>The default of <c>tokens_per_member</c>.</summary>
    public const int DefaultTokensPerMember = 128;

    /// <summary>Probes per lookup.</summary>
    public const int Probes = 8;

    private const ulong Golden = 0x9E3779B97F4A7C15UL;
    private const int OwnershipSamples = 1 << 16;

    private readonly ulong[] _tokens;
    private readonly int[] _owners;
    private readonly string[] _members;
    private double[]? _owned;

    /// <summary>A ring with no member: <see cref="OwnerOf"/> answers -1.</summary>
    public static readonly HashRing Empty = new([], DefaultTokensPerMember);

    /// <summary>Builds the ring of <paramref name="memberIds"/> (duplicates ignored).</summary>
    public HashRing(IEnumerable<string> memberIds, int tokensPerMember)
        : this(memberIds, tokensPerMember, DefaultToken)
    {
    }

    /// <summary>Builds the ring with a given token function (tests force collisions with it).</summary>
    internal HashRing(IEnumerable<string> memberIds, int tokensPerMember, Func<string, int, int, ulong> tokenOf)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(tokensPerMember, 1);
        var members = new SortedSet<string>(memberIds, StringComparer.Ordinal);
        _members = [.. members];
        TokensPerMember = tokensPerMember;
        var count = _members.Length * tokensPerMember;
        var entries = new Entry[count];
        for (var m = 0; m < _members.Length; m++)
        {
            for (var j = 0; j < tokensPerMember; j++)
            {
                entries[(m * tokensPerMember) + j] = new Entry(tokenOf(_members[m], j, 0), m, j, 0);
            }
        }

        while (true)
        {
            Array.Sort(entries);
            var again = false;
            for (int i = 1, kept = 0; i < entries.Length; i++)
            {
                // Sorted by (token, member, index): the first of equal tokens keeps its value, the rest move on.
                if (entries[i].Token == entries[kept].Token)
                {
                    var e = entries[i];
                    entries[i] = new Entry(tokenOf(_members[e.Member], e.Index, e.Attempt + 1), e.Member, e.Index, e.Attempt + 1);
                    Collisions++;
                    again = true;
                }
                else
                {
                    kept = i;
                }
            }

            if (!again)
            {
                break;
            }
        }

        _tokens = new ulong[count];
        _owners = new int[count];
        for (var i = 0; i < count; i++)
        {
            _tokens[i] = entries[i].Token;
            _owners[i] = entries[i].Member;
        }
    }

    /// <summary>The member ids, sorted (ordinal); <see cref="OwnerOf"/> answers an index into this list.</summary>
    public IReadOnlyList<string> Members => _members;

    /// <summary>Tokens each member holds.</summary>
    public int TokensPerMember { get; }

    /// <summary>Token collisions that were resolved while building (normally 0).</summary>
    public int Collisions { get; }

    /// <summary>The tokens held by member <paramref name="member"/>, sorted.</summary>
    internal IReadOnlyList<ulong> TokensOf(int member)
    {
        var list = new List<ulong>(TokensPerMember);
        for (var i = 0; i < _tokens.Length; i++)
        {
            if (_owners[i] == member)
            {
                list.Add(_tokens[i]);
            }
        }

        return list;
    }

    /// <summary>The index (into <see cref="Members"/>) of the member that owns <paramref name="hash"/>; -1 when empty.</summary>
    public int OwnerOf(ulong hash)
    {
        var tokens = _tokens;
        if (tokens.Length == 0)
        {
            return -1;
        }

        var best = ulong.MaxValue;
        var owner = -1;
        var probe = hash;
        for (var p = 0; ; )
        {
            var i = LowerBound(tokens, probe);
            if (i == tokens.Length)
            {
                i = 0;
            }

            var distance = unchecked(tokens[i] - probe);
            if (distance < best || (distance == best && _owners[i] < owner))
            {
                best = distance;
                owner = _owners[i];
            }

            if (++p == Probes)
            {
                return owner;
            }

            probe = Mix(unchecked(hash + ((ulong)p * Golden)));
        }
    }

    /// <summary>The first index whose token is ≥ <paramref name="value"/> (the length when none is).</summary>
    private static int LowerBound(ulong[] tokens, ulong value)
    {
        // Branch-free halving (the keys are random, so a branchy search mispredicts half its steps).
        int lo = 0, n = tokens.Length;
        while (n > 1)
        {
            var half = n >> 1;
            lo = tokens[lo + half] < value ? lo + half : lo;
            n -= half;
        }

        return lo + (tokens[lo] < value ? 1 : 0);
    }

    /// <summary>The index of <paramref name="id"/> in <see cref="Members"/>, or -1.</summary>
    public int IndexOf(string id) => Array.BinarySearch(_members, id, StringComparer.Ordinal) is var i and >= 0 ? i : -1;

    /// <summary>The share of the hash space member <paramref name="member"/> owns (estimated over 65,536 evenly mixed keys).</summary>
    public double OwnedFraction(int member)
    {
        var owned = _owned;
        if (owned is null)
        {
            owned = new double[_members.Length];
            if (_members.Length > 0)
            {
                for (var i = 0; i < OwnershipSamples; i++)
                {
                    owned[OwnerOf(Mix((ulong)i * Golden))] += 1.0 / OwnershipSamples;
                }
            }

            _owned = owned;
        }

        return member >= 0 && member < owned.Length ? owned[member] : 0;
    }

    /// <summary>The SplitMix64 finalizer: spreads any 64-bit value over the whole range.</summary>
    public static ulong Mix(ulong x)
    {
        unchecked
        {
            x ^= x >> 30;
            x *= 0xBF58476D1CE4E5B9UL;
            x ^= x >> 27;
            x *= 0x94D049BB133111EBUL;
            x ^= x >> 31;
            return x;
        }
    }

    /// <summary>Token <paramref name="index"/> of member <paramref name="id"/>: XXH3 of the id, seeded by index and attempt.</summary>
    internal static ulong DefaultToken(string id, int index, int attempt) =>
        XxHash3.HashToUInt64(Encoding.UTF8.GetBytes(id), ((long)attempt << 32) | (uint)index);

    private readonly record struct Entry(ulong Token, int Member, int Index, int Attempt) : IComparable<Entry>
    {
        public int CompareTo(Entry other)
        {
            var c = Token.CompareTo(other.Token);
            if (c != 0)
            {
                return c;
            }

            c = Member.CompareTo(other.Member);
            return c != 0 ? c : Index.CompareTo(other.Index);
        }
    }
}

namespace PgOtelGateway.Gateway.Dedup;

/// <summary>
/// A bounded LRU set of 128-bit point identities whose entries expire a fixed time after they were claimed. Entries
/// live in one growing array linked by index, so a claim allocates nothing once the cache has reached its size.
/// Not thread-safe: the caller holds one lock for a whole request.
/// </summary>
internal sealed class IdentityCache
{
    private const int None = -1;
    private readonly int _capacity;
    private readonly long _ttl;
    private readonly Dictionary<UInt128, int> _index;
    private Entry[] _entries;
    private int _used;
    private int _free = None;
    private int _head = None;
    private int _tail = None;

    /// <param name="capacity">Most identities held; the least recently used goes first.</param>
    /// <param name="ttl">How long an identity counts, in the unit of the <c>now</c> values passed in.</param>
    public IdentityCache(int capacity, long ttl)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _ttl = ttl;
        var initial = Math.Min(capacity, 4096);
        _entries = new Entry[initial];
        _index = new Dictionary<UInt128, int>(initial);
    }

    /// <summary>Identities held now (expired ones not yet removed included).</summary>
    public int Count => _index.Count;

    /// <summary>
    /// Claims <paramref name="identity"/>: true when it was not held (or had expired) and is held from now on;
    /// false when it is held, i.e. a duplicate (it becomes the most recently used).
    /// </summary>
    public bool TryClaim(UInt128 identity, long now)
    {
        if (_index.TryGetValue(identity, out var slot))
        {
            ref var entry = ref _entries[slot];
            MoveToFront(slot);
            if (entry.Expires > now)
            {
                return false;
            }

            entry.Expires = now + _ttl;
            return true;
        }

        RemoveExpiredTail(now);
        if (_index.Count >= _capacity)
        {
            Remove(_entries[_tail].Identity);
        }

        slot = Allocate();
        _entries[slot] = new Entry { Identity = identity, Expires = now + _ttl, Prev = None, Next = None };
        _index[identity] = slot;
        LinkFront(slot);
        return true;
    }

    /// <summary>Whether <paramref name="identity"/> is held and not expired; a hit becomes the most recently used.</summary>
    public bool Hit(UInt128 identity, long now)
    {
        if (!_index.TryGetValue(identity, out var slot))
        {
            return false;
        }

        MoveToFront(slot);
        return _entries[slot].Expires > now;
    }

    /// <summary>Whether <paramref name="identity"/> is held and not expired (does not change the order).</summary>
    public bool Contains(UInt128 identity, long now) => _index.TryGetValue(identity, out var slot) && _entries[slot].Expires > now;

    /// <summary>Forgets <paramref name="identity"/> (a claim whose data was not accepted downstream).</summary>
    public void Remove(UInt128 identity)
    {
        if (!_index.Remove(identity, out var slot))
        {
            return;
        }

        Unlink(slot);
        _entries[slot].Next = _free;
        _free = slot;
    }

    private void RemoveExpiredTail(long now)
    {
        // Entries near the tail were touched longest ago; those past their time go, so Count stays honest.
        while (_tail != None && _entries[_tail].Expires <= now)
        {
            Remove(_entries[_tail].Identity);
        }
    }

    private int Allocate()
    {
        if (_free != None)
        {
            var slot = _free;
            _free = _entries[slot].Next;
            return slot;
        }

        if (_used == _entries.Length)
        {
            Array.Resize(ref _entries, (int)Math.Min(_capacity, (long)_entries.Length * 2));
        }

        return _used++;
    }

    private void MoveToFront(int slot)
    {
        if (_head == slot)
        {
            return;
        }

        Unlink(slot);
        LinkFront(slot);
    }

    private void LinkFront(int slot)
    {
        ref var entry = ref _entries[slot];
        entry.Prev = None;
        entry.Next = _head;
        if (_head != None)
        {
            _entries[_head].Prev = slot;
        }

        _head = slot;
        if (_tail == None)
        {
            _tail = slot;
        }
    }

    private void Unlink(int slot)
    {
        ref var entry = ref _entries[slot];
        if (entry.Prev != None)
        {
            _entries[entry.Prev].Next = entry.Next;
        }
        else
        {
            _head = entry.Next;
        }

        if (entry.Next != None)
        {
            _entries[entry.Next].Prev = entry.Prev;
        }
        else
        {
            _tail = entry.Prev;
        }

        entry.Prev = None;
        entry.Next = None;
    }

    private struct Entry
    {
        public UInt128 Identity;
        public long Expires;
        public int Prev;
        public int Next;
    }
}

using Npgsql;

namespace PgOtelGateway.Agent.Collection;

/// <summary>
/// The agent's connections to one PostgreSQL instance: never more than <c>max_open_conns</c> open at once
/// across all databases, reused from scrape to scrape (so a steady state opens no new sessions), each with
/// <c>application_name=pgotel-agent</c> and the receiver's <c>statement_timeout</c>. When every slot is taken by
/// idle connections to other databases, the least recently used one is closed to make room.
/// </summary>
internal sealed class ConnectionBroker : IAsyncDisposable
{
    private readonly Func<string, NpgsqlDataSource> _dataSource;
    private readonly ConnectionPoolOptions _pool;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _slots;
    private readonly object _lock = new();
    private readonly LinkedList<Idle> _idle = new();

    public ConnectionBroker(Func<string, NpgsqlDataSource> dataSource, ConnectionPoolOptions pool, TimeProvider time)
    {
        _dataSource = dataSource;
        _pool = pool;
        _time = time;
        _slots = new SemaphoreSlim(pool.MaxOpenConns, pool.MaxOpenConns);
    }

    /// <summary>New sessions opened so far (for tests and the agent's metrics).</summary>
    public long Opened { get; private set; }

    /// <summary>Sessions closed so far, by why: broken, expired, evicted (to make room), surplus (over max_idle_conns).</summary>
    public IReadOnlyDictionary<string, long> ClosedByReason
    {
        get
        {
            lock (_closed)
            {
                return new Dictionary<string, long>(_closed);
            }
        }
    }

    private readonly Dictionary<string, long> _closed = [];

    private void CountClose(string reason)
    {
        lock (_closed)
        {
            _closed[reason] = _closed.GetValueOrDefault(reason) + 1;
        }
    }

    /// <summary>A connection to <paramref name="database"/>; give it back with <see cref="Release"/>.</summary>
    public async Task<NpgsqlConnection> AcquireAsync(string database, CancellationToken cancellationToken)
    {
        while (true)
        {
            NpgsqlConnection? evict = null;
            lock (_lock)
            {
                for (var node = _idle.First; node is not null; node = node.Next)
                {
                    if (node.Value.Database == database)
                    {
                        _idle.Remove(node);
                        if (Expired(node.Value))
                        {
                            evict = node.Value.Connection;
                            break;
                        }

                        return node.Value.Connection;
                    }
                }
            }

            if (evict is not null)
            {
                CountClose("expired");
                await evict.DisposeAsync().ConfigureAwait(false);
                _slots.Release();
                continue;
            }

            // A free slot opens a new connection; otherwise an idle one to another database makes way.
            if (!await _slots.WaitAsync(0, cancellationToken).ConfigureAwait(false))
            {
                if (await EvictLeastRecentlyUsedAsync().ConfigureAwait(false))
                {
                    continue;
                }

                await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            try
            {
                var connection = await _dataSource(database).OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                lock (_lock)
                {
                    Opened++;
                }

                return connection;
            }
            catch
            {
                _slots.Release();
                throw;
            }
        }
    }

    /// <summary>Returns a connection for reuse; a broken one is closed.</summary>
    public void Release(NpgsqlConnection connection, bool broken = false)
    {
        if (broken || connection.FullState != System.Data.ConnectionState.Open)
        {
            CountClose(broken ? "broken" : "not_open:" + connection.FullState);
            connection.Dispose();
            _slots.Release();
            return;
        }

        NpgsqlConnection? surplus = null;
        lock (_lock)
        {
            _idle.AddFirst(new Idle(connection, connection.Database, _time.GetTimestamp(), OpenedAt(connection)));
            if (_idle.Count > _pool.EffectiveMaxIdleConns)
            {
                surplus = _idle.Last!.Value.Connection;
                _idle.RemoveLast();
            }
        }

        if (surplus is not null)
        {
            CountClose("surplus");
            surplus.Dispose();
            _slots.Release();
        }
    }

    /// <summary>Closes idle connections past their idle time or lifetime (called between scrapes).</summary>
    public void Sweep()
    {
        var closing = new List<NpgsqlConnection>();
        lock (_lock)
        {
            for (var node = _idle.First; node is not null;)
            {
                var next = node.Next;
                if (Expired(node.Value))
                {
                    closing.Add(node.Value.Connection);
                    _idle.Remove(node);
                }

                node = next;
            }
        }

        foreach (var connection in closing)
        {
            CountClose("expired");
            connection.Dispose();
            _slots.Release();
        }
    }

    private bool Expired(Idle idle) =>
        _time.GetElapsedTime(idle.Since) > _pool.ConnMaxIdleTime || _time.GetElapsedTime(idle.Opened) > _pool.ConnMaxLifetime;

    private async Task<bool> EvictLeastRecentlyUsedAsync()
    {
        NpgsqlConnection? victim;
        lock (_lock)
        {
            if (_idle.Last is null)
            {
                return false;
            }

            victim = _idle.Last.Value.Connection;
            _idle.RemoveLast();
        }

        CountClose("evicted");
        await victim.DisposeAsync().ConfigureAwait(false);
        _slots.Release();
        return true;
    }

    // When each connection was opened, for conn_max_lifetime; entries go with their connections.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<NpgsqlConnection, object> _openedAt = new();

    private long OpenedAt(NpgsqlConnection connection) =>
        (long)_openedAt.GetValue(connection, _ => _time.GetTimestamp());

    public async ValueTask DisposeAsync()
    {
        List<Idle> all;
        lock (_lock)
        {
            all = [.. _idle];
            _idle.Clear();
        }

        foreach (var idle in all)
        {
            await idle.Connection.DisposeAsync().ConfigureAwait(false);
        }

        _slots.Dispose();
    }

    private sealed record Idle(NpgsqlConnection Connection, string Database, long Since, long Opened);
}

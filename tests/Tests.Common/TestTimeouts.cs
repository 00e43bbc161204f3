namespace PgOtelGateway.Tests.Common;

/// <summary>Bounds for awaits in tests, so a hang fails with a message instead of stalling the run.</summary>
public static class TestTimeouts
{
    /// <summary>For one request to a local server.</summary>
    public static readonly TimeSpan Short = TimeSpan.FromSeconds(30);

    /// <summary>For data to travel a pipeline and show up downstream.</summary>
    public static readonly TimeSpan Pipeline = TimeSpan.FromSeconds(90);

    /// <summary>Polls <paramref name="condition"/> until it holds or <paramref name="timeout"/> passes.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, TimeSpan? interval = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (await condition().WaitAsync(timeout).ConfigureAwait(false))
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is not TimeoutException)
            {
                last = ex;
            }

            await Task.Delay(interval ?? TimeSpan.FromMilliseconds(250)).ConfigureAwait(false);
        }

        throw new TimeoutException($"timed out after {timeout.TotalSeconds:0}s waiting for {what}" + (last is null ? "" : $" (last error: {last.Message})"), last);
    }
}

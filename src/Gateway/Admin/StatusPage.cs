using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace PgOtelGateway.Gateway.Admin;

/// <summary>
/// <c>GET /</c>: a self-contained HTML status page (inline CSS and JavaScript, no external assets). The page
/// itself holds no data and is served without a token; its script reads the JSON API with the token the
/// operator gives it (the URL fragment <c>#token=…</c>, which browsers never send to the server, or a form),
/// keeps it in <c>sessionStorage</c> and removes it from the address bar. A Content-Security-Policy allows
/// exactly this script and style and connections to this origin only; data is written with
/// <c>textContent</c>, never as HTML, because instance and agent names come from clients.
/// </summary>
internal static class StatusPage
{
    private const string Style = """

        [hidden] { display: none !important; }
        :root { color-scheme: light dark; --line: #8884; --muted: #888; --ok: #2a7d3a; --bad: #b3261e; --warn: #a86b00; }
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; padding: 1rem 1.5rem; max-width: 1400px; }
        h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
        h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; border-bottom: 1px solid var(--line); }
        table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
        th, td { text-align: left; padding: .2rem .6rem .2rem 0; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-weight: 600; white-space: nowrap; }
        td.num, th.num { text-align: right; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: 0 0 .75rem; }
        dt { color: var(--muted); }
        dd { margin: 0; }
        .note, footer { color: var(--muted); }
        .ok { color: var(--ok); font-weight: 600; }
        .bad { color: var(--bad); font-weight: 600; }
        .warn { color: var(--warn); font-weight: 600; }
        #message:empty { display: none; }
        #message { color: var(--bad); }
        form { margin: 1rem 0; display: flex; gap: .5rem; align-items: center; }
        input { font: inherit; padding: .2rem .4rem; min-width: 20rem; }

        """;

    private const string Script = """

        (() => {
          'use strict';
          const KEY = 'pgotel-admin-token';
          const $ = (id) => document.getElementById(id);
          let token = '';

          // The token travels in the fragment (never sent to any server) or is typed into the form.
          const fromFragment = /(?:^#|&)token=([^&]*)/.exec(location.hash);
          if (fromFragment) {
            token = decodeURIComponent(fromFragment[1]);
            try { sessionStorage.setItem(KEY, token); } catch (e) { /* storage off: keep it in memory */ }
            history.replaceState(null, '', location.pathname + location.search);
          } else {
            try { token = sessionStorage.getItem(KEY) || ''; } catch (e) { token = ''; }
          }

          class Unauthorized extends Error {}

          async function get(path) {
            const headers = { 'Accept': 'application/json' };
            if (token) { headers['Authorization'] = 'Bearer ' + token; }
            const response = await fetch('api/v1/' + path, { headers, cache: 'no-store', credentials: 'omit', redirect: 'error' });
            if (response.status === 401) { throw new Unauthorized('unauthorized'); }
            if (!response.ok) { throw new Error(path + ': HTTP ' + response.status); }
            return response.json();
          }

          const text = (v) => (v === null || v === undefined || v === '') ? '-' : String(v);
          const num = (v) => (v === null || v === undefined) ? '-' : Number(v).toLocaleString('en-US');
          function duration(seconds) {
            if (seconds === null || seconds === undefined) { return '-'; }
            const s = Math.max(0, seconds);
            if (s < 60) { return s.toFixed(s < 10 ? 1 : 0) + 's'; }
            const m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
            if (d > 0) { return d + 'd ' + (h % 24) + 'h'; }
            if (h > 0) { return h + 'h ' + String(m % 60).padStart(2, '0') + 'm'; }
            return m + 'm ' + String(Math.floor(s % 60)).padStart(2, '0') + 's';
          }
          function ago(iso) {
            if (!iso) { return '-'; }
            return duration((Date.now() - Date.parse(iso)) / 1000) + ' ago';
          }

          // cols: [header, value(row), className?]; every value is set with textContent.
          function fill(id, cols, rows, key) {
            const table = $(id);
            const head = document.createElement('thead');
            const hr = head.insertRow();
            for (const [title, , cls] of cols) {
              const th = document.createElement('th');
              th.textContent = title;
              // A header is right-aligned over a numeric column ('num', or a computed 'num …').
              const sample = typeof cls === 'function' ? cls(rows[0] || {}) : cls;
              if (String(sample || '').startsWith('num')) { th.className = 'num'; }
              hr.appendChild(th);
            }
            const body = document.createElement('tbody');
            for (const row of rows) {
              const tr = body.insertRow();
              if (key) { tr.dataset.id = key(row); }
              for (const [, value, cls] of cols) {
                const td = tr.insertCell();
                td.textContent = value(row);
                const c = typeof cls === 'function' ? cls(row) : cls;
                if (c) { td.className = c; }
              }
            }
            table.replaceChildren(head, body);
          }

          function note(id, enabled, what) {
            $(id).textContent = enabled ? '' : what;
            $(id).className = 'note';
          }

          function render(status, ring, ha, dedup, exporters, instances) {
            $('gateway-id').textContent = status.id;
            document.title = 'pgotel gateway ' + status.id;
            const dl = $('status');
            dl.replaceChildren();
            for (const [k, v, cls] of [
              ['id', status.id], ['version', status.version], ['ready', status.ready ? 'yes' : 'no', status.ready ? 'ok' : 'bad'],
              ['uptime', duration(status.uptime_seconds)], ['started', status.started_at.replace(/\.\d+Z$/, 'Z')]]) {
              const dt = document.createElement('dt'); dt.textContent = k;
              const dd = document.createElement('dd'); dd.textContent = v;
              if (cls) { dd.className = cls; }
              dl.append(dt, dd);
            }
            fill('pipelines', [
              ['pipeline', (p) => p.id], ['receivers', (p) => p.receivers.join(', ')],
              ['processors', (p) => text(p.processors.join(', '))], ['exporters', (p) => p.exporters.join(', ')]],
              status.pipelines, (p) => p.id);

            note('ring-note', ring.enabled, 'No ring is configured: this gateway owns every stream.');
            fill('ring-members', [
              ['member', (m) => m.id + (m.self ? ' (self)' : '')], ['address', (m) => m.address],
              ['state', (m) => m.state, (m) => m.state === 'ACTIVE' ? 'ok' : 'warn'],
              ['last heartbeat', (m) => ago(m.last_heartbeat)],
              ['owned', (m) => (m.owned_fraction * 100).toFixed(1) + '%', 'num']],
              ring.members, (m) => m.id);

            note('ha-note', ha.enabled, 'No ha_tracker processor runs.');
            fill('ha-clusters', [
              ['cluster', (c) => c.cluster], ['elected replica', (c) => c.elected_replica], ['since', (c) => ago(c.since)],
              ['failovers', (c) => num(c.failovers), 'num'], ['processor', (c) => c.processor]],
              ha.clusters, (c) => c.cluster);

            note('dedup-note', dedup.enabled, 'No dedupe processor runs.');
            fill('dedup-processors', [
              ['processor', (d) => d.processor], ['cache size', (d) => num(d.cache_size), 'num'],
              ['hits local', (d) => num(d.hits_local), 'num'], ['hits Redis', (d) => num(d.hits_redis), 'num'],
              ['misses', (d) => num(d.misses), 'num'], ['Redis errors', (d) => num(d.redis_errors), (d) => d.redis_errors > 0 ? 'num warn' : 'num'],
              ['Redis round trips', (d) => num(d.redis_round_trips), 'num']],
              dedup.processors, (d) => d.processor);

            fill('exporters', [
              ['exporter', (e) => e.name], ['queue', (e) => num(e.queue_records), 'num'], ['queue bytes', (e) => num(e.queue_bytes), 'num'],
              ['oldest', (e) => duration(e.oldest_item_age_seconds), 'num'], ['sent', (e) => num(e.sent_points), 'num'],
              ['failed', (e) => num(e.failed_points), (e) => e.failed_points > 0 ? 'num warn' : 'num'],
              ['dropped', (e) => num(e.dropped_points), (e) => e.dropped_points > 0 ? 'num bad' : 'num'],
              ['last error', (e) => e.last_error ? e.last_error + ' (' + ago(e.last_error_time) + ')' : '-']],
              exporters.exporters, (e) => e.name);

            note('instances-note', instances.enabled,
              'No instance tracker runs.');
            if (instances.enabled && instances.over_limit_resources > 0) {
              $('instances-note').textContent = num(instances.over_limit_resources) + ' resources were not tracked: max_instances reached.';
            }
            fill('instances', [
              ['cluster', (i) => text(i.cluster)], ['instance', (i) => i.instance], ['role', (i) => text(i.role)],
              ['agents', (i) => text(i.agents.map((a) => a.id).join(', '))], ['last seen', (i) => ago(i.last_seen)],
              ['series', (i) => num(i.series), 'num'], ['points/s', (i) => Number(i.points_per_second).toFixed(1), 'num']],
              instances.instances, (i) => i.cluster + '/' + i.instance);

            $('updated').textContent = 'Updated ' + new Date().toISOString().replace(/\.\d+Z$/, 'Z') + '.';
          }

          function askForToken(message) {
            $('content').hidden = true;
            $('token-form').hidden = false;
            $('message').textContent = message;
            $('token-input').focus();
          }

          let timer = 0;
          async function refresh() {
            clearTimeout(timer);
            try {
              const results = await Promise.all(['status', 'ring', 'ha', 'dedup', 'exporters', 'instances'].map(get));
              $('token-form').hidden = true;
              $('content').hidden = false;
              $('message').textContent = '';
              render(...results);
            } catch (e) {
              if (e instanceof Unauthorized) {
                askForToken(token ? 'The admin token was not accepted.' : 'This gateway asks for its admin token.');
                return;
              }
              $('message').textContent = 'Cannot read the admin API: ' + e.message;
            }
            timer = setTimeout(refresh, 5000);
          }

          $('token-form').addEventListener('submit', (event) => {
            event.preventDefault();
            token = $('token-input').value.trim();
            $('token-input').value = '';
            try { sessionStorage.setItem(KEY, token); } catch (e) { /* memory only */ }
            refresh();
          });

          refresh();
        })();

        """;

    private const string Body = """
        <header>
        <h1>pgotel gateway <span id="gateway-id"></span></h1>
        <p id="message" role="status"></p>
        </header>
        <form id="token-form" hidden>
        <label for="token-input">Admin token</label>
        <input id="token-input" type="password" autocomplete="off" required>
        <button type="submit">Show status</button>
        </form>
        <main id="content">
        <section><h2>Status</h2><dl id="status"></dl><table id="pipelines"></table></section>
        <section><h2>Ring</h2><p id="ring-note" class="note"></p><table id="ring-members"></table></section>
        <section><h2>HA elections</h2><p id="ha-note" class="note"></p><table id="ha-clusters"></table></section>
        <section><h2>Dedup</h2><p id="dedup-note" class="note"></p><table id="dedup-processors"></table></section>
        <section><h2>Exporters</h2><table id="exporters"></table></section>
        <section><h2>PostgreSQL instances</h2><p id="instances-note" class="note"></p><table id="instances"></table></section>
        </main>
        <footer><p>Refreshes every 5 s. <span id="updated"></span> JSON: <code>/api/v1/status</code>, <code>ring</code>, <code>ha</code>, <code>dedup</code>, <code>exporters</code>, <code>instances</code>, <code>config</code>.</p></footer>
        """;

    /// <summary>The page, UTF-8.</summary>
    public static ReadOnlyMemory<byte> Html { get; } = Encoding.UTF8.GetBytes(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n" +
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n" +
        "<meta name=\"referrer\" content=\"no-referrer\">\n<title>pgotel gateway</title>\n" +
        "<link rel=\"icon\" href=\"data:,\">\n" +
        "<style>" + Style + "</style>\n</head>\n<body>\n" + Body + "\n<script>" + Script + "</script>\n</body>\n</html>\n");

    /// <summary>
    /// Only the inline script and style above (by hash), connections to this origin, nothing else: an injected
    /// tag or attribute handler would not run.
    /// </summary>
    public static string ContentSecurityPolicy { get; } =
        "default-src 'none'; " +
        $"script-src 'sha256-{Sha256(Script)}'; " +
        $"style-src 'sha256-{Sha256(Style)}'; " +
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    /// <summary>Writes the page with its security headers.</summary>
    public static Task ServeAsync(HttpContext context)
    {
        var headers = context.Response.Headers;
        headers.ContentType = "text/html; charset=utf-8";
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.CacheControl = "no-store";
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        context.Response.ContentLength = Html.Length;
        return context.Response.Body.WriteAsync(Html, context.RequestAborted).AsTask();
    }

    private static string Sha256(string text) => Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}

// dashboard.ts: the HTML of GET /ui, one self-contained page (inline CSS, SVG and script, no CDN)
// that polls the gated JSON endpoints with the token kept in sessionStorage. Holds no data itself:
// the page is served without the token, so it must never embed counts, jobs or secrets.

/** The dashboard page; constant text, so the route can serve it before any token is checked. */
export function dashboardPage(): string {
  return PAGE;
}

const STYLE = `
  :root { color-scheme: light dark; --fg: #1b1f24; --muted: #6a737d; --line: #d0d7de; --bg: #fff; --card: #f6f8fa; --accent: #0969da; --bad: #cf222e; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #8b949e; --line: #30363d; --bg: #0d1117; --card: #161b22; --accent: #4493f8; --bad: #f85149; } }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; gap: 1rem; align-items: center; padding: .75rem 1.25rem; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.1rem; margin: 0; flex: 1; }
  main { padding: 1rem 1.25rem; display: grid; gap: 1rem; max-width: 1100px; }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; }
  h2 { font-size: .95rem; margin: 0 0 .5rem; }
  .tiles { display: flex; flex-wrap: wrap; gap: .75rem; }
  .tile { min-width: 7rem; }
  .tile b { display: block; font-size: 1.6rem; font-variant-numeric: tabular-nums; }
  .tile span { color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { color: var(--muted); font-weight: 600; font-size: .8rem; }
  td.err { max-width: 28rem; overflow-wrap: anywhere; color: var(--bad); }
  td.paused { color: var(--bad); font-weight: 600; }
  button { font: inherit; padding: .2rem .6rem; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); cursor: pointer; }
  button:hover { border-color: var(--accent); }
  input { font: inherit; padding: .2rem .4rem; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); }
  #status { color: var(--muted); font-size: .85rem; }
  #status.bad { color: var(--bad); }
  svg polyline { fill: none; stroke: var(--accent); stroke-width: 2; }
  .muted { color: var(--muted); }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0 0; }
  dt { color: var(--muted); }
  dd { margin: 0; overflow-wrap: anywhere; }
`;

// Runs in the browser. Builds every node with textContent, so nothing from the API is parsed as HTML.
const SCRIPT = `
(() => {
  const KEY = "jobqueue.token";
  const STATES = ["pending", "scheduled", "inflight", "dead", "completed"];
  const SAMPLES = 30; // one per 2 s poll: the last minute
  const history = [];
  const $ = (id) => document.getElementById(id);
  const el = (tag, text) => { const n = document.createElement(tag); if (text !== undefined) n.textContent = String(text); return n; };

  async function api(method, path) {
    const headers = {};
    const token = sessionStorage.getItem(KEY);
    if (token) headers.authorization = "Bearer " + token;
    const res = await fetch(path, { method, headers });
    const text = await res.text();
    const body = text && (res.headers.get("content-type") || "").includes("json") ? JSON.parse(text) : text;
    if (!res.ok) {
      const msg = body && body.error ? body.error.code + ": " + body.error.message : "HTTP " + res.status;
      throw Object.assign(new Error(msg), { status: res.status });
    }
    return body;
  }

  function status(text, bad) { const s = $("status"); s.textContent = text; s.className = bad ? "bad" : ""; }

  function metric(text, name) {
    const m = new RegExp("^" + name + "(?:\\\\{[^}]*\\\\})? ([^ \\\\n]+)", "m").exec(text);
    return m ? Number(m[1]) : null;
  }

  /** Sum of every series of a metric (all label sets), or null when absent. */
  function sumMetric(text, name) {
    let total = null;
    for (const line of text.split("\\n")) {
      if (!line.startsWith(name + " ") && !line.startsWith(name + "{")) continue;
      const v = Number(line.slice(line.lastIndexOf(" ") + 1));
      if (Number.isFinite(v)) total = (total ?? 0) + v;
    }
    return total;
  }

  /** Draws a history of values into one of the page's sparklines. */
  function drawSpark(id, values) {
    const max = Math.max(1e-9, ...values);
    const step = 200 / (SAMPLES - 1);
    const offset = SAMPLES - values.length;
    $(id).setAttribute("points", values.map((v, i) => ((offset + i) * step).toFixed(1) + "," + (38 - (v / max) * 36).toFixed(1)).join(" "));
  }

  /** Mean ready-to-start wait over the last poll interval, from the wait histogram's sum and count. */
  const waitHistory = [];
  let lastWait = null;
  function renderWait(text) {
    const sum = sumMetric(text, "jobqueue_job_wait_seconds_sum"), count = sumMetric(text, "jobqueue_job_wait_seconds_count");
    if (sum === null || count === null) return;
    if (lastWait && count >= lastWait.count) {
      const n = count - lastWait.count;
      const ms = n > 0 ? ((sum - lastWait.sum) / n) * 1000 : 0;
      waitHistory.push(ms);
      if (waitHistory.length > SAMPLES) waitHistory.shift();
      $("wait").textContent = n > 0 ? ms.toFixed(ms < 10 ? 2 : 0) + " ms" : "idle";
      drawSpark("wait-spark", waitHistory);
    }
    lastWait = { sum, count };
  }

  function renderStats(stats) {
    for (const s of STATES) $("count-" + s).textContent = stats.jobs[s];
    $("completed").textContent = stats.completedLastMinute;
    $("oldest").textContent = stats.oldestReadyAgeSeconds === null ? "none" : stats.oldestReadyAgeSeconds.toFixed(1) + " s";
    const body = $("types").tBodies[0];
    body.replaceChildren(...Object.entries(stats.types).sort(([a], [b]) => a.localeCompare(b)).map(([type, c]) => {
      const tr = el("tr");
      tr.dataset.type = type;
      tr.append(el("td", type), ...STATES.map((s) => el("td", c[s])));
      return tr;
    }));
    if (body.rows.length === 0) { const tr = el("tr"); const td = el("td", "no jobs"); td.colSpan = 6; td.className = "muted"; tr.append(td); body.append(tr); }
    history.push(stats.completedLastMinute);
    if (history.length > SAMPLES) history.shift();
    drawSpark("spark", history);
  }

  function renderDead(page) {
    const body = $("dead").tBodies[0];
    body.replaceChildren(...page.jobs.map((job) => {
      const tr = el("tr");
      tr.dataset.id = job.id;
      const err = el("td", job.lastError ?? ""); err.className = "err";
      const retry = el("button", "Retry"); retry.className = "retry";
      retry.onclick = () => act("POST", "/dead/" + job.id + "/retry", "retried job " + job.id);
      const del = el("button", "Delete"); del.className = "delete";
      del.onclick = () => { if (window.confirm("Delete dead job " + job.id + "? This cannot be undone.")) act("DELETE", "/dead/" + job.id, "deleted job " + job.id); };
      const actions = el("td"); actions.append(retry, " ", del);
      tr.append(el("td", job.id), el("td", job.type), el("td", job.attempts + "/" + job.maxAttempts), el("td", job.failedAt ?? ""), err, actions);
      return tr;
    }));
    if (body.rows.length === 0) { const tr = el("tr"); const td = el("td", "no dead jobs"); td.colSpan = 6; td.className = "muted"; tr.append(td); body.append(tr); }
    $("dead-more").textContent = page.next === null ? "" : "showing the first " + page.jobs.length + "; more with GET /dead?after=" + page.next;
  }

  function renderJobTypes(reply) {
    const body = $("job-types").tBodies[0];
    body.replaceChildren(...reply.types.map((t) => {
      const tr = el("tr");
      tr.dataset.type = t.type;
      const state = el("td", t.paused ? "paused" : "active"); state.className = t.paused ? "state paused" : "state";
      const button = el("button", t.paused ? "Resume" : "Pause"); button.className = t.paused ? "resume" : "pause";
      const verb = t.paused ? "resume" : "pause";
      button.onclick = () => act("POST", "/types/" + encodeURIComponent(t.type) + "/" + verb, (t.paused ? "resumed " : "paused ") + t.type);
      const actions = el("td"); actions.append(button);
      tr.append(el("td", t.type), state, el("td", t.running), el("td", t.waiting), actions);
      return tr;
    }));
    if (body.rows.length === 0) { const tr = el("tr"); const td = el("td", "no job types registered"); td.colSpan = 5; td.className = "muted"; tr.append(td); body.append(tr); }
  }

  async function act(method, path, done) {
    try { await api(method, path); status(done); await poll(); } catch (e) { status(e.message, true); }
  }

  async function poll() {
    try {
      const [stats, dead, types] = await Promise.all([api("GET", "/stats"), api("GET", "/dead?limit=50"), api("GET", "/types")]);
      renderStats(stats);
      renderJobTypes(types);
      renderDead(dead);
      try {
        const text = await api("GET", "/metrics");
        const busy = metric(text, "jobqueue_workers_busy"), all = metric(text, "jobqueue_workers");
        $("busy").textContent = busy === null ? "?" : busy + (all === null ? "" : " / " + all);
        renderWait(text);
      } catch { $("busy").textContent = "?"; }
      status("updated " + new Date().toLocaleTimeString());
    } catch (e) {
      status(e.status === 401 ? "unauthorized: enter the API token above" : e.message, true);
    }
  }

  async function lookup(ev) {
    ev.preventDefault();
    const id = $("lookup-id").value.trim();
    const out = $("lookup-result");
    out.replaceChildren();
    if (!/^[1-9][0-9]*$/.test(id)) { out.append(el("p", "a job id is a positive integer")); return; }
    try {
      const job = await api("GET", "/jobs/" + id);
      const dl = el("dl");
      for (const [k, v, key] of [["id", job.id, "id"], ["type", job.type, "type"], ["state", job.state, "state"],
          ["attempts", job.attempts + "/" + job.maxAttempts, "attempts"], ["last error", job.lastError ?? "none", "error"]]) {
        const dd = el("dd", v); dd.id = "job-" + key;
        dl.append(el("dt", k), dd);
      }
      out.append(dl);
    } catch (e) { const p = el("p", e.message); p.id = "job-missing"; out.append(p); }
  }

  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY);
    $("token").value = "";
    $("token").placeholder = t ? "token set" : "API token";
    poll();
  });
  $("lookup-form").addEventListener("submit", lookup);
  if (sessionStorage.getItem(KEY)) $("token").placeholder = "token set";
  poll();
  setInterval(poll, 2000);
})();
`;

const tile = (id: string, label: string) => `<div class="tile"><b id="${id}">–</b><span>${label}</span></div>`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jobqueue dashboard</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>jobqueue</h1>
  <span id="status">loading…</span>
  <form id="token-form"><input id="token" type="password" placeholder="API token" autocomplete="off" size="24"> <button type="submit">Set token</button></form>
</header>
<main>
  <section>
    <h2>Jobs by state</h2>
    <div class="tiles">
      ${tile("count-pending", "pending")}${tile("count-scheduled", "scheduled")}${tile("count-inflight", "inflight")}${tile("count-dead", "dead")}${tile("count-completed", "completed kept")}
    </div>
  </section>
  <section>
    <h2>Throughput and workers</h2>
    <div class="tiles">
      <div class="tile"><b id="completed">–</b><span>completed, last minute</span></div>
      <div class="tile"><svg width="200" height="40" viewBox="0 0 200 40" aria-label="completions over the last minute"><line x1="0" y1="38.5" x2="200" y2="38.5" stroke="currentColor" stroke-opacity=".25"></line><polyline id="spark" points=""></polyline></svg><br><span>last minute, every 2 s</span></div>
      ${tile("busy", "workers busy")}${tile("oldest", "oldest waiting")}
      ${tile("wait", "wait, ready to start (mean, last 2 s)")}
      <div class="tile"><svg width="200" height="40" viewBox="0 0 200 40" aria-label="mean wait from ready to start over the last minute"><line x1="0" y1="38.5" x2="200" y2="38.5" stroke="currentColor" stroke-opacity=".25"></line><polyline id="wait-spark" points=""></polyline></svg><br><span>wait over the last minute</span></div>
    </div>
  </section>
  <section>
    <h2>By type</h2>
    <table id="types"><thead><tr><th>type</th><th>pending</th><th>scheduled</th><th>inflight</th><th>dead</th><th>completed</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Job types</h2>
    <table id="job-types"><thead><tr><th>type</th><th>state</th><th>running</th><th>waiting</th><th></th></tr></thead><tbody></tbody></table>
    <p class="muted">A paused type accepts submits and starts nothing, on every node sharing the database, until resumed; running jobs finish.</p>
  </section>
  <section>
    <h2>Dead letters</h2>
    <table id="dead"><thead><tr><th>id</th><th>type</th><th>attempts</th><th>failed at</th><th>last error</th><th></th></tr></thead><tbody></tbody></table>
    <p id="dead-more" class="muted"></p>
  </section>
  <section>
    <h2>Find a job</h2>
    <form id="lookup-form"><input id="lookup-id" inputmode="numeric" placeholder="job id" size="12"> <button type="submit">Look up</button></form>
    <div id="lookup-result"></div>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

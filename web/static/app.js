// inboxd dashboard: plain ES2020, no dependencies, no build step.
// Everything that comes from the daemon is inserted as text (textContent or text nodes),
// never parsed as HTML: file names, lines and messages are untrusted.
"use strict";

(() => {
  const TOKEN_KEY = "inboxd.token";
  const POLL_MS = 1000;
  const FIRST_RATE_MS = 250; // the page's second sample, right after its first
  const LIVE_WINDOW_S = 300;
  const LIVE_MIN_S = 60;
  const RATE_WINDOW_S = 5;
  const SLOW_EVERY_MS = 5000;
  const TRACE_EVERY_MS = 5000;
  const ERRORS_LIMIT = 50;
  const FILES_LIMIT = 100;
  const ERRORS_EVERY_MS = 2000;
  const TRACES_LIMIT = 50;
  const DEADLETTER_LIMIT = 50;
  const PALETTE_SIZE = 8;
  const RANGES = {
    live: null,
    "1h": { span: 3600, step: 30 },
    "24h": { span: 86400, step: 600 },
    "7d": { span: 604800, step: 3600 },
  };

  const $ = (id) => document.getElementById(id);

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    samples: [], // [{t, stats}] from /stats, newest last, the live chart's data
    processors: [], // names in /stats order, for colours and the errors filter
    visible: new Set(),
    due: {}, // panel -> time (ms) of its last refresh
    range: "live",
    history: null, // {range, rows, at}
    health: null, // {uptime, at}
    tracing: false,
    errorsTotal: -1,
    errorsFilter: "",
    errorItems: [], // newest last, at most ERRORS_LIMIT
    expanded: new Set(), // keys of the error rows opened to show their details
    fileSeen: new Map(), // path -> {value, t, rate}: per-file read rates (bytes/s)
    sinkSeen: new Map(), // sink name -> {value, t, rate}: per-sink delivery rates (lines/s)
    bytes: 0,
    requests: 0,
  };

  // -- DOM helpers -------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function cell(row, text, className) {
    const td = el("td", className, text);
    row.appendChild(td);
    return td;
  }

  function fill(tbodyId, items, build) {
    const body = $(tbodyId);
    const rows = items.map(build);
    body.replaceChildren(...rows);
    const empty = $(tbodyId + "-empty");
    if (empty) empty.hidden = items.length > 0;
  }

  // -- formatting --------------------------------------------------------------------

  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  function fmtCount(n) {
    return integer.format(n);
  }

  function fmtRate(r) {
    if (!Number.isFinite(r)) return "–";
    if (r >= 1e6) return decimal.format(r / 1e6) + "M";
    if (r >= 1e4) return decimal.format(r / 1e3) + "k";
    return r >= 100 ? integer.format(r) : decimal.format(r);
  }

  function fmtSeconds(s) {
    if (!Number.isFinite(s)) return "–";
    if (s >= 1) return s.toFixed(2) + " s";
    if (s >= 1e-3) return (s * 1e3).toFixed(2) + " ms";
    return (s * 1e6).toFixed(1) + " µs";
  }

  function fmtBytes(n) {
    if (n < 1024) return n + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    return decimal.format(v) + " " + units[i];
  }

  function fmtDuration(s) {
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    if (d) return `${d}d ${h}h ${m}m`;
    if (h) return `${h}h ${m}m ${sec}s`;
    return m ? `${m}m ${sec}s` : `${sec}s`;
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function fmtTime(ts) {
    if (typeof ts !== "number") return "";
    const d = new Date(ts * 1000);
    const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    const today = new Date();
    if (d.toDateString() === today.toDateString()) return clock;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}`;
  }

  function where(file, lineNo) {
    if (!file) return "";
    return lineNo === null || lineNo === undefined ? file : `${file}:${lineNo}`;
  }

  // -- API and token -----------------------------------------------------------------

  let tokenWaiter = null;

  function askToken(refused) {
    if (tokenWaiter) return tokenWaiter;
    const overlay = $("auth");
    $("auth-error").hidden = !refused;
    overlay.hidden = false;
    const input = $("auth-token");
    input.value = "";
    input.focus();
    tokenWaiter = new Promise((resolve) => {
      $("auth-form").addEventListener(
        "submit",
        (event) => {
          event.preventDefault();
          state.token = input.value.trim();
          sessionStorage.setItem(TOKEN_KEY, state.token);
          overlay.hidden = true;
          tokenWaiter = null;
          resolve();
        },
        { once: true },
      );
    });
    return tokenWaiter;
  }

  async function api(path, asText) {
    for (;;) {
      const headers = {};
      if (state.token) headers.Authorization = "Bearer " + state.token;
      const response = await fetch(path, { headers, cache: "no-store" });
      const body = await response.text();
      state.requests += 1;
      state.bytes += Number(response.headers.get("content-length")) || body.length;
      if (response.status === 401) {
        await askToken(Boolean(state.token));
        continue;
      }
      if (!response.ok) throw new Error(`${path} answered ${response.status}`);
      return asText ? body : JSON.parse(body);
    }
  }

  function query(path, params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== "" && value !== null && value !== undefined) search.set(key, String(value));
    }
    const text = search.toString();
    return text ? `${path}?${text}` : path;
  }

  // -- header ------------------------------------------------------------------------

  function renderHealth(doc) {
    state.health = { uptime: doc.uptime, at: performance.now() };
    const pill = { ok: "pill-ok", degraded: "pill-warn" }[doc.status] || "pill-bad";
    setPill($("health"), doc.status, pill);
    renderHealthBanner(doc);
    $("version").textContent = doc.version || "–";
    state.tracing = doc.tracing === true;
    setPill($("tracing"), state.tracing ? "on" : "off", state.tracing ? "pill-on" : "pill-off");
    $("panel-traces").hidden = !state.tracing;
  }

  // The checks that are not ok, each with its reason and since when.
  function renderHealthBanner(doc) {
    const banner = $("health-banner");
    const bad = Object.entries(doc.checks || {}).filter(([, c]) => c && c.status !== "ok");
    if (doc.error) bad.push(["daemon", { status: doc.status, reason: doc.error }]);
    banner.hidden = doc.status === "ok" && bad.length === 0;
    if (banner.hidden) return;
    banner.className = "banner banner-" + (doc.status === "degraded" ? "warn" : "bad");
    const items = bad.map(([name, c]) => {
      const item = el("span", "banner-item");
      item.appendChild(el("strong", "", `${name} ${c.status}`));
      if (c.reason) item.appendChild(document.createTextNode(": " + c.reason));
      if (typeof c.since === "number") item.appendChild(el("span", "muted", ` since ${fmtTime(c.since)}`));
      return item;
    });
    banner.replaceChildren(el("strong", "banner-status", doc.status), ...items);
  }

  function setPill(node, text, cls) {
    node.textContent = text;
    node.className = "pill " + cls;
  }

  function tickUptime() {
    if (!state.health) return;
    const uptime = state.health.uptime + (performance.now() - state.health.at) / 1000;
    $("uptime").textContent = fmtDuration(uptime);
  }

  // -- processors --------------------------------------------------------------------

  function addSample(stats) {
    const t = Date.now() / 1000;
    state.samples.push({ t, stats });
    while (state.samples.length && state.samples[0].t < t - LIVE_WINDOW_S) state.samples.shift();
    const names = Object.keys(stats);
    for (const name of names) {
      if (!state.processors.includes(name)) state.processors.push(name);
    }
    syncProcessorFilter();
  }

  function rateOf(name) {
    const n = state.samples.length;
    if (n < 2) return NaN;
    const last = state.samples[n - 1];
    let first = state.samples[n - 2];
    for (let i = n - 2; i >= 0 && last.t - state.samples[i].t <= RATE_WINDOW_S; i -= 1) {
      first = state.samples[i];
    }
    const a = first.stats[name];
    const b = last.stats[name];
    const dt = last.t - first.t;
    if (!a || !b || dt <= 0) return b ? 0 : NaN;
    return Math.max(0, b.count - a.count) / dt;
  }

  function renderProcessors(stats) {
    const names = Object.keys(stats);
    fill("processors", names, (name) => {
      const s = stats[name];
      const row = el("tr");
      const nameCell = cell(row, "");
      nameCell.appendChild(el("span", "swatch s" + colourOf(name)));
      nameCell.appendChild(document.createTextNode(name));
      row.dataset.processor = name;
      cell(row, fmtCount(s.count), "num count");
      cell(row, fmtRate(rateOf(name)), "num rate");
      cell(row, s.count ? fmtSeconds(s.time / s.count) : "–", "num opt");
      cell(row, fmtCount(s.errors), s.errors ? "num errors bad" : "num errors");
      cell(row, fmtCount(s.retries), s.retries ? "num warn" : "num");
      return row;
    });
  }

  function colourOf(name) {
    const i = state.processors.indexOf(name);
    return (i < 0 ? 0 : i) % PALETTE_SIZE;
  }

  function syncProcessorFilter() {
    const select = $("errors-processor");
    const known = new Set(Array.from(select.options, (o) => o.value));
    for (const name of state.processors) {
      if (!known.has(name)) select.appendChild(new Option(name, name));
    }
  }

  // -- chart -------------------------------------------------------------------------

  function liveSeries() {
    const series = new Map();
    const errors = [];
    for (let i = 1; i < state.samples.length; i += 1) {
      const a = state.samples[i - 1];
      const b = state.samples[i];
      const dt = b.t - a.t;
      if (dt <= 0) continue;
      let errs = 0;
      for (const [name, s] of Object.entries(b.stats)) {
        const prev = a.stats[name] || { count: 0, errors: 0 };
        if (!series.has(name)) series.set(name, []);
        series.get(name).push([b.t, Math.max(0, s.count - prev.count) / dt]);
        errs += Math.max(0, s.errors - prev.errors);
      }
      errors.push([b.t, errs / dt]);
    }
    // The axis grows with the samples (one minute at least) up to the live window, so a
    // fresh page does not squeeze its first seconds against the right edge.
    const now = Date.now() / 1000;
    const first = state.samples.length ? state.samples[0].t : now;
    const from = Math.max(now - LIVE_WINDOW_S, Math.min(first, now - LIVE_MIN_S));
    return { series, errors, from, to: now, step: POLL_MS / 1000 };
  }

  function historySeries(range, rows) {
    const { span, step } = RANGES[range];
    const to = Date.now() / 1000;
    const from = to - span;
    const buckets = [];
    for (let t = Math.floor(from / step) * step; t <= to; t += step) buckets.push(t);
    const index = new Map(buckets.map((t, i) => [t, i]));
    const series = new Map();
    const errs = buckets.map(() => 0);
    for (const row of rows) {
      const i = index.get(row.ts);
      if (i === undefined) continue;
      if (!series.has(row.processor)) series.set(row.processor, buckets.map(() => 0));
      series.get(row.processor)[i] += row.count / step;
      errs[i] += row.errors / step;
    }
    const points = (values) => values.map((v, i) => [buckets[i] + step / 2, v]);
    const out = new Map();
    for (const [name, values] of series) out.set(name, points(values));
    return { series: out, errors: points(errs), from, to, step };
  }

  function drawCharts() {
    if (!state.visible.has("chart")) return;
    let data;
    if (state.range === "live") data = liveSeries();
    else if (state.history && state.history.range === state.range) {
      data = historySeries(state.range, state.history.rows);
    } else return;
    const { from, to, step } = data;
    window.InboxdChart.draw($("chart"), { lines: data.series, from, to, step, unit: "/s" }, {
      height: 190,
      axis: true,
      title: "lines/s per processor",
      colourOf,
    });
    window.InboxdChart.draw(
      $("chart-errors"),
      { lines: new Map(), bars: data.errors, barLabel: "errors", unit: "/s", from, to, step },
      { height: 70, axis: false, title: "errors/s", colourOf },
    );
    const legend = $("legend");
    legend.replaceChildren(
      ...Array.from(data.series.keys(), (name) => {
        const item = el("span", "legend-item");
        item.appendChild(el("span", "swatch s" + colourOf(name)));
        item.appendChild(document.createTextNode(name));
        return item;
      }),
    );
  }

  async function refreshHistory() {
    const range = state.range;
    const { span, step } = RANGES[range];
    const until = Date.now() / 1000;
    const rows = await api(query("/history/stats", { since: Math.floor(until - span), until: Math.ceil(until), step }));
    state.history = { range, rows };
  }

  function setupRange() {
    for (const button of $("range").querySelectorAll("button")) {
      button.addEventListener("click", () => {
        state.range = button.dataset.range;
        for (const b of $("range").querySelectorAll("button")) {
          b.setAttribute("aria-pressed", String(b === button));
        }
        state.due.history = undefined;
        drawCharts();
        schedule(0);
      });
    }
  }

  // -- tables ------------------------------------------------------------------------

  // Errors are fetched incrementally: only those at or after the newest one shown.
  // Several errors can share a timestamp (one batch), so the ones already held at that
  // timestamp are skipped by count rather than by content.
  async function refreshErrors() {
    const processor = $("errors-processor").value;
    if (state.errorsFilter !== processor) {
      state.errorsFilter = processor;
      state.errorItems = [];
    }
    const held = state.errorItems;
    const last = held.length ? held[held.length - 1].time : null;
    const items = await api(query("/errors", { limit: ERRORS_LIMIT, processor, since: last }));
    if (state.errorsFilter !== processor) return;
    let skip = last === null ? 0 : held.filter((e) => e.time === last).length;
    const fresh = items.filter((e) => !(e.time === last && skip-- > 0));
    state.errorItems = held.concat(fresh).slice(-ERRORS_LIMIT);
    if (fresh.length === 0 && held.length > 0) return;
    renderErrors();
  }

  function errorKey(e) {
    return [e.time, e.processor, e.file, e.line_no, e.attempt, e.message].join("|");
  }

  // One row per error; a click opens the details below it: attempt, where, the whole
  // line and the traceback.
  function renderErrors() {
    const items = state.errorItems.slice().reverse();
    const rows = [];
    for (const e of items) {
      const key = errorKey(e);
      const row = el("tr", "error-row");
      row.tabIndex = 0;
      row.setAttribute("aria-expanded", String(state.expanded.has(key)));
      cell(row, fmtTime(e.time), "nowrap muted");
      cell(row, e.processor, "nowrap");
      cell(row, where(e.file, e.line_no), "mono where clip opt").title = where(e.file, e.line_no);
      const what = cell(row, "", "what");
      what.appendChild(el("div", "bad", e.message));
      if (e.line !== null && e.line !== undefined) what.appendChild(el("div", "mono line clamp", e.line));
      const toggle = () => {
        if (state.expanded.has(key)) state.expanded.delete(key);
        else state.expanded.add(key);
        renderErrors();
      };
      row.addEventListener("click", toggle);
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          toggle();
        }
      });
      rows.push(row);
      if (state.expanded.has(key)) rows.push(errorDetail(e));
    }
    $("errors").replaceChildren(...rows);
    $("errors-empty").hidden = items.length > 0;
  }

  function errorDetail(e) {
    const row = el("tr", "error-detail");
    const td = el("td");
    td.colSpan = 4;
    const facts = el("div", "detail-facts");
    if (e.attempt !== undefined && e.attempt !== null) facts.appendChild(el("span", "", `attempt ${e.attempt}`));
    facts.appendChild(el("span", "mono", where(e.file, e.line_no) || "no file"));
    facts.appendChild(el("span", "muted", fmtTime(e.time)));
    td.appendChild(facts);
    if (e.line !== null && e.line !== undefined) td.appendChild(el("div", "mono line", e.line));
    const trace = e.traceback ? e.traceback : "no traceback recorded";
    td.appendChild(el("pre", "traceback" + (e.traceback ? "" : " muted"), trace));
    row.appendChild(td);
    return row;
  }

  // A rate from successive readings of a growing figure, smoothed; a figure that went
  // back (a file truncated) restarts from its new value.
  function trackRate(seen, key, value, now) {
    const last = seen.get(key);
    let rate = last ? last.rate : NaN;
    if (last && now > last.t && value >= last.value) {
      const instant = (value - last.value) / (now - last.t);
      rate = Number.isFinite(rate) ? 0.5 * rate + 0.5 * instant : instant;
    }
    seen.set(key, { value, t: now, rate });
    return rate;
  }

  // Per-file read rate from successive offsets, and the time to catch up.
  function fileRate(f, now) {
    return trackRate(state.fileSeen, f.path, f.offset, now);
  }

  function catchUp(f, rate) {
    if (f.state === "excluded") return "not read";
    if (f.lag <= 0) return "caught up";
    if (!(rate > 0)) return f.state === "error" ? "stopped" : "–";
    return fmtDuration(f.lag / rate);
  }

  function renderFiles(items) {
    const now = Date.now() / 1000;
    fill("files", items, (f) => {
      const rate = f.state === "excluded" ? NaN : fileRate(f, now);
      const row = el("tr");
      const where = f.state === "excluded" ? " (not read)" : ` → outbox ${f.outbox}`;
      const title = f.path + where + (f.reason ? `\n${f.reason}` : "");
      cell(row, f.path, "mono path clip").title = title;
      cell(row, fmtBytes(f.lag), f.lag > 0 ? "num warn" : "num");
      cell(row, Number.isFinite(rate) ? fmtBytes(Math.round(rate)) + "/s" : "–", "num rate opt");
      cell(row, catchUp(f, rate), "num eta");
      cell(row).appendChild(el("span", "pill pill-state state-" + String(f.state).replace(/[^a-z]/g, ""), f.state));
      cell(row, fmtCount(f.lines), "num lines");
      cell(row, fmtBytes(f.size), "num opt");
      return row;
    });
  }

  // The outbox (the built-in `end` sink, its state the disk check's) first, then each
  // configured sink. The panel stays hidden while the config names no sink.
  function renderSinks(live) {
    const sinks = live.sinks || [];
    $("panel-sinks").hidden = sinks.length === 0;
    if (sinks.length === 0) return;
    const disk = (live.health.checks || {}).disk || { status: "ok" };
    const outbox = {
      name: "end",
      type: "file",
      target: "<outbox>/<input path> (exactly-once)",
      lines: live.outbox ? live.outbox.lines : 0,
      pending: null,
      errors: null,
      status: disk.status,
      reason: disk.reason,
      since: disk.since,
    };
    const now = Date.now() / 1000;
    fill("sinks", [outbox, ...sinks], (s) => sinkRow(s, trackRate(state.sinkSeen, s.name, s.lines, now), s === outbox));
  }

  function sinkRow(s, rate, isOutbox) {
    const row = el("tr", "sink-row");
    row.dataset.sink = s.name;
    const name = cell(row, s.name, "name clip");
    name.title = s.name;
    if (isOutbox) name.appendChild(el("span", "muted", " (outbox)"));
    cell(row, s.type, "opt");
    cell(row, s.target, "mono target clip opt").title = s.target;
    cell(row, fmtCount(s.lines), "num lines");
    cell(row, fmtRate(rate), "num rate opt");
    cell(row, s.pending === null ? "–" : fmtCount(s.pending), s.pending > 0 ? "num pending warn" : "num pending");
    cell(row, s.errors === null ? "–" : fmtCount(s.errors), s.errors > 0 ? "num errors bad" : "num errors");
    const pill = { ok: "pill-ok", degraded: "pill-warn" }[s.status] || "pill-bad";
    cell(row, "", "status").appendChild(el("span", "pill " + pill, s.status));
    if (s.status === "ok" || !s.reason) return row;
    // Why it is not ok, on a row of its own under it: a reason is often a long URL.
    const why = el("tr", "sink-reason");
    why.dataset.sink = s.name;
    const td = el("td", "", s.reason);
    td.colSpan = 8;
    if (s.since) td.appendChild(el("span", "muted", " since " + fmtTime(s.since)));
    why.appendChild(td);
    const both = document.createDocumentFragment();
    both.append(row, why);
    return both;
  }

  async function refreshDeadletter() {
    const items = await api(query("/deadletter", { limit: DEADLETTER_LIMIT }));
    items.reverse();
    fill("deadletter", items, (d) => {
      const row = el("tr");
      cell(row, fmtTime(d.ts), "nowrap muted");
      cell(row, where(d.file, d.line_no), "mono where clip").title = where(d.file, d.line_no);
      cell(row, d.tag, "mono nowrap opt");
      cell(row, d.processor, "nowrap opt");
      const what = cell(row, "", "what");
      what.appendChild(el("div", "bad", d.message));
      what.appendChild(el("div", "mono line", d.line));
      return row;
    });
  }

  async function refreshLog() {
    let text;
    try {
      text = await api("/logs/inboxd.log?tail=50", true);
    } catch (error) {
      $("log").replaceChildren(el("div", "empty", "No log yet."));
      return;
    }
    const lines = text.split("\n").filter((line) => line !== "");
    $("log").replaceChildren(
      ...lines.map((line) => {
        let level = "";
        try {
          const doc = JSON.parse(line);
          level = String(doc.level || doc.levelname || "").toLowerCase();
        } catch (error) {
          level = "";
        }
        return el("div", "log-line level-" + level.replace(/[^a-z]/g, ""), line);
      }),
    );
  }

  // /traces matches `file` as a glob over the whole path; a plain fragment typed in the
  // explorer finds every path that contains it.
  function fileGlob(text) {
    return text && !/[*?[]/.test(text) ? `*${text}*` : text;
  }

  async function refreshTraces() {
    const items = await api(
      query("/traces", {
        limit: TRACES_LIMIT,
        q: $("trace-q").value.trim(),
        tag: $("trace-tag").value.trim(),
        file: fileGlob($("trace-file").value.trim()),
        since: $("trace-range").value ? Math.floor(Date.now() / 1000 - Number($("trace-range").value)) : "",
      }),
    );
    items.reverse();
    fill("traces", items, (r) => {
      const row = el("tr");
      cell(row, fmtTime(r.time), "nowrap muted");
      const path = cell(row, "", "path-cell");
      (r.path || []).forEach((tag, i) => {
        if (i) path.appendChild(el("span", "arrow", "→"));
        path.appendChild(el("span", "tag" + (tag === "retry" ? " tag-retry" : tag === "end" ? " tag-end" : ""), tag));
      });
      cell(row, r.file, "mono opt");
      cell(row, r.line_no, "num opt");
      cell(row, r.line, "mono line");
      return row;
    });
  }

  function setupFilters() {
    $("trace-range").addEventListener("change", () => {
      state.due.traces = undefined;
      schedule(0);
    });
    $("errors-processor").addEventListener("change", () => {
      state.due.errors = undefined;
      schedule(0);
    });
    $("trace-form").addEventListener("submit", (event) => {
      event.preventDefault();
      state.due.traces = undefined;
      schedule(0);
    });
    let typing = 0;
    for (const id of ["trace-q", "trace-tag", "trace-file"]) {
      $(id).addEventListener("input", () => {
        clearTimeout(typing);
        typing = setTimeout(() => {
          state.due.traces = undefined;
          schedule(0);
        }, 300);
      });
    }
  }

  // -- the poll loop -----------------------------------------------------------------

  function isDue(name, everyMs, now) {
    const last = state.due[name];
    return last === undefined || now - last >= everyMs;
  }

  function plan(now) {
    const jobs = [];
    const visible = (panel) => state.visible.has(panel);
    const add = (name, everyMs, run) => {
      if (isDue(name, everyMs, now)) {
        state.due[name] = now;
        jobs.push(run());
      }
    };
    const errorsTotal = state.samples.length
      ? Object.values(state.samples[state.samples.length - 1].stats).reduce((a, s) => a + s.errors, 0)
      : 0;
    // New errors are fetched as soon as /stats counts them, but at most every
    // ERRORS_EVERY_MS: under an error storm each fetch would otherwise be a full page.
    const errorsChanged = errorsTotal !== state.errorsTotal;
    if (visible("errors")) {
      add("errors", errorsChanged ? ERRORS_EVERY_MS : SLOW_EVERY_MS * 2, () => {
        state.errorsTotal = errorsTotal;
        return refreshErrors();
      });
    }
    if (visible("deadletter")) add("deadletter", SLOW_EVERY_MS, refreshDeadletter);
    if (visible("log")) add("log", SLOW_EVERY_MS, refreshLog);
    if (visible("traces") && state.tracing) add("traces", TRACE_EVERY_MS, refreshTraces);
    if (visible("chart") && state.range !== "live") add("history", SLOW_EVERY_MS * 6, refreshHistory);
    return jobs;
  }

  let timer = 0;
  let running = false;

  function schedule(delayMs) {
    clearTimeout(timer);
    timer = setTimeout(poll, delayMs);
  }

  // Stats, files, health and sinks come in one request: each request costs the engine a
  // hand-over of the interpreter lock. The live chart is drawn at once, not held up by
  // the other panels' requests.
  async function takeSample() {
    const showFiles = state.visible.has("files");
    const live = await api(query("/live", { files: showFiles ? FILES_LIMIT : 0 }));
    renderHealth(live.health);
    const stats = live.stats;
    addSample(stats);
    if (state.range === "live") drawCharts();
    if (state.visible.has("processors")) renderProcessors(stats);
    if (showFiles) renderFiles(live.files);
    renderSinks(live);
  }

  // A rate needs two samples: a round that holds the only one (the page's first, or the
  // first after a hidden spell longer than the live window) takes a second one
  // FIRST_RATE_MS later, beside the other panels' requests, so that the live chart shows
  // a point within a second of load rather than after two rounds.
  async function secondSample() {
    await new Promise((resolve) => setTimeout(resolve, FIRST_RATE_MS));
    await takeSample();
  }

  async function poll() {
    if (running) return;
    if (document.hidden) return; // resumed by visibilitychange
    running = true;
    const started = performance.now();
    const before = { bytes: state.bytes, requests: state.requests };
    try {
      await takeSample();
      // Planned against the round's start, as the next round is timed from it: a panel
      // due every second is then fetched every second, not every other one.
      const jobs = plan(started);
      if (state.samples.length === 1) jobs.push(secondSample());
      await Promise.all(jobs);
      if (state.range !== "live") drawCharts();
      const bytes = state.bytes - before.bytes;
      const requests = state.requests - before.requests;
      $("traffic").textContent = `last update: ${fmtBytes(bytes)} in ${requests} request${requests === 1 ? "" : "s"}`;
      $("updated").textContent = "updated " + fmtTime(Date.now() / 1000);
      $("conn").textContent = "";
      $("conn").className = "";
    } catch (error) {
      $("conn").textContent = "cannot reach inboxd: " + error.message;
      $("conn").className = "bad";
      setPill($("health"), "unreachable", "pill-bad");
    } finally {
      running = false;
      tickUptime();
      schedule(Math.max(0, POLL_MS - (performance.now() - started)));
    }
  }

  function watchPanels() {
    const observer = new IntersectionObserver((entries) => {
      let appeared = false;
      for (const entry of entries) {
        const panel = entry.target.dataset.panel;
        if (entry.isIntersecting) {
          if (!state.visible.has(panel)) appeared = true;
          state.visible.add(panel);
        } else {
          state.visible.delete(panel);
        }
      }
      if (appeared) schedule(0);
    });
    for (const section of document.querySelectorAll("[data-panel]")) observer.observe(section);
  }

  function start() {
    setupRange();
    setupFilters();
    watchPanels();
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) schedule(0);
    });
    let resizeTimer = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawCharts, 150);
    });
    schedule(0);
  }

  start();
})();

// flowrun view. Everything from the run log is hostile text (model and tool output): it is only
// ever put into the page with textContent / createTextNode, never as HTML, and the server's
// Content-Security-Policy forbids inline script. Links are built from encodeURIComponent.
"use strict";

const main = document.getElementById("main");
const POLL_MS = 1000;
const CLIP = 20000; // characters of one value shown before "show all"
let timer = null; // the one live poll of the current page

// ---- small helpers ---------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "style") node.style.cssText = value; // CSSOM: allowed by the CSP, unlike style=""
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, params) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const response = await fetch("api/" + path + query, { cache: "no-store" });
  const body = await response.json().catch(() => ({ error: "unreadable answer" }));
  if (!response.ok) throw new Error(body.error + (body.hint ? " — " + body.hint : ""));
  return body;
}

const runHref = (id) => "#/run/" + encodeURIComponent(id);
const batchHref = (id) => "#/batch/" + encodeURIComponent(id);
// In the runs list: which batch a run belongs to (and its input there), a link to the batch.
function batchTag(run) {
  const link = el("a", { class: "sub batch-tag", href: batchHref(run.batch_id), title: "batch " + run.batch_id },
    "batch" + (typeof run.batch_index === "number" ? " · input " + run.batch_index : ""));
  link.addEventListener("click", (e) => e.stopPropagation());
  return link;
}
const compareHref = (a, b) => "#/compare/" + encodeURIComponent(a) + "/" + encodeURIComponent(b);
const baseName = (path) => String(path || "-").split("/").pop();
const firstLine = (text) => (String(text || "").split("\n").find((l) => l.trim()) || "").trim();
const num = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "–");

function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  const s = Math.round(ms / 1000);
  return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
}

function fmtTime(ts) {
  if (!ts) return "–";
  const d = new Date(ts * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function ago(ts) {
  if (!ts) return "–";
  const s = Date.now() / 1000 - ts;
  if (s < 60) return "just now";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  if (s < 86400 * 14) return Math.floor(s / 86400) + " d ago";
  return fmtTime(ts).slice(0, 10);
}

function runDuration(run) {
  if (run.duration_ms !== null && run.duration_ms !== undefined) return run.duration_ms;
  if (run.last_event_at && run.started_at) return Math.max(0, (run.last_event_at - run.started_at) * 1000);
  return null;
}

function tokens(usage) {
  if (!usage || typeof usage !== "object") return null;
  if (typeof usage.total_tokens === "number") return usage.total_tokens;
  const i = usage.input_tokens, o = usage.output_tokens;
  return typeof i === "number" || typeof o === "number" ? (i || 0) + (o || 0) : null;
}

function pretty(text) {
  // Arguments and outputs are often JSON: indent them; anything else is shown as it is.
  const raw = text === null || text === undefined ? "" : String(text);
  try {
    const value = JSON.parse(raw);
    if (value !== null && typeof value === "object") return JSON.stringify(value, null, 2);
  } catch (_) { /* not JSON */ }
  return raw;
}

function clipped(text, cls) {
  const full = String(text === null || text === undefined ? "" : text);
  const pre = el("pre", { class: cls || null }, full.length > CLIP ? full.slice(0, CLIP) : full);
  if (full.length <= CLIP) return pre;
  const more = el("a", { href: "#", class: "more" }, `show all (${num(full.length - CLIP)} more characters)`);
  more.addEventListener("click", (e) => { e.preventDefault(); pre.textContent = full; more.remove(); });
  return el("div", {}, pre, more);
}

const badge = (status) => el("span", { class: "badge " + String(status || "").replace(/[^a-z_]/g, "") }, status || "?");

function stopPolling() {
  if (timer) clearTimeout(timer);
  timer = null;
}

function showError(error) {
  main.replaceChildren(el("div", { class: "error-box" }, String(error.message || error)));
}

// ---- routing ---------------------------------------------------------------------------------

function route() {
  stopPolling();
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let page;
  if (parts[0] === "run" && parts[1]) page = showRun(parts[1]);
  else if (parts[0] === "batches") page = showBatches();
  else if (parts[0] === "batch" && parts[1]) page = showBatch(parts[1], new URLSearchParams(query || ""));
  else if (parts[0] === "compare" && parts[1] && parts[2]) page = showCompare(parts[1], parts[2]);
  else page = showList(new URLSearchParams(query || ""));
  page.catch(showError);
}
window.addEventListener("hashchange", route);

// ---- the runs list ---------------------------------------------------------------------------

const FILTERS = ["workflow", "status", "api", "model", "since", "until", "q"];
let facetCache = null;
const selected = new Set();

async function showList(params) {
  const state = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || ""]));
  const limit = params.get("limit") || "50";
  const before = params.get("before") || "";
  const query = { ...Object.fromEntries(Object.entries(state).filter(([, v]) => v)), limit };
  if (before) query.before = before;
  const [facets, page] = await Promise.all([facetCache || api("facets"), api("runs", query)]);
  facetCache = facets;
  const prev = params.get("prev") || ""; // the cursors of the pages before, for "Newer"

  const go = (changes) => {
    const next = new URLSearchParams();
    const merged = { ...state, limit, before: "", prev: "", ...changes };
    for (const [k, v] of Object.entries(merged)) if (v && !(k === "limit" && v === "50")) next.set(k, v);
    location.hash = "#/?" + next.toString();
  };
  const select = (name, label, values, shown) => el("label", {}, label,
    el("select", { name, "aria-label": label, onchange: (e) => go({ [name]: e.target.value }) },
      el("option", { value: "" }, "all"),
      values.map((v) => el("option", { value: v, selected: v === state[name] ? "selected" : null }, shown ? shown(v) : v))));
  const spans = [["", "any time"], ["1h", "last hour"], ["1d", "last 24 h"], ["7d", "last 7 days"], ["30d", "last 30 days"]];
  const search = el("input", { type: "search", name: "q", placeholder: "text in the input or the answer", value: state.q, "aria-label": "search" });
  let debounce = null;
  search.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => go({ q: search.value.trim() }), 350); });
  const dateInput = el("input", { type: "date", name: "day", "aria-label": "day", value: /^\d{4}-\d\d-\d\d$/.test(state.since) ? state.since : "" });
  dateInput.addEventListener("change", () => go({ since: dateInput.value }));

  const filters = el("div", { class: "filters" },
    el("label", {}, "search", search),
    select("workflow", "workflow", facets.workflow, baseName),
    select("status", "status", facets.status),
    select("api", "api", facets.api),
    select("model", "model", facets.model),
    el("label", {}, "since", el("select", { name: "since", onchange: (e) => go({ since: e.target.value }) },
      spans.map(([v, t]) => el("option", { value: v, selected: v === state.since ? "selected" : null }, t)),
      /^\d{4}-\d\d-\d\d$/.test(state.since) ? el("option", { value: state.since, selected: "selected" }, "since " + state.since) : null)),
    el("label", {}, "from day", dateInput),
    FILTERS.some((k) => state[k]) ? el("button", { type: "button", onclick: () => go(Object.fromEntries(FILTERS.map((k) => [k, ""]))) }, "Clear filters") : null);

  const countSpan = el("span", { class: "count" }, "counting…");
  api("count", Object.fromEntries(Object.entries(state).filter(([, v]) => v)))
    .then((c) => { countSpan.textContent = num(c.count) + (c.count === 1 ? " run" : " runs"); })
    .catch(() => { countSpan.textContent = ""; });

  const compareButton = el("button", { type: "button", class: "primary", id: "compare", disabled: selected.size !== 2 ? "disabled" : null,
    onclick: () => { const [a, b] = [...selected]; location.hash = compareHref(a, b); } }, "Compare 2 selected");
  const refreshCompare = () => { compareButton.disabled = selected.size !== 2; compareButton.textContent = selected.size === 2 ? "Compare 2 selected" : `Select 2 runs to compare (${selected.size})`; };
  refreshCompare();

  const rows = page.runs.map((run) => {
    const box = el("input", { type: "checkbox", "aria-label": "select " + run.run_id, checked: selected.has(run.run_id) ? "checked" : null });
    box.addEventListener("click", (e) => {
      e.stopPropagation();
      if (box.checked) selected.add(run.run_id); else selected.delete(run.run_id);
      tr.classList.toggle("selected", box.checked);
      refreshCompare();
    });
    const failed = run.status !== "completed" && run.status !== "running";
    const answer = run.final_text ? firstLine(run.final_text) : run.error ? "error: " + firstLine(run.error) : "";
    const tr = el("tr", { class: selected.has(run.run_id) ? "selected" : null, "data-run": run.run_id },
      el("td", {}, box),
      el("td", {}, badge(run.status)),
      el("td", { title: fmtTime(run.started_at) }, ago(run.started_at)),
      el("td", { title: run.workflow_path || "" }, baseName(run.workflow_path), run.batch_id ? batchTag(run) : null),
      el("td", { title: (run.api || "") + " · " + (run.model || "") }, el("span", { class: "sub" }, run.api || "?"), " · ", run.model || "?"),
      el("td", { class: "num" }, fmtDuration(runDuration(run))),
      el("td", { class: "num" }, String(run.tool_call_count || 0), run.tool_error_count ? el("span", { class: "errs", title: "tool calls that returned an error" }, " ✗" + run.tool_error_count) : null),
      el("td", { class: "num" }, num(tokens(run.usage))),
      el("td", { class: "text", title: run.input || "" }, firstLine(run.input)),
      el("td", { class: "text answer" + (failed && !run.final_text ? " err" : ""), title: answer }, answer));
    tr.addEventListener("click", () => { location.hash = runHref(run.run_id); });
    return tr;
  });

  const prevList = prev ? prev.split(",") : [];
  const pager = el("div", { class: "pager" },
    el("label", { class: "sub" }, "per page ",
      el("select", { name: "limit", onchange: (e) => go({ limit: e.target.value }) },
        ["25", "50", "100", "200"].map((n) => el("option", { value: n, selected: n === limit ? "selected" : null }, n)))),
    el("button", { type: "button", id: "newer", disabled: before ? null : "disabled",
      onclick: () => go({ before: prevList.slice(-1)[0] || "", prev: prevList.slice(0, -1).join(",") }) }, "← Newer"),
    el("button", { type: "button", id: "older", disabled: page.next ? null : "disabled",
      onclick: () => go({ before: page.next, prev: [...prevList, before].join(",") }) }, "Older →"));

  const table = el("table", { class: "runs" },
    el("colgroup", {}, ["sel", "status", "when", "wf", "model", "dur", "tools", "tok", "in", "out"].map((c) => el("col", { class: "col-" + c }))),
    el("thead", {}, el("tr", {}, ["", "status", "started", "workflow", "api · model", "duration", "tools", "tokens", "input", "answer"]
      .map((h, i) => el("th", { class: i >= 5 && i <= 7 ? "num" : null }, h)))),
    el("tbody", {}, rows));
  main.replaceChildren(...[
    el("div", { class: "toolbar" }, el("h1", {}, "Runs"), countSpan, el("span", { class: "spacer" }),
      el("a", { class: "button", href: "#/batches", id: "to-batches" }, "Batches"), compareButton),
    filters,
    rows.length ? table : el("p", { class: "empty" }, FILTERS.some((k) => state[k]) ? "No run matches these filters." : "No runs recorded yet."),
    rows.length ? pager : null].filter(Boolean));
  document.title = "flowrun · runs";
  // A run still going on the first page: look again shortly.
  if (!before && page.runs.some((r) => r.status === "running")) {
    timer = setTimeout(() => { if (!document.activeElement || document.activeElement.tagName !== "INPUT") route(); }, POLL_MS * 3);
  }
}

// ---- one run: the model of its timeline ------------------------------------------------------

function timeline(run) {
  const turns = [];
  const calls = new Map();
  const notices = [];
  const approvals = [];  // approval.* and run.paused/run.resumed, in order
  let current = null;
  let answer = "";
  let lastTs = run.started_at || null;
  for (const e of run.events) {
    const ts = typeof e.ts === "number" ? e.ts : lastTs;
    if (ts) lastTs = Math.max(lastTs || ts, ts);
    switch (e.type) {
      case "turn.started":
        current = { turn: e.turn, start: ts, end: null, status: null, usage: null, calls: [], text: "" };
        turns.push(current);
        break;
      case "text.delta":
        if (current) current.text += String(e.text ?? "");
        answer += String(e.text ?? "");
        break;
      case "tool_call.requested": {
        const call = calls.get(e.call_id) || { id: e.call_id, name: e.name, turn: current };
        Object.assign(call, { arguments: e.arguments, requested: ts });
        if (!calls.has(e.call_id)) { calls.set(e.call_id, call); if (current) current.calls.push(call); }
        break;
      }
      case "tool_call.completed": {
        let call = calls.get(e.call_id);
        if (!call) { call = { id: e.call_id, name: e.name, turn: current, requested: null }; calls.set(e.call_id, call); if (current) current.calls.push(call); }
        const ms = typeof e.duration_ms === "number" ? e.duration_ms : null;
        Object.assign(call, { output: e.output, is_error: !!e.is_error, end: ts, duration: ms,
          start: ms !== null && ts ? ts - ms / 1000 : call.requested });
        break;
      }
      case "turn.completed":
        if (current) Object.assign(current, { end: ts, status: e.status, usage: e.usage });
        break;
      case "notice":
        notices.push({ ts, level: e.level, message: e.message });
        break;
      case "approval.requested": {
        const call = calls.get(e.call_id);
        const asked = { ts, kind: "asked", name: e.name, call: e.call_id, target: e.target, why: e.why };
        approvals.push(asked);
        if (call) call.approval = { why: e.why, target: e.target };
        break;
      }
      case "approval.decided": {
        const call = calls.get(e.call_id);
        approvals.push({ ts, kind: e.decision, name: e.name, call: e.call_id, by: e.by, reason: e.reason });
        if (call) call.approval = Object.assign(call.approval || {}, { decision: e.decision, by: e.by, reason: e.reason });
        break;
      }
      case "run.paused":
        // Nothing waiting: the tools ran and only sending their outputs failed; resume sends them.
        approvals.push({ ts, kind: "paused", name: (e.waiting || []).map((w) => w && w.name).join(", ")
          || "outputs saved, nothing waits for a decision:", reason: e.resume });
        break;
      case "run.resumed":
        approvals.push({ ts, kind: "resumed", name: "", reason: "flowrun resume" });
        break;
    }
  }
  const live = run.status === "running";
  const start = run.started_at || (run.events[0] && run.events[0].ts) || 0;
  let end = run.finished_at || lastTs || start;
  if (live) end = Math.max(end, Date.now() / 1000);
  for (const call of calls.values()) if (!call.start) call.start = call.requested;
  // Calls that ran at the same time: each one's count of overlapping siblings.
  for (const t of turns) {
    for (const c of t.calls) {
      const cEnd = c.end || end;
      c.parallel = t.calls.filter((o) => o !== c && o.start < cEnd && (o.end || end) > c.start).length;
    }
  }
  return { turns, calls: [...calls.values()], notices, approvals, answer, start, end, live };
}

function niceStep(span) {
  const steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];
  return steps.find((s) => span / s <= 8) || 7200;
}

function tickLabel(seconds, step) {
  if (step < 1 && (seconds < 1 || step < 0.1)) return Math.round(seconds * 1000) + " ms";
  if (step < 1) return (Math.round(seconds * 100) / 100) + " s";
  if (step < 60) return (Math.round(seconds * 10) / 10) + " s";
  return Math.floor(seconds / 60) + "m" + (seconds % 60 ? String(Math.round(seconds % 60)).padStart(2, "0") + "s" : "");
}

function drawTimeline(model, onPick) {
  const span = Math.max(model.end - model.start, 0.001);
  const pct = (ts) => Math.min(100, Math.max(0, ((ts - model.start) / span) * 100));
  const step = niceStep(span);
  const axis = el("div", { class: "axis" });
  for (let s = 0; s <= span + 1e-9; s += step) axis.append(el("span", { class: "tick", style: `left:${pct(model.start + s)}%` }, tickLabel(s, step)));
  const lanes = [];
  const lane = (labelNode, barClass, from, to, dur, key, title) => {
    const bar = el("div", { class: "bar " + barClass, style: `left:${pct(from)}%;width:${Math.max(pct(to) - pct(from), 0.25)}%`, title });
    const row = el("div", { class: "lane", "data-key": key, role: "button", tabindex: "0" },
      labelNode, el("div", { class: "track" }, bar), el("div", { class: "dur" }, dur));
    row.addEventListener("click", () => onPick(key));
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") onPick(key); });
    lanes.push(row);
    return bar;
  };
  const runBar = lane(el("div", { class: "label" }, el("b", {}, "run")), "run" + (model.live ? " open" : ""), model.start, model.end,
    fmtDuration((model.end - model.start) * 1000), "run", "the whole run");
  for (const n of model.notices) if (n.ts) runBar.parentNode.append(el("span", { class: "notice-mark", style: `left:${pct(n.ts)}%`, title: `${n.level}: ${n.message}` }));
  for (const t of model.turns) {
    const tEnd = t.end || model.end;
    lane(el("div", { class: "label" }, `turn ${t.turn} · model`), t.end ? "" : "open", t.start, tEnd,
      fmtDuration((tEnd - t.start) * 1000), "turn-" + t.turn, `turn ${t.turn}: ${t.status || "streaming"}`);
    for (const c of t.calls) {
      const cEnd = c.end || model.end;
      const label = el("div", { class: "label tool", title: c.name }, c.is_error ? el("span", { class: "mark", title: "error" }, "✗") : null, c.name);
      const bar = lane(label, "tool" + (c.is_error ? " err" : "") + (c.end ? "" : " open"), c.start || t.start, cEnd,
        c.duration !== null && c.duration !== undefined ? fmtDuration(c.duration) : "running…", "call-" + c.id,
        `${c.name}${c.is_error ? " (error)" : ""}`);
      if (c.parallel) bar.append(el("span", { class: "par" }, `∥ ${c.parallel + 1}`));
    }
  }
  return el("div", { class: "timeline" }, axis, lanes,
    el("div", { class: "legend" },
      el("span", {}, el("i", { style: "background:#3b82f6" }), "model turn"),
      el("span", {}, el("i", { style: "background:#10b981" }), "tool call"),
      el("span", {}, el("i", { style: "background:#dc2626" }), "tool error"),
      el("span", {}, "∥ n: calls running side by side"),
      model.notices.length ? el("span", {}, el("i", { style: "background:#d97706" }), "notice") : null));
}

// ---- one run: the page -----------------------------------------------------------------------

async function showRun(runId) {
  let run = await api("run/" + encodeURIComponent(runId));
  let picked = null;
  const workflowPanel = el("section", { class: "panel wf", id: "workflow" }, el("h2", {}, "Workflow file"), el("p", { class: "loading" }, "looking for the file…"));
  api("run/" + encodeURIComponent(runId) + "/workflow").then((wf) => workflowPanel.replaceChildren(...workflowView(wf))).catch(() => {});
  const siblingsBox = el("span", {});
  api("run/" + encodeURIComponent(runId) + "/siblings").then((s) => {
    if (!s.runs.length) return;
    const sel = el("select", { "aria-label": "compare with", id: "compare-with" }, el("option", { value: "" }, "compare with…"),
      s.runs.map((r) => el("option", { value: r.run_id }, `${fmtTime(r.started_at)} · ${r.status} · ${firstLine(r.input).slice(0, 50)}`)));
    sel.addEventListener("change", () => { if (sel.value) location.hash = compareHref(runId, sel.value); });
    siblingsBox.replaceChildren(sel);
  }).catch(() => {});

  const render = () => {
    const model = timeline(run);
    const pick = (key) => { picked = key; render(); const target = document.getElementById(key); if (target && key.startsWith("call-")) target.scrollIntoView({ block: "nearest", behavior: "smooth" }); };
    const usage = run.usage || model.turns.reduce((sum, t) => {
      for (const [k, v] of Object.entries(t.usage || {})) if (typeof v === "number") sum[k] = (sum[k] || 0) + v;
      return sum;
    }, {});
    const errors = model.calls.filter((c) => c.is_error).length;
    const head = el("div", { class: "runhead" },
      el("div", { class: "grow" },
        el("h1", {}, badge(run.status), el("span", { class: "mono" }, run.run_id)),
        el("div", { class: "meta" },
          el("span", {}, "workflow ", el("b", { title: run.workflow_path }, run.workflow_path || "–")),
          el("span", {}, "api ", el("b", {}, run.api || "–")),
          el("span", {}, "model ", el("b", {}, run.model || "–")),
          el("span", {}, "started ", el("b", {}, fmtTime(run.started_at))),
          run.offline ? el("span", {}, el("b", {}, "offline (scripted model)")) : null,
          run.batch_id ? el("span", {}, "batch ", el("a", { href: batchHref(run.batch_id), id: "run-batch" }, run.batch_id),
            typeof run.batch_index === "number" ? " · input " + run.batch_index : null) : null,
          run.exit_code !== null && run.exit_code !== undefined ? el("span", {}, "exit ", el("b", {}, run.exit_code)) : null,
          run.status === "crashed" ? el("span", {}, "the recording process ended without finishing the run") : null)),
      siblingsBox,
      el("a", { class: "button", href: "#/" }, "← all runs"));
    const cards = el("div", { class: "cards" },
      card("duration", fmtDuration((model.end - model.start) * 1000)),
      card("turns", String(model.turns.length)),
      card("tool calls", String(model.calls.length), errors ? `${errors} error${errors > 1 ? "s" : ""}` : null),
      card("tokens", num(tokens(usage)), usage && typeof usage.input_tokens === "number" ? `${num(usage.input_tokens)} in · ${num(usage.output_tokens)} out` : null));
    const failure = run.error ? el("section", { class: "panel failure" }, el("h2", {}, "Why it ended"), clipped(run.error)) : null;
    const tl = el("section", { class: "panel" }, el("h2", {}, "Timeline", model.live ? el("span", { class: "sub" }, " · live") : null), drawTimeline(model, pick));
    const io = el("div", { class: "grid2" },
      el("section", { class: "panel" }, el("h2", {}, "Input"), el("div", { class: "textblock", id: "input" }, clipped(run.input))),
      el("section", { class: "panel" }, el("h2", {}, "Answer"), el("div", { class: "textblock", id: "answer" },
        clipped(model.answer || run.final_text || (model.live ? "(streaming…)" : "(no answer)")))));
    const callList = el("section", { class: "panel" }, el("h2", {}, `Tool calls (${model.calls.length})`),
      model.calls.length ? model.calls.map((c) => callCard(c, picked === "call-" + c.id)) : el("p", { class: "empty" }, "No tool was called."));
    const turnsTable = el("section", { class: "panel" }, el("h2", {}, "Turns and usage"),
      el("table", { class: "kv" }, el("thead", {}, el("tr", {}, ["turn", "ended as", "model time", "tool calls", "input tokens", "output tokens"].map((h) => el("th", {}, h)))),
        el("tbody", {}, model.turns.map((t) => el("tr", {}, el("td", {}, t.turn), el("td", {}, t.status || "…"),
          el("td", {}, t.end ? fmtDuration((t.end - t.start) * 1000) : "…"), el("td", {}, t.calls.length),
          el("td", {}, num(t.usage && t.usage.input_tokens)), el("td", {}, num(t.usage && t.usage.output_tokens)))))));
    const notices = model.notices.length ? el("section", { class: "panel" }, el("h2", {}, "Notices (retries, warnings)"),
      el("ul", { class: "notices" }, model.notices.map((n) => el("li", {}, el("span", { class: "lvl " + String(n.level).replace(/[^a-z]/g, "") }, n.level), clipped(n.message))))) : null;
    const approvals = model.approvals.length ? el("section", { class: "panel", id: "approvals" }, el("h2", {}, "Approvals"),
      el("ul", { class: "notices" }, model.approvals.map((a) => el("li", {},
        el("span", { class: "lvl approval-" + String(a.kind).replace(/[^a-z]/g, "") }, a.kind),
        el("span", { class: "name" }, " " + String(a.name || "") + " "),
        a.by ? el("span", { class: "sub" }, "by " + a.by + " ") : null,
        a.kind === "asked" ? clipped([a.target, a.why].filter(Boolean).join(" · ")) : a.reason ? clipped(a.reason) : null)))) : null;
    main.replaceChildren(...[head, cards, failure, tl, io, callList, approvals, turnsTable, notices, workflowPanel].filter(Boolean));
    for (const row of main.querySelectorAll(".lane")) row.classList.toggle("active", row.dataset.key === picked);
    document.title = `flowrun · ${run.status} · ${baseName(run.workflow_path)}`;
  };
  render();

  // A run in progress: fetch only the events after the last one shown, until it ends.
  const poll = async () => {
    if (run.status !== "running" || !location.hash.startsWith(runHref(runId))) return;
    try {
      const last = run.events.length ? run.events[run.events.length - 1].seq : -1;
      const fresh = await api("run/" + encodeURIComponent(runId), { after: last });
      run = { ...fresh, events: run.events.concat(fresh.events) };
      render();
    } catch (_) { /* the next poll tries again */ }
    timer = setTimeout(poll, POLL_MS);
  };
  if (run.status === "running") timer = setTimeout(poll, POLL_MS);
}

function card(label, value, small) {
  return el("div", { class: "card" }, el("div", { class: "k" }, label), el("div", { class: "v" }, value, small ? el("small", {}, " " + small) : null));
}

function callCard(c, active) {
  return el("div", { class: "call" + (c.is_error ? " err" : "") + (active ? " active" : ""), id: "call-" + c.id },
    el("div", { class: "head" },
      c.is_error ? el("span", { class: "badge failed" }, "error") : c.end ? el("span", { class: "badge completed" }, "ok") : el("span", { class: "badge running" }, "running"),
      el("span", { class: "name" }, c.name), el("span", { class: "id" }, c.id),
      c.approval && c.approval.decision ? el("span", { class: "badge approval-" + String(c.approval.decision).replace(/[^a-z]/g, "") },
        `${c.approval.decision} by ${c.approval.by}`) : null,
      el("span", { class: "spacer" }),
      c.parallel ? el("span", { class: "sub" }, `ran beside ${c.parallel} other call${c.parallel > 1 ? "s" : ""}`) : null,
      el("span", { class: "sub" }, c.duration !== null && c.duration !== undefined ? fmtDuration(c.duration) : "")),
    el("div", { class: "body" },
      el("div", {}, el("div", { class: "k" }, "arguments"), clipped(pretty(c.arguments))),
      el("div", {}, el("div", { class: "k" }, "output"), c.end ? clipped(pretty(c.output)) : el("p", { class: "note" }, "not finished"))));
}

function workflowView(wf) {
  const out = [el("h2", {}, "Workflow file"),
    el("p", {}, el("span", { class: "sub" }, "path "), el("span", { class: "mono" }, wf.path || "–")),
    el("p", {}, el("span", { class: "sub" }, "sha256 "), el("span", { class: "hash" }, wf.sha256 || "–"))];
  if (wf.content !== null && wf.content !== undefined) {
    out.push(el("p", { class: "sub" }, "content from " + wf.where));
    const pre = el("pre", { class: "src textblock" }, String(wf.content).split("\n").map((line) => el("span", {}, line || " ")));
    out.push(pre);
  } else {
    out.push(el("p", { class: "note" }, wf.where));
  }
  return out;
}

// ---- batches ---------------------------------------------------------------------------------

const BATCH_DONE = ["completed", "failed", "interrupted", "error"];

function progressBar(b) {
  const total = b.total || 0;
  const pct = (n) => (total ? (100 * n) / total : 0);
  return el("div", { class: "progress", title: `${num(b.done)} of ${num(total)} inputs done` },
    el("span", { class: "skipped", style: `width:${pct(b.skipped || 0)}%` }),
    el("span", { class: "ok", style: `width:${pct(b.completed || 0)}%` }),
    el("span", { class: "bad", style: `width:${pct(b.failed || 0)}%` }));
}

async function showBatches() {
  const data = await api("batches", { limit: "100" });
  const rows = data.batches.map((b) => {
    const tr = el("tr", { "data-batch": b.batch_id },
      el("td", {}, badge(b.status)),
      el("td", { title: fmtTime(b.started_at) }, ago(b.started_at)),
      el("td", { title: b.workflow_path || "" }, baseName(b.workflow_path)),
      el("td", {}, progressBar(b)),
      el("td", { class: "num" }, `${num(b.done)} / ${num(b.total)}`),
      el("td", { class: "num" }, b.failed ? el("span", { class: "errs" }, num(b.failed)) : "0"),
      el("td", { class: "num" }, b.finished_at ? fmtDuration((b.finished_at - b.started_at) * 1000) : "–"),
      el("td", { class: "mono" }, b.batch_id));
    tr.addEventListener("click", () => { location.hash = batchHref(b.batch_id); });
    return tr;
  });
  const table = el("table", { class: "runs batches" },
    el("colgroup", {}, ["status", "when", "wf", "bar", "dur", "tok", "dur", "id"].map((c) => el("col", { class: "col-" + c }))),
    el("thead", {}, el("tr", {}, ["status", "started", "workflow", "progress", "done", "failed", "took", "batch"]
      .map((h, i) => el("th", { class: i >= 4 && i <= 6 ? "num" : null }, h)))),
    el("tbody", {}, rows));
  main.replaceChildren(
    el("div", { class: "toolbar" }, el("h1", {}, "Batches"), el("span", { class: "count" }, `${rows.length} most recent`),
      el("span", { class: "spacer" }), el("a", { class: "button", href: "#/" }, "← all runs")),
    rows.length ? table : el("p", { class: "empty" }, "No batch recorded yet: `flowrun batch` records its runs here."));
  document.title = "flowrun · batches";
  if (data.batches.some((b) => b.status === "running")) timer = setTimeout(route, POLL_MS * 2);
}

async function showBatch(batchId, params) {
  const offset = params.get("offset") || "0";
  const status = params.get("status") || "";
  const b = await api("batch/" + encodeURIComponent(batchId), { offset, ...(status ? { status } : {}) });
  const go = (changes) => {
    const next = new URLSearchParams();
    for (const [k, v] of Object.entries({ offset, status, ...changes })) if (v && v !== "0") next.set(k, v);
    location.hash = batchHref(batchId) + (next.toString() ? "?" + next.toString() : "");
  };
  const o = b.options || {};
  const took = b.finished_at ? fmtDuration((b.finished_at - b.started_at) * 1000) : b.status === "running" ? "running…" : "–";
  const head = el("div", { class: "runhead" },
    el("div", { class: "grow" },
      el("h1", {}, badge(b.status), el("span", { class: "mono" }, b.batch_id)),
      el("div", { class: "meta" },
        el("span", {}, "workflow ", el("b", { title: b.workflow_path }, b.workflow_path || "–")),
        el("span", {}, "inputs ", el("b", { title: b.inputs_path }, baseName(b.inputs_path))),
        el("span", {}, "results ", el("b", { title: b.out_path }, baseName(b.out_path))),
        el("span", {}, "started ", el("b", {}, fmtTime(b.started_at))),
        el("span", {}, "concurrency ", el("b", {}, o.concurrency ?? "–"), o.workers > 1 ? ` · ${o.workers} workers` : null),
        o.offline ? el("span", {}, el("b", {}, "offline (scripted model)")) : null,
        b.status === "crashed" ? el("span", {}, "the batch's process ended without finishing it: run the same command with --resume") : null,
        b.status === "interrupted" ? el("span", {}, "interrupted: run the same command with --resume to finish") : null)),
    el("a", { class: "button", href: "#/batches" }, "← all batches"));
  const cards = el("div", { class: "cards" },
    card("progress", `${num(b.done)} / ${num(b.total)}`, b.skipped ? `${num(b.skipped)} completed before (--resume)` : null),
    card("completed", num(b.completed)),
    card("failed", num(b.failed)),
    card("took", took),
    card("in the run log", num(b.in_log.completed + b.in_log.failed), b.logged === "failed" ? "failed runs only" : "every run"));
  const bar = el("section", { class: "panel" }, el("h2", {}, "Progress"), progressBar(b),
    el("div", { class: "legend" },
      el("span", {}, el("i", { class: "ok" }), "completed"), el("span", {}, el("i", { class: "bad" }), "failed"),
      b.skipped ? el("span", {}, el("i", { class: "skipped" }), "completed before") : null));
  const failure = b.error ? el("section", { class: "panel failure" }, el("h2", {}, "Why the batch stopped"), clipped(b.error)) : null;
  const rows = b.runs.map((run) => {
    const answer = run.final_text ? firstLine(run.final_text) : run.error ? "error: " + firstLine(run.error) : "";
    const failed = run.status !== "completed";
    const tr = el("tr", { "data-run": run.run_id, class: failed ? "failed" : null },
      el("td", { class: "num" }, typeof run.batch_index === "number" ? String(run.batch_index) : "–"),
      el("td", {}, el("a", { href: runHref(run.run_id) }, badge(run.status))),
      el("td", { class: "num" }, fmtDuration(runDuration(run))),
      el("td", { class: "num" }, String(run.tool_call_count || 0), run.tool_error_count ? el("span", { class: "errs" }, " ✗" + run.tool_error_count) : null),
      el("td", { class: "text", title: run.input || "" }, firstLine(run.input)),
      el("td", { class: "text answer" + (failed && !run.final_text ? " err" : ""), title: answer }, answer));
    tr.addEventListener("click", () => { location.hash = runHref(run.run_id); });
    return tr;
  });
  const statusSelect = el("label", { class: "sub" }, "status ",
    el("select", { name: "status", onchange: (e) => go({ status: e.target.value, offset: "0" }) },
      el("option", { value: "" }, "all, failures first"),
      ["completed", "failed", "error", "invalid_input", "max_turns", "interrupted", "crashed"].map((v) =>
        el("option", { value: v, selected: v === status ? "selected" : null }, v))));
  const start = Number(offset);
  const pager = el("div", { class: "pager" },
    el("span", { class: "sub" }, rows.length ? `runs ${num(start + 1)}–${num(start + rows.length)}` : ""),
    el("button", { type: "button", id: "newer", disabled: start > 0 ? null : "disabled",
      onclick: () => go({ offset: String(Math.max(0, start - b.limit)) }) }, "← Previous"),
    el("button", { type: "button", id: "older", disabled: b.next !== null ? null : "disabled",
      onclick: () => go({ offset: String(b.next) }) }, "Next →"));
  const table = el("table", { class: "runs batch-runs" },
    el("colgroup", {}, ["idx", "status", "dur", "tools", "in", "out"].map((c) => el("col", { class: "col-" + c }))),
    el("thead", {}, el("tr", {}, ["input", "status", "duration", "tools", "input", "answer"]
      .map((h, i) => el("th", { class: i === 0 || i === 2 || i === 3 ? "num" : null }, h)))),
    el("tbody", {}, rows));
  const runsPanel = el("section", { class: "panel" },
    el("div", { class: "toolbar" }, el("h2", {}, "Runs, failures first"), el("span", { class: "spacer" }), statusSelect),
    rows.length ? table : el("p", { class: "empty" }, b.logged === "failed" && !status ? "No failed run: this batch kept failed runs only." : "No run of this batch in the log."),
    rows.length ? pager : null);
  main.replaceChildren(...[head, cards, bar, failure, runsPanel].filter(Boolean));
  document.title = `flowrun · batch ${b.status}`;
  if (!BATCH_DONE.includes(b.status) && b.status !== "crashed") {
    timer = setTimeout(() => { if (location.hash.startsWith(batchHref(batchId))) route(); }, POLL_MS * 2);
  }
}

// ---- compare two runs ------------------------------------------------------------------------

async function showCompare(a, b) {
  const data = await api("compare", { a, b });
  const A = data.a, B = data.b;
  const ma = timeline(A), mb = timeline(B);
  const rows = [];
  const row = (label, left, right, same) => {
    const cls = same === false ? " differs" : "";
    rows.push(el("div", { class: "rowk" + cls }, label), el("div", { class: cls.trim() || null }, left), el("div", { class: cls.trim() || null }, right));
  };
  const txt = (v) => (v === null || v === undefined ? "" : String(v));
  rows.push(el("div", { class: "rowk colhead" }, ""),
    el("div", { class: "colhead" }, el("a", { href: runHref(A.run_id) }, A.run_id)),
    el("div", { class: "colhead" }, el("a", { href: runHref(B.run_id) }, B.run_id)));
  row("status", badge(A.status), badge(B.status), A.status === B.status);
  row("started", fmtTime(A.started_at), fmtTime(B.started_at));
  row("api · model", `${A.api} · ${A.model}`, `${B.api} · ${B.model}`, A.api === B.api && A.model === B.model);
  row("workflow sha256", el("span", { class: "hash" }, txt(A.workflow_sha256)), el("span", { class: "hash" }, txt(B.workflow_sha256)), A.workflow_sha256 === B.workflow_sha256);
  row("duration", fmtDuration((ma.end - ma.start) * 1000), fmtDuration((mb.end - mb.start) * 1000));
  row("tokens", num(tokens(A.usage)), num(tokens(B.usage)));
  row("turns · tool calls", `${ma.turns.length} · ${ma.calls.length}`, `${mb.turns.length} · ${mb.calls.length}`,
    ma.turns.length === mb.turns.length && ma.calls.length === mb.calls.length);
  row("input", clipped(A.input), clipped(B.input), A.input === B.input);
  const n = Math.max(ma.calls.length, mb.calls.length);
  for (let i = 0; i < n; i++) {
    const ca = ma.calls[i], cb = mb.calls[i];
    const cell = (c) => c ? el("div", {}, el("div", { class: "callname" }, c.is_error ? el("span", { class: "errs" }, "✗ ") : null, el("b", { class: "mono" }, c.name), el("span", { class: "sub" }, " · turn " + (c.turn ? c.turn.turn : "?") + " · " + fmtDuration(c.duration))),
      el("div", { class: "io" }, el("div", {}, el("div", { class: "k" }, "arguments"), clipped(pretty(c.arguments))),
        el("div", {}, el("div", { class: "k" }, "output"), clipped(pretty(c.output))))) : el("span", { class: "note" }, "no call");
    const same = !!ca && !!cb && ca.name === cb.name && ca.arguments === cb.arguments && ca.output === cb.output && !!ca.is_error === !!cb.is_error;
    row(`tool call ${i + 1}`, cell(ca), cell(cb), same);
  }
  const ansA = ma.answer || A.final_text || "", ansB = mb.answer || B.final_text || "";
  row("answer", clipped(ansA || "(no answer)"), clipped(ansB || "(no answer)"), ansA === ansB);
  if (A.error || B.error) row("error", clipped(txt(A.error)), clipped(txt(B.error)), A.error === B.error);

  const diffPanel = el("section", { class: "panel", id: "workflow-diff" }, el("h2", {}, "Workflow file: what changed between the two runs"));
  if (!data.same_workflow) diffPanel.append(el("p", { class: "note" }, "These runs used different workflow files."));
  if (data.diff === null) {
    diffPanel.append(el("p", { class: "note" }, A.workflow_sha256 === B.workflow_sha256 ? "Same file content (same sha256)." : ""),
      el("p", { class: "note" }, "left: " + data.workflow_a.where), el("p", { class: "note" }, "right: " + data.workflow_b.where));
  } else if (!data.diff.length) {
    diffPanel.append(el("div", { class: "diff" }, el("div", { class: "same" }, "The two runs used the same workflow file.")));
  } else {
    diffPanel.append(el("p", { class: "sub" }, "left from " + data.workflow_a.where + "; right from " + data.workflow_b.where),
      el("div", { class: "diff" }, data.diff.map((l) => el("div", { class: l.kind }, l.text))));
  }
  main.replaceChildren(
    el("div", { class: "runhead" }, el("div", { class: "grow" }, el("h1", {}, "Compare two runs"),
      el("div", { class: "meta" }, el("span", {}, "workflow ", el("b", {}, A.workflow_path || "–")),
        !data.same_workflow ? el("span", {}, "and ", el("b", {}, B.workflow_path || "–")) : null,
        el("span", {}, "rows that differ are highlighted"))),
      el("a", { class: "button", href: "#/" }, "← all runs")),
    el("div", { class: "cmp panel", style: "padding:0" }, rows),
    diffPanel);
  document.title = "flowrun · compare";
}

route();

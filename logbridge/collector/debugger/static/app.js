// The logbridge debugger page: events live from the collector, filtered, counted, explained.
// Everything from the application (names, ids, values) is rendered with textContent,
// never as HTML, so an event named "<img src=x onerror=alert(1)>" is just those characters.
"use strict";

(function () {
  const MAX_ROWS = 500; // rows drawn at once; the filters narrow down the rest
  const CHART_SECONDS = 300;
  const POLL_MS = 1000;

  const state = {
    events: [], // newest first, at most maxEvents
    byId: new Map(),
    maxEvents: 10000,
    lastId: 0,
    paused: false,
    pending: [], // arrived while paused
    expanded: new Set(), // event ids showing their JSON
    rawShown: new Set(), // event ids showing their request
    requests: new Map(), // request id -> fetched request (or an error text)
    rowNodes: new Map(), // event id -> its drawn row, reused until the event's view changes
    mode: "connecting",
    source: null,
    pollTimer: 0,
    failures: 0,
    drawQueued: false,
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    rows: $("rows"), empty: $("empty"), more: $("more"), endpoint: $("endpoint"),
    status: $("status"), pause: $("pause"), clear: $("clear"),
    search: $("search"), type: $("filter-type"), event: $("filter-event"),
    user: $("filter-user"), invalid: $("filter-invalid"),
    countEvents: $("count-events"), countInvalid: $("count-invalid"),
    countRequests: $("count-requests"), byType: $("by-type"), byEvent: $("by-event"),
    chart: $("chart"), chartPeak: $("chart-peak"), windowNote: $("window-note"),
    byStatus: $("by-status"),
  };

  // -- DOM helpers: text only

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function show(value) {
    if (value === null || value === undefined || value === "") return "—";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function clock(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return show(iso);
    const pad = (n, w) => String(n).padStart(w || 2, "0");
    return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
      `.${pad(date.getMilliseconds(), 3)}`;
  }

  // -- receiving events

  function add(events) {
    if (state.paused) {
      state.pending.push(...events);
      setStatus(state.mode);
      return;
    }
    for (const event of events) {
      if (state.byId.has(event.id)) continue;
      event._text = JSON.stringify(event.message).toLowerCase();
      state.events.unshift(event);
      state.byId.set(event.id, event);
      if (event.id > state.lastId) state.lastId = event.id;
    }
    while (state.events.length > state.maxEvents) {
      const gone = state.events.pop();
      state.byId.delete(gone.id);
      state.expanded.delete(gone.id);
      state.rawShown.delete(gone.id);
      state.rowNodes.delete(gone.id);
    }
    queueDraw();
  }

  function forget() {
    state.events = [];
    state.byId.clear();
    state.pending = [];
    state.expanded.clear();
    state.rawShown.clear();
    state.requests.clear();
    state.rowNodes.clear();
    queueDraw();
  }

  function connect() {
    if (!window.EventSource) {
      startPolling();
      return;
    }
    const source = new EventSource(`/events/stream?after=${state.lastId}`);
    state.source = source;
    source.onopen = () => { state.failures = 0; setStatus("live"); };
    source.onmessage = (message) => {
      try { add([JSON.parse(message.data)]); } catch (err) { /* one bad event, not the page */ }
    };
    source.addEventListener("clear", () => forget());
    source.onerror = () => {
      state.failures += 1;
      if (source.readyState === EventSource.CLOSED || state.failures >= 3) {
        source.close();
        state.source = null;
        startPolling();
      } else {
        setStatus("reconnecting");
      }
    };
  }

  function startPolling() {
    setStatus("polling");
    const poll = () => {
      fetch(`/events?after=${state.lastId}`, { cache: "no-store" })
        .then((answer) => answer.json())
        .then((body) => {
          state.maxEvents = body.max_events || state.maxEvents;
          if (body.kept === 0 && state.events.length && !state.paused) forget();
          add(body.events.slice().reverse());
          setStatus("polling");
        })
        .catch(() => setStatus("offline"))
        .finally(() => { state.pollTimer = window.setTimeout(poll, POLL_MS); });
    };
    poll();
  }

  function setStatus(mode) {
    state.mode = mode;
    const label = state.paused ? `paused · ${state.pending.length} waiting` : mode;
    ui.status.textContent = label;
    ui.status.dataset.state = state.paused ? "paused" : mode;
  }

  // -- filters

  function filters() {
    return {
      text: ui.search.value.trim().toLowerCase(),
      type: ui.type.value,
      event: ui.event.value,
      user: ui.user.value.trim(),
      invalid: ui.invalid.checked,
    };
  }

  function matches(event, f) {
    if (f.invalid && event.valid) return false;
    if (f.type && event.type !== f.type) return false;
    if (f.event && event.name !== f.event) return false;
    if (f.user) {
      const msg = event.message || {};
      const ids = [msg.userId, msg.anonymousId, msg.user_id, msg.device_id].map(show);
      if (!ids.some((id) => id.includes(f.user))) return false;
    }
    if (f.text) {
      const row = `${event.type} ${event.name} ${event.user} ${event.format}`.toLowerCase();
      if (!row.includes(f.text) && !event._text.includes(f.text)) return false;
    }
    return true;
  }

  function fillSelect(select, values) {
    const current = select.value;
    const wanted = ["", ...values];
    const have = Array.from(select.options, (option) => option.value);
    if (wanted.length === have.length && wanted.every((v, i) => v === have[i])) return;
    select.replaceChildren();
    for (const value of wanted) {
      const option = el("option", "", value || "all");
      option.value = value;
      select.append(option);
    }
    select.value = wanted.includes(current) ? current : "";
  }

  // -- drawing

  function queueDraw() {
    if (state.drawQueued) return;
    state.drawQueued = true;
    window.requestAnimationFrame(() => { state.drawQueued = false; draw(); });
  }

  function draw() {
    const f = filters();
    const shown = [];
    let matching = 0;
    for (const event of state.events) {
      if (!matches(event, f)) continue;
      matching += 1;
      if (shown.length < MAX_ROWS) shown.push(event);
    }
    reconcile(ui.rows, shown.map(rowFor));
    ui.empty.hidden = state.events.length > 0;
    ui.more.hidden = matching <= shown.length;
    ui.more.textContent = `Showing the newest ${shown.length} of ${matching} matching events; ` +
      "narrow the filters to see others.";
    if (state.events.length > 0 && matching === 0) {
      ui.more.hidden = false;
      ui.more.textContent = "No event matches these filters.";
    }
    drawCounts();
    drawChart();
  }

  function rowFor(event) {
    let node = state.rowNodes.get(event.id);
    if (!node) {
      node = row(event);
      state.rowNodes.set(event.id, node);
    }
    return node;
  }

  // Put ``nodes`` in ``parent`` in order, leaving rows already in place untouched (so a
  // selection in an open event survives new events arriving above it).
  function reconcile(parent, nodes) {
    let current = parent.firstChild;
    for (const node of nodes) {
      if (node === current) {
        current = current.nextSibling;
        continue;
      }
      parent.insertBefore(node, current);
    }
    while (current) {
      const next = current.nextSibling;
      current.remove();
      current = next;
    }
  }

  function redrawRow(id) {
    state.rowNodes.delete(id);
    queueDraw();
  }

  function row(event) {
    const item = el("li", event.valid ? "event" : "event invalid");
    item.dataset.id = String(event.id);
    const line = el("button", "line");
    line.type = "button";
    line.setAttribute("aria-expanded", String(state.expanded.has(event.id)));
    line.append(
      el("span", "received", clock(event.received_at)),
      el("span", `type type-${String(event.type || "unknown").replace(/[^a-z]/gi, "")}`,
        show(event.type)),
      el("span", event.name ? "name" : "name none", show(event.name)),
      el("span", "user", show(event.user)),
      el("span", "timestamp", show(event.timestamp)),
      el("span", "format", show(event.format)),
      el("span", "request", `#${event.request_id}`),
      el("span", "check", event.valid ? "valid" :
        `${event.problems.length} problem${event.problems.length === 1 ? "" : "s"}`),
    );
    line.addEventListener("click", () => toggle(state.expanded, event.id));
    line.addEventListener("keydown", (key) => {
      if (key.key === "Escape" && state.expanded.has(event.id)) toggle(state.expanded, event.id);
    });
    item.append(line);
    if (!event.valid) {
      const reasons = el("ul", "problems-inline");
      for (const problem of event.problems) {
        const reason = el("li");
        reason.append(el("code", "rule", problem.rule), el("span", "", ` ${problem.message}`));
        reasons.append(reason);
      }
      item.append(reasons);
    }
    if (state.expanded.has(event.id)) item.append(detail(event));
    return item;
  }

  function toggle(set, id) {
    if (set.has(id)) set.delete(id); else set.add(id);
    if (set === state.expanded && !set.has(id)) state.rawShown.delete(id);
    state.rowNodes.delete(id);
    draw();
  }

  function detail(event) {
    const box = el("div", "detail");
    const badFields = new Map();
    for (const problem of event.problems) {
      if (problem.field) badFields.set(problem.field, problem);
    }
    const json = el("pre", "json");
    renderJson(json, event.message, 0, badFields);
    const tools = el("div", "tools");
    const raw = el("button", "raw-toggle",
      state.rawShown.has(event.id) ? "Hide the raw request" : "Show the raw request");
    raw.type = "button";
    raw.addEventListener("click", (click) => {
      click.stopPropagation();
      toggle(state.rawShown, event.id);
    });
    tools.append(el("span", "meta", `event #${event.id} · received ${event.received_at}`), raw);
    box.append(tools, json);
    if (state.rawShown.has(event.id)) box.append(rawRequest(event.request_id));
    return box;
  }

  // Pretty JSON as spans; a top-level key with a problem is marked, with the rule it broke.
  function renderJson(parent, value, depth, badFields) {
    const pad = "  ".repeat(depth);
    if (Array.isArray(value)) {
      if (value.length === 0) { parent.append(el("span", "j-p", "[]")); return; }
      parent.append(el("span", "j-p", "[\n"));
      value.forEach((item, index) => {
        parent.append(pad + "  ");
        renderJson(parent, item, depth + 1, null);
        parent.append(index < value.length - 1 ? ",\n" : "\n");
      });
      parent.append(pad, el("span", "j-p", "]"));
      return;
    }
    if (value !== null && typeof value === "object") {
      const keys = Object.keys(value);
      if (keys.length === 0) { parent.append(el("span", "j-p", "{}")); return; }
      parent.append(el("span", "j-p", "{\n"));
      keys.forEach((key, index) => {
        const problem = badFields && badFields.get(key);
        const holder = problem ? el("span", "j-bad") : parent;
        parent.append(pad + "  ");
        holder.append(el("span", "j-k", JSON.stringify(key)), ": ");
        renderJson(holder, value[key], depth + 1, null);
        if (index < keys.length - 1) holder.append(",");
        if (problem) {
          holder.append(el("span", "j-why", `  ⚠ ${problem.rule}: ${problem.message}`));
          parent.append(holder);
        }
        parent.append("\n");
      });
      parent.append(pad, el("span", "j-p", "}"));
      return;
    }
    const kind = value === null ? "j-l" : typeof value === "string" ? "j-s"
      : typeof value === "number" ? "j-n" : "j-l";
    parent.append(el("span", kind, JSON.stringify(value)));
  }

  function rawRequest(requestId) {
    const box = el("div", "raw");
    const known = state.requests.get(requestId);
    if (!known) {
      box.append(el("p", "meta", "Loading the request…"));
      fetch(`/requests/${requestId}`, { cache: "no-store" })
        .then((answer) => answer.json().then((body) => [answer.ok, body]))
        .then(([ok, body]) => state.requests.set(requestId, ok ? body : { error: body.error }))
        .catch(() => state.requests.set(requestId, { error: "the collector did not answer" }))
        .finally(() => {
          for (const id of state.rawShown) {
            const shown = state.byId.get(id);
            if (shown && shown.request_id === requestId) redrawRow(id);
          }
        });
      return box;
    }
    if (known.error) {
      box.append(el("p", "meta", `Request #${requestId}: ${known.error}.`));
      return box;
    }
    box.append(el("h3", "", `${known.method} ${known.path} → ${known.status}` +
      ` · ${known.body_bytes} bytes · ${known.message_count} messages`));
    const table = el("table", "headers");
    for (const [name, value] of Object.entries(known.headers)) {
      const tr = el("tr");
      tr.append(el("th", "", name), el("td", "", value));
      table.append(tr);
    }
    box.append(table);
    if (known.body_note) box.append(el("p", "meta", `Body ${known.body_note}.`));
    box.append(el("pre", "body", known.body));
    return box;
  }

  function drawCounts() {
    const types = new Map();
    const names = new Map();
    let invalid = 0;
    const requests = new Set();
    for (const event of state.events) {
      types.set(show(event.type), (types.get(show(event.type)) || 0) + 1);
      if (event.name) names.set(event.name, (names.get(event.name) || 0) + 1);
      if (!event.valid) invalid += 1;
      requests.add(event.request_id);
    }
    ui.countEvents.textContent = String(state.events.length);
    ui.countInvalid.textContent = String(invalid);
    ui.countInvalid.parentElement.classList.toggle("some", invalid > 0);
    ui.countRequests.textContent = String(requests.size);
    fillCounts(ui.byType, types, ui.type);
    fillCounts(ui.byEvent, names, ui.event);
    fillSelect(ui.type, Array.from(types.keys()).filter((t) => t !== "—").sort());
    fillSelect(ui.event, Array.from(names.keys()).sort());
    ui.windowNote.textContent = `The collector keeps the last ${state.maxEvents.toLocaleString("en")} events; counts and chart cover those.`;
  }

  function fillCounts(list, counts, select) {
    const sorted = Array.from(counts.entries()).sort((a, b) => b[1] - a[1]).slice(0, 12);
    const top = sorted.length ? sorted[0][1] : 1;
    list.replaceChildren(...sorted.map(([name, count]) => {
      const item = el("li");
      const pick = el("button", select.value === name ? "pick on" : "pick");
      pick.type = "button";
      pick.title = `Show only ${name}`;
      const bar = el("span", "meter");
      bar.style.width = `${Math.max(2, Math.round((100 * count) / top))}%`;
      pick.append(el("span", "label", name), el("span", "num", String(count)), bar);
      pick.addEventListener("click", () => {
        select.value = select.value === name ? "" : name;
        draw();
      });
      item.append(pick);
      return item;
    }));
    if (!sorted.length) list.append(el("li", "meta", "none yet"));
  }

  function drawChart() {
    const canvas = ui.chart;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 320;
    const height = canvas.clientHeight || 110;
    if (canvas.width !== Math.round(width * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const now = Math.floor(Date.now() / 1000);
    const buckets = new Array(CHART_SECONDS).fill(0);
    for (const event of state.events) {
      const second = Math.floor(Date.parse(event.received_at) / 1000);
      const slot = CHART_SECONDS - 1 - (now - second);
      if (slot < 0) break; // newest first: the rest are older still
      if (slot < CHART_SECONDS) buckets[slot] += 1;
    }
    const peak = Math.max(1, ...buckets);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.strokeStyle = "#e4e7ec";
    ctx.lineWidth = 1;
    for (const y of [0.5, height / 2, height - 0.5]) {
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(width, y); ctx.stroke();
    }
    const step = width / CHART_SECONDS;
    ctx.fillStyle = "#4f46e5";
    buckets.forEach((count, index) => {
      if (!count) return;
      const h = Math.max(2, ((height - 6) * count) / peak);
      ctx.fillRect(index * step, height - h, Math.max(2, step - 0.5), h);
    });
    ui.chartPeak.textContent = `peak ${Math.max(...buckets)}/s`;
  }

  // Refused requests bring no events, so the answers are shown too: a 401 explains a lot.
  const STATUS_WORDS = {
    200: "accepted", 400: "bad request", 401: "write key refused", 404: "no such path",
    405: "wrong method", 411: "no length", 413: "too large", 415: "bad encoding",
    429: "rate limited", 500: "server error", 503: "unavailable", 0: "connection reset",
  };

  function drawStatuses(stats) {
    const entries = Object.entries(stats.requests_by_status || {}).sort();
    ui.byStatus.replaceChildren(...entries.map(([code, count]) => {
      const item = el("li", code.startsWith("2") ? "ok" : "refused");
      item.append(el("span", "code", code === "0" ? "reset" : code),
        el("span", "label", STATUS_WORDS[code] || ""), el("span", "num", String(count)));
      return item;
    }));
    if (!entries.length) ui.byStatus.append(el("li", "meta", "none yet"));
  }

  function pollStats() {
    fetch("/stats", { cache: "no-store" })
      .then((answer) => answer.json())
      .then(drawStatuses)
      .catch(() => {})
      .finally(() => window.setTimeout(pollStats, 2000));
  }

  // -- controls

  ui.pause.addEventListener("click", () => {
    state.paused = !state.paused;
    ui.pause.textContent = state.paused ? "Resume" : "Pause";
    ui.pause.setAttribute("aria-pressed", String(state.paused));
    if (!state.paused) {
      const waiting = state.pending;
      state.pending = [];
      add(waiting);
    }
    setStatus(state.mode);
  });

  ui.clear.addEventListener("click", () => {
    fetch("/events", { method: "DELETE" }).finally(forget);
  });

  for (const input of [ui.search, ui.user]) input.addEventListener("input", queueDraw);
  for (const input of [ui.type, ui.event, ui.invalid]) input.addEventListener("change", queueDraw);

  ui.endpoint.textContent = `AnalyticsHandler(endpoint="${window.location.origin}")`;
  window.setInterval(drawChart, 1000);
  fetch("/stats", { cache: "no-store" })
    .then((answer) => answer.json())
    .then((stats) => { state.maxEvents = stats.events.max_events; drawStatuses(stats); })
    .catch(() => {})
    .finally(() => { connect(); queueDraw(); window.setTimeout(pollStats, 2000); });
})();

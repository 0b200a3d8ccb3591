// crash-aggregates SQL console: the CodeMirror editor, the schema sidebar, {{ name }} parameter fields,
// running a query through POST /api/sql (streamed: the first rows show while the rest arrive),
// a paged results table, downloads and the chart builder (querychart.js). No inline script (CSP).
"use strict";

(function () {
  const PAGE = 50;
  const TYPES = ["text", "number", "date", "date_range", "list"];
  const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})(\.(start|end))?\s*\}\}/g;

  const root = document.getElementById("console");
  if (!root) return;
  const $ = function (id) { return document.getElementById(id); };
  const state = { answer: null, page: 0, running: false, params: {}, chart: {}, view: null };

  // -- the editor ------------------------------------------------------------------------
  function makeEditor() {
    const initial = $("editor").dataset.initial || "";
    const CM = window.CodeMirror;
    if (!CM) {  // the bundle did not load: a plain text area still works
      const area = $("sql-fallback");
      area.hidden = false;
      area.addEventListener("input", onEdit);
      return { get: function () { return area.value; }, set: function (t) { area.value = t; onEdit(); }, mark: function () {}, clear: function () {} };
    }
    const sqlLang = CM.sql({ dialect: CM.StandardSQL, upperCaseKeywords: false, schema: { crash_aggregates: ["submission_date", "activity_date", "dimensions", "stats"] } });
    // In a shadow root: CodeMirror then styles itself with a constructed style sheet instead of a
    // <style> element, which the page's CSP (style-src 'self') would refuse.
    const shadow = $("editor").attachShadow({ mode: "open" });
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/static/editor.css";
    shadow.appendChild(link);
    const mount = document.createElement("div");
    shadow.appendChild(mount);
    const view = new CM.EditorView({
      parent: mount,
      root: shadow,
      doc: initial,
      extensions: [
        CM.basicSetup, sqlLang, CM.lintGutter(),
        CM.keymap.of([{ key: "Mod-Enter", run: function () { run(); return true; } }]),
        CM.placeholder("SELECT ... FROM crash_aggregates WHERE dimensions['channel'] = {{ channel }}"),
        CM.EditorView.updateListener.of(function (u) { if (u.docChanged) onEdit(); }),
        CM.EditorView.contentAttributes.of({ "aria-label": "SQL", "data-testid": "sql-editor" }),
      ],
    });
    state.view = view;
    return {
      get: function () { return view.state.doc.toString(); },
      set: function (t) { view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: t } }); },
      insert: function (t) { view.dispatch(view.state.replaceSelection(t)); view.focus(); },
      mark: function (line, column, message) {
        const doc = view.state.doc;
        const l = doc.line(Math.max(1, Math.min(line, doc.lines)));
        const from = Math.min(l.from + Math.max(0, column - 1), l.to);
        const to = Math.min(from + 1, doc.length);
        view.dispatch(CM.setDiagnostics(view.state, [{ from: from, to: Math.max(to, from), severity: "error", message: message }]));
        view.dispatch({ selection: { anchor: from }, scrollIntoView: true });
      },
      clear: function () { view.dispatch(CM.setDiagnostics(view.state, [])); },
    };
  }

  // -- parameters ------------------------------------------------------------------------
  function declared(sql) {
    const found = new Map();
    let m;
    PLACEHOLDER.lastIndex = 0;
    while ((m = PLACEHOLDER.exec(sql)) !== null) {
      if (m[3] || !found.has(m[1])) found.set(m[1], m[3] ? "date_range" : found.get(m[1]) || null);
    }
    return found;
  }

  function paramField(name, spec) {
    const wrap = document.createElement("div");
    wrap.className = "parameter";
    wrap.dataset.name = name;
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = name;
    const type = document.createElement("select");
    type.setAttribute("aria-label", name + " type");
    type.name = "type";
    TYPES.forEach(function (t) { const o = document.createElement("option"); o.value = t; o.textContent = t.replace("_", " "); type.appendChild(o); });
    type.value = spec.type;
    const values = document.createElement("span");
    values.className = "values";
    function inputs() {
      values.replaceChildren();
      const t = type.value;
      const make = function (kind, key, value, aria) {
        const i = document.createElement("input");
        i.type = kind; i.name = key; i.value = value === undefined || value === null ? "" : value;
        i.setAttribute("aria-label", aria);
        i.addEventListener("input", function () { read(); });
        values.appendChild(i);
        return i;
      };
      const v = spec.value;
      if (t === "date_range") {
        make("date", "start", v && v.start, name + " start");
        make("date", "end", v && v.end, name + " end");
      } else if (t === "list") {
        const text = make("text", "value", Array.isArray(v) ? v.join(", ") : v, name);
        text.placeholder = "a, b, c";
        const from = make("text", "options_query", spec.options_query, name + " values from a query");
        from.placeholder = "or choose among a query's values: SELECT …";
        from.size = 36;
        const box = document.createElement("span");
        box.className = "choices";
        values.appendChild(box);
        const fill = function () {
          spec.options_query = from.value.trim() || undefined;
          choices(box, spec.options_query, text, read);
        };
        from.addEventListener("change", fill);
        if (spec.options_query) fill();
      } else {
        make(t === "number" ? "number" : t === "date" ? "date" : "text", "value", typeof v === "object" ? "" : v, name).step = "any";
      }
    }
    function read() {
      const t = type.value;
      const get = function (key) { const i = values.querySelector(`input[name=${key}]`); return i ? i.value : ""; };
      spec.type = t;
      if (t === "date_range") spec.value = { start: get("start"), end: get("end") };
      else if (t === "list") spec.value = get("value").split(",").map(function (x) { return x.trim(); }).filter(function (x) { return x !== ""; });
      else spec.value = get("value");
    }
    type.addEventListener("change", function () { spec.value = null; inputs(); read(); });
    inputs();
    wrap.appendChild(label); wrap.appendChild(type); wrap.appendChild(values);
    return wrap;
  }

  // A list's choices from a query (its first column), as checkboxes that fill the list's field.
  async function choices(box, sql, field, changed) {
    box.replaceChildren();
    if (!sql) return;
    const headers = { "Content-Type": "application/json" };
    if (root.dataset.csrf) headers["X-CSRF-Token"] = root.dataset.csrf;
    const r = await fetch("/api/sql", { method: "POST", headers: headers, credentials: "same-origin", body: JSON.stringify({ sql: sql, dialect: $("dialect").value }) });
    const answer = await r.json();
    if (!r.ok) { box.textContent = answer.error; box.classList.add("bad"); return; }
    box.classList.remove("bad");
    const chosen = new Set(field.value.split(",").map(function (x) { return x.trim(); }));
    answer.rows.slice(0, 200).forEach(function (row) {
      const value = row[0] === null ? "" : String(row[0]);
      const label = document.createElement("label");
      const check = document.createElement("input");
      check.type = "checkbox"; check.value = value; check.checked = chosen.has(value);
      check.addEventListener("change", function () {
        field.value = Array.from(box.querySelectorAll("input:checked")).map(function (c) { return c.value; }).join(", ");
        changed();
      });
      label.appendChild(check);
      label.appendChild(document.createTextNode(" " + value));
      box.appendChild(label);
    });
  }

  function syncParameters() {
    const names = declared(editor.get());
    const box = $("parameters");
    box.querySelectorAll(".parameter").forEach(function (el) { if (!names.has(el.dataset.name)) el.remove(); });
    names.forEach(function (use, name) {
      let spec = state.params[name];
      if (!spec) spec = state.params[name] = { type: use || "text", value: null };
      if (use === "date_range" && spec.type !== "date_range") { spec.type = "date_range"; spec.value = null; box.querySelector(`.parameter[data-name="${name}"]`)?.remove(); }
      if (!box.querySelector(`.parameter[data-name="${name}"]`)) box.appendChild(paramField(name, spec));
    });
    box.hidden = names.size === 0;
  }

  function parameterValues() {
    const out = {};
    declared(editor.get()).forEach(function (_, name) {
      const spec = state.params[name];
      if (spec) out[name] = Object.assign({ type: spec.type, value: spec.value }, spec.options_query ? { options_query: spec.options_query } : {});
    });
    return out;
  }

  let editTimer = null;
  function onEdit() {
    clearTimeout(editTimer);
    editTimer = setTimeout(syncParameters, 150);
  }

  // -- the schema sidebar ----------------------------------------------------------------
  function item(text, insert, title) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button"; b.className = "link"; b.textContent = text;
    if (title) b.title = title;
    b.addEventListener("click", function () { if (editor.insert) editor.insert(insert); });
    li.appendChild(b);
    return li;
  }

  function section(title, open) {
    const d = document.createElement("details");
    if (open) d.open = true;
    const s = document.createElement("summary");
    s.textContent = title;
    d.appendChild(s);
    const ul = document.createElement("ul");
    d.appendChild(ul);
    $("schema").appendChild(d);
    return ul;
  }

  function loadSchema() {
    fetch("/api/schema", { credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (res) {
        const status = $("schema-status");
        if (!res.ok) { status.textContent = res.body.error || "the schema could not be loaded"; return; }
        const s = res.body;
        status.textContent = "Common values over the published days since " + s.since + ". Click to insert.";
        const cols = section("Columns", true);
        s.columns.forEach(function (c) { cols.appendChild(item(c.name + " · " + c.type.toLowerCase(), c.name)); });
        const dims = section("Dimensions (" + s.dimensions.length + ")", true);
        s.dimensions.forEach(function (d) {
          const li = document.createElement("li");
          const det = document.createElement("details");
          const sum = document.createElement("summary");
          sum.textContent = d.key;
          det.appendChild(sum);
          const ul = document.createElement("ul");
          ul.appendChild(item("dimensions['" + d.key + "']", "dimensions['" + d.key + "']"));
          d.values.forEach(function (v) {
            const literal = v.value === null ? "NULL" : "'" + String(v.value).replace(/'/g, "''") + "'";
            ul.appendChild(item(v.value === null ? "(absent)" : String(v.value), literal, v.aggregates.toLocaleString("en-US") + " aggregates"));
          });
          det.appendChild(ul);
          li.appendChild(det);
          dims.appendChild(li);
        });
        const stats = section("Stats (" + s.stats.length + ")", false);
        s.stats.forEach(function (k) { stats.appendChild(item(k, "stats['" + k + "']")); });
      })
      .catch(function () { $("schema-status").textContent = "the schema could not be loaded"; });
  }

  // -- results ---------------------------------------------------------------------------
  function cellText(v) {
    if (v === null || v === undefined) return "NULL";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function drawTable() {
    const a = state.answer;
    const table = $("result-table");
    const head = table.tHead;
    const body = table.tBodies[0];
    head.replaceChildren(); body.replaceChildren();
    if (!a) return;
    const tr = head.insertRow();
    a.columns.forEach(function (c, i) {
      const th = document.createElement("th");
      th.textContent = c;
      th.title = a.types[i] || "";
      tr.appendChild(th);
    });
    const first = state.page * PAGE;
    a.rows.slice(first, first + PAGE).forEach(function (row) {
      const r = body.insertRow();
      row.forEach(function (v) { const td = r.insertCell(); td.textContent = cellText(v); if (typeof v === "number") td.className = "num"; if (v === null) td.classList.add("null"); });
    });
    const pages = Math.max(1, Math.ceil(a.rows.length / PAGE));
    const pager = $("pager");
    pager.replaceChildren();
    const info = document.createElement("span");
    info.id = "page-info";
    const last = Math.min(first + PAGE, a.rows.length);
    info.textContent = a.rows.length ? `rows ${(first + 1).toLocaleString("en-US")}–${last.toLocaleString("en-US")} of ${a.rows.length.toLocaleString("en-US")}${a.done ? "" : " so far"}` : "no rows";
    const prev = document.createElement("button");
    prev.type = "button"; prev.textContent = "‹ previous"; prev.className = "link"; prev.disabled = state.page === 0;
    prev.addEventListener("click", function () { state.page--; drawTable(); });
    const next = document.createElement("button");
    next.type = "button"; next.textContent = "next ›"; next.className = "link"; next.disabled = state.page >= pages - 1;
    next.addEventListener("click", function () { state.page++; drawTable(); });
    pager.appendChild(prev); pager.appendChild(info); pager.appendChild(next);
  }

  function chartForm() {
    const form = $("chart-form");
    const a = state.answer;
    const s = QueryChart.defaults(a, state.chart);
    form.elements.type.value = s.type;
    ["x", "y", "series"].forEach(function (name) {
      const sel = form.elements[name];
      const keep = name === "series" ? [""] : [];
      sel.replaceChildren();
      if (name === "series") { const o = document.createElement("option"); o.value = ""; o.textContent = "(none)"; sel.appendChild(o); }
      a.columns.forEach(function (c) { const o = document.createElement("option"); o.value = c; o.textContent = c; sel.appendChild(o); });
      if (name === "y") Array.from(sel.options).forEach(function (o) { o.selected = s.y.indexOf(o.value) >= 0; });
      else sel.value = name === "x" ? s.x : s.series || "";
      void keep;
    });
  }

  function readChartForm() {
    const form = $("chart-form");
    state.chart = {
      type: form.elements.type.value,
      x: form.elements.x.value,
      y: Array.from(form.elements.y.selectedOptions).map(function (o) { return o.value; }),
      series: form.elements.series.value || null,
    };
  }

  function drawChart() {
    if (!state.answer || $("results").querySelector('[data-panel="chart"]').hidden) return;
    const drawn = QueryChart.render($("chart"), state.answer, state.chart);
    if (drawn) state.chart = drawn.settings;
  }

  function showTab(name) {
    document.querySelectorAll("#results .tab").forEach(function (b) { b.classList.toggle("active", b.dataset.tab === name); });
    document.querySelectorAll("#results .tab-panel").forEach(function (p) { p.hidden = p.dataset.panel !== name; });
    if (name === "chart") drawChart();
  }

  // -- running ---------------------------------------------------------------------------
  function status(text) { $("status").textContent = text; }

  function fail(message, line, column) {
    const box = $("error");
    box.textContent = message;
    box.hidden = false;
    $("results").hidden = true;
    if (line) editor.mark(line, column || 1, message);
    status("");
  }

  function request() {
    return { sql: editor.get(), dialect: $("dialect").value, parameters: parameterValues() };
  }

  async function run() {
    if (state.running) return;
    const body = request();
    if (!body.sql.trim()) { fail("write a query first"); return; }
    state.running = true;
    $("run").disabled = true;
    $("error").hidden = true; $("cut").hidden = true;
    editor.clear();
    status("sending…");
    const headers = { "Content-Type": "application/json", Accept: "application/x-ndjson" };
    if (root.dataset.csrf) headers["X-CSRF-Token"] = root.dataset.csrf;
    const started = performance.now();
    try {
      const response = await fetch("/api/sql", { method: "POST", headers: headers, credentials: "same-origin", body: JSON.stringify(Object.assign({ stream: true }, body)) });
      if (!response.ok) {
        let err = {};
        try { err = await response.json(); } catch (e) { err = { error: "the server answered " + response.status }; }
        fail(err.error || "the query failed", err.line, err.column);
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      let answer = null;
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        buffered += decoder.decode(chunk.value, { stream: true });
        let nl;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (!line.trim()) continue;
          const msg = JSON.parse(line);
          if (msg.queued) status(`waiting in line: position ${msg.queued}`);
          else if (msg.running) status("running…");
          else if (msg.columns) {
            answer = { columns: msg.columns, types: msg.types, rows: [], done: false };
            state.answer = answer; state.page = 0;
            $("results").hidden = false;
            drawTable();
          } else if (msg.rows) {
            const before = answer.rows.length;
            for (const r of msg.rows) answer.rows.push(r);
            status(`running… ${answer.rows.length.toLocaleString("en-US")} rows so far`);
            if (before < PAGE * (state.page + 1)) drawTable();
            else drawTable();
          } else if (msg.done) {
            answer.done = true;
            answer.cut = msg.cut;
            const n = msg.row_count;
            status(`${n.toLocaleString("en-US")} row${n === 1 ? "" : "s"} in ${msg.seconds} s`);
            $("run").dataset.rows = String(n);
            if (msg.cut) { $("cut").textContent = msg.cut + ": download the answer for every row, or narrow the query."; $("cut").hidden = false; }
            drawTable();
            chartForm();
            drawChart();
          } else if (msg.error) {
            fail(msg.error, msg.line, msg.column);
          }
        }
      }
      void started;
    } catch (e) {
      fail("the query could not be sent: " + e.message);
    } finally {
      state.running = false;
      $("run").disabled = false;
      const url = new URL(window.location.href);
      if (url.pathname === "/console") {
        url.searchParams.set("sql", body.sql);
        url.searchParams.set("dialect", body.dialect);
        history.replaceState(null, "", url);
      }
    }
  }

  // -- wiring ----------------------------------------------------------------------------
  const editor = makeEditor();
  $("query-form").addEventListener("submit", function (e) { e.preventDefault(); run(); });
  document.querySelectorAll("#results .tab").forEach(function (b) { b.addEventListener("click", function () { showTab(b.dataset.tab); }); });
  $("chart-form").addEventListener("change", function () { readChartForm(); drawChart(); });
  $("download-form").addEventListener("submit", function () {
    const b = request();
    const f = $("download-form");
    f.elements.sql.value = b.sql; f.elements.dialect.value = b.dialect; f.elements.parameters.value = JSON.stringify(b.parameters);
  });
  syncParameters();
  loadSchema();

  // What saved-query pages build on.
  window.SqlConsole = {
    sql: function () { return editor.get(); },
    setSql: function (t) { editor.set(t); syncParameters(); },
    dialect: function () { return $("dialect").value; },
    parameters: function () { return parameterValues(); },
    setParameters: function (specs) {
      Object.keys(specs || {}).forEach(function (name) {
        const spec = specs[name] || {};
        state.params[name] = { type: spec.type || "text", value: spec.value !== undefined ? spec.value : spec.default, options_query: spec.options_query };
      });
      $("parameters").querySelectorAll(".parameter").forEach(function (el) { el.remove(); });
      syncParameters();
    },
    chart: function () { return Object.assign({}, state.chart); },
    setChart: function (c) { state.chart = Object.assign({}, c || {}); },
    run: run,
    answer: function () { return state.answer; },
  };
  document.dispatchEvent(new Event("sqlconsole:ready"));
})();

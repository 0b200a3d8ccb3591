// crash-aggregates dashboards: lays the widgets out on their 12-column grid, runs each saved query
// through POST /api/sql with the dashboard's parameter values and draws it (querychart.js);
// for editors, adds and removes widgets and parameters through the JSON API. No inline script (CSP).
"use strict";

(function () {
  const $ = function (id) { return document.getElementById(id); };

  const { api, say } = window.ConsoleApi;

  // -- the list: a new dashboard ----------------------------------------------------------
  const create = $("new-dashboard");
  if (create) create.addEventListener("submit", async function (e) {
    e.preventDefault();
    try {
      const d = await api("POST", "/api/dashboards", { name: create.elements.name.value });
      window.location.href = "/dashboards/" + d.id;
    } catch (err) { say(err.message, true); }
  });

  const dataBlock = $("board-data");
  if (!dataBlock) return;
  const board = JSON.parse(dataBlock.textContent);

  // -- the grid (CSSOM, not style attributes: the CSP forbids those) ---------------------
  document.querySelectorAll("#board .widget").forEach(function (el) {
    const d = el.dataset;
    el.style.gridColumn = `${Number(d.x) + 1} / span ${d.w}`;
    el.style.gridRow = `${Number(d.y) + 1} / span ${d.h}`;
  });

  // -- the queries ------------------------------------------------------------------------
  function values(widget) {
    const out = {};
    Object.keys(widget.query.parameters || {}).forEach(function (name) {
      const value = widget.query.parameters[name];
      if (value !== null && value !== undefined) out[name] = value;
    });
    return out;
  }

  async function draw(el, widget) {
    const status = el.querySelector(".widget-status");
    try {
      const answer = await api("POST", "/api/sql", {
        sql: widget.query.sql, dialect: widget.query.dialect,
        declarations: widget.query.declarations, parameters: values(widget),
      });
      const drawn = QueryChart.render(el.querySelector(".query-chart"), answer, widget.query.chart || {});
      const n = answer.row_count;
      status.textContent = answer.cut ? answer.cut : `${n.toLocaleString("en-US")} row${n === 1 ? "" : "s"}`;
      el.dataset.ready = "1";
      el.dataset.series = drawn ? String(drawn.series) : "0";
    } catch (err) {
      status.textContent = err.message;
      status.classList.add("bad");
      el.dataset.ready = "error";
    }
  }

  board.widgets.forEach(function (widget, i) {
    if (widget.type !== "query") return;
    draw(document.querySelector(`#board .widget[data-index="${i}"]`), widget);
  });

  // A list's field holds "a, b": the URL gets one value per item, as the server reads it.
  const form = $("board-parameters");
  if (form) form.addEventListener("submit", function (e) {
    e.preventDefault();
    const params = new URLSearchParams();
    Array.from(form.elements).forEach(function (input) {
      if (!input.name || input.value === "") return;
      if (input.type === "checkbox" && !input.checked) return;
      if (input.dataset.list) input.value.split(",").map(function (v) { return v.trim(); }).filter(Boolean).forEach(function (v) { params.append(input.name, v); });
      else params.append(input.name, input.value);
    });
    window.location.search = params.toString();
  });

  // A list parameter whose choices come from a query: one checkbox per value of its first column.
  document.querySelectorAll("#board-parameters fieldset.choices").forEach(async function (box) {
    const chosen = new Set(JSON.parse(box.dataset.selected));
    try {
      const answer = await api("POST", "/api/sql", { sql: box.dataset.optionsQuery, dialect: box.dataset.dialect });
      answer.rows.slice(0, 200).forEach(function (row) {
        const value = row[0] === null ? "" : String(row[0]);
        const label = document.createElement("label");
        const check = document.createElement("input");
        check.type = "checkbox"; check.name = box.dataset.name; check.value = value; check.checked = chosen.has(value);
        label.appendChild(check);
        label.appendChild(document.createTextNode(" " + value));
        box.appendChild(label);
      });
      box.dataset.ready = "1";
    } catch (err) {
      box.appendChild(document.createTextNode(err.message));
    }
  });

  // -- editing (editors) ------------------------------------------------------------------
  function stored(widget) {
    const w = Object.assign({}, widget);
    if (w.type === "query") w.query = widget.query.id;
    return w;
  }

  async function change(widgets, parameters) {
    try {
      await api("PUT", "/api/dashboards/" + board.id, {
        widgets: widgets.map(stored), parameters: parameters || board.parameters, version: board.version,
      });
      window.location.reload();
    } catch (err) { say(err.message, true); }
  }

  function bottom() { return board.widgets.reduce(function (m, w) { return Math.max(m, w.y + w.h); }, 0); }

  const addQuery = $("add-query");
  if (addQuery) addQuery.addEventListener("submit", function (e) {
    e.preventDefault();
    change(board.widgets.concat([{ type: "query", query: { id: Number(addQuery.elements.query.value) }, x: 0, y: bottom(), w: Number(addQuery.elements.w.value), h: 4 }]));
  });
  const addText = $("add-text");
  if (addText) addText.addEventListener("submit", function (e) {
    e.preventDefault();
    change(board.widgets.concat([{ type: "text", text: addText.elements.text.value, x: 0, y: bottom(), w: 12, h: 1 }]));
  });
  const addParameter = $("add-parameter");
  if (addParameter) addParameter.addEventListener("submit", function (e) {
    e.preventDefault();
    const f = addParameter.elements;
    const spec = { type: f.type.value };
    if (f.default.value !== "") spec.default = f.type.value === "list" ? f.default.value.split(",").map(function (v) { return v.trim(); }) : f.default.value;
    const parameters = Object.assign({}, board.parameters);
    parameters[f.name.value] = spec;
    change(board.widgets, parameters);
  });
  document.querySelectorAll("#board .remove-widget").forEach(function (b) {
    b.addEventListener("click", function () {
      change(board.widgets.filter(function (_, i) { return i !== Number(b.dataset.index); }));
    });
  });
})();

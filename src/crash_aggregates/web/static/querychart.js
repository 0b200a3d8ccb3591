// crash-aggregates: a query's answer as a chart (line, bar, area, scatter, table, single number),
// drawn with the vendored Chart.js. Used by the console, saved queries and dashboards.
// QueryChart.render(container, answer, settings): answer = {columns, rows}; settings = {type, x, y: [..], series}.
"use strict";

(function () {
  const PALETTE = ["#0b57d0", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#1098ad", "#e67700", "#5c940d", "#862e9c", "#495057"];

  function alpha(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  }

  function isNumeric(answer, index) {
    let seen = false;
    for (const row of answer.rows) {
      const v = row[index];
      if (v === null || v === undefined) continue;
      if (typeof v !== "number") return false;
      seen = true;
    }
    return seen;
  }

  // What to draw when nothing was chosen: the first column across, the numeric others up.
  function defaults(answer, settings) {
    const s = Object.assign({ type: "line", x: null, y: [], series: null }, settings || {});
    const cols = answer.columns;
    if (!s.x || cols.indexOf(s.x) < 0) s.x = cols[0];
    s.y = (s.y || []).filter(function (c) { return cols.indexOf(c) >= 0; });
    if (!s.y.length) s.y = cols.filter(function (c, i) { return c !== s.x && c !== s.series && isNumeric(answer, i); });
    if (!s.y.length && cols.length > 1) s.y = [cols[1]];
    if (s.series && cols.indexOf(s.series) < 0) s.series = null;
    return s;
  }

  function text(v) {
    if (v === null || v === undefined) return "NULL";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function table(container, answer, columns) {
    const t = document.createElement("table");
    t.className = "data";
    const idx = columns.map(function (c) { return answer.columns.indexOf(c); });
    const head = t.createTHead().insertRow();
    columns.forEach(function (c) { const th = document.createElement("th"); th.textContent = c; head.appendChild(th); });
    const body = t.createTBody();
    answer.rows.slice(0, 200).forEach(function (row) {
      const tr = body.insertRow();
      idx.forEach(function (i) { const td = tr.insertCell(); td.textContent = text(row[i]); if (typeof row[i] === "number") td.className = "num"; });
    });
    const wrap = document.createElement("div");
    wrap.className = "scroll";
    wrap.appendChild(t);
    container.appendChild(wrap);
    return { kind: "table", series: columns.length };
  }

  function number(container, answer, s) {
    const i = answer.columns.indexOf(s.y[0]);
    const v = answer.rows.length && i >= 0 ? answer.rows[0][i] : null;
    const div = document.createElement("div");
    div.className = "single-number";
    const big = document.createElement("span");
    big.className = "value";
    big.textContent = typeof v === "number" ? v.toLocaleString("en-US", { maximumFractionDigits: 4 }) : text(v);
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = s.y[0] || "";
    div.appendChild(big);
    div.appendChild(label);
    container.appendChild(div);
    return { kind: "number", series: 1, value: v };
  }

  function datasets(answer, s) {
    const xi = answer.columns.indexOf(s.x);
    const si = s.series ? answer.columns.indexOf(s.series) : -1;
    const labels = [];
    const at = new Map();
    answer.rows.forEach(function (row) {
      const k = text(row[xi]);
      if (!at.has(k)) { at.set(k, labels.length); labels.push(k); }
    });
    const sets = new Map();
    s.y.forEach(function (y) {
      const yi = answer.columns.indexOf(y);
      answer.rows.forEach(function (row) {
        const group = si >= 0 ? text(row[si]) : null;
        const name = group === null ? y : s.y.length > 1 ? group + " · " + y : group;
        if (!sets.has(name)) sets.set(name, new Array(labels.length).fill(null));
        sets.get(name)[at.get(text(row[xi]))] = row[yi];
      });
    });
    return { labels: labels, sets: sets };
  }

  function chart(container, answer, s) {
    const found = datasets(answer, s);
    const wrap = document.createElement("div");
    wrap.className = "chart";
    const canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", s.type + " chart of " + s.y.join(", ") + " by " + s.x);
    wrap.appendChild(canvas);
    container.appendChild(wrap);
    let i = 0;
    const data = [];
    found.sets.forEach(function (values, name) {
      const color = PALETTE[i++ % PALETTE.length];
      data.push({
        label: name, data: values, borderColor: color, spanGaps: true, tension: 0,
        backgroundColor: s.type === "area" ? alpha(color, 0.25) : s.type === "bar" ? alpha(color, 0.8) : color,
        fill: s.type === "area" ? "origin" : false, showLine: s.type !== "scatter",
        pointRadius: s.type === "scatter" ? 4 : 2, borderWidth: s.type === "scatter" ? 0 : 2,
      });
    });
    const c = new window.Chart(canvas, {
      type: s.type === "bar" ? "bar" : "line",
      data: { labels: found.labels, datasets: data },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        scales: { x: { title: { display: true, text: s.x } }, y: { beginAtZero: true, title: { display: s.y.length === 1, text: s.y.join(", ") } } },
      },
    });
    canvas.dataset.series = String(data.length);
    canvas.dataset.points = String(found.labels.length);
    canvas.dataset.ready = "1";
    return { kind: s.type, series: data.length, chart: c, labels: found.labels, datasets: data };
  }

  function render(container, answer, settings) {
    container.replaceChildren();
    if (!answer || !answer.columns || !answer.columns.length) return null;
    const s = defaults(answer, settings);
    let drawn;
    if (s.type === "table") drawn = table(container, answer, [s.x].concat(s.y).concat(s.series ? [s.series] : []));
    else if (s.type === "number") drawn = number(container, answer, s);
    else drawn = chart(container, answer, s);
    container.dataset.kind = s.type;
    container.dataset.series = String(drawn.series);
    return Object.assign({ settings: s }, drawn);
  }

  window.QueryChart = { render: render, defaults: defaults };
})();

// crash-aggregates dashboard: draws the charts of a page with Chart.js (served by the app itself).
// A chart is a <canvas> with either data-spec (the id of a JSON block in the page) or
// data-api (a /api/rates URL, the same JSON scripts get). No inline script: the page's CSP forbids it.
"use strict";

(function () {
  const PALETTE = ["#0b57d0", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#1098ad", "#e67700", "#5c940d", "#862e9c", "#495057"];
  const THIN = "#b0b6bc";
  const WORSE = "#b3261e";

  function alpha(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (v === 0) return "0";
    const digits = Math.max(0, Math.min(4, 2 - Math.floor(Math.log10(Math.abs(v)))));
    return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  // A chart spec from the rows of /api/rates: one series per group, in the API's order.
  function specFromRows(rows, minHours, split, axis) {
    const labels = [];
    const seen = new Set();
    const groups = new Map();
    for (const row of rows) {
      if (!seen.has(row.date)) { seen.add(row.date); labels.push(row.date); }
      const key = JSON.stringify(row.group);
      if (!groups.has(key)) {
        const name = row.group === null ? (split ? "(absent)" : "all") : String(row.group);
        groups.set(key, { name: name, values: [], lower: [], upper: [], thin: [], events: [], hours: [] });
      }
      const s = groups.get(key);
      s.values.push(row.rate); s.lower.push(row.lower); s.upper.push(row.upper);
      s.thin.push(row.usage_hours < minHours); s.events.push(row.events); s.hours.push(row.usage_hours);
    }
    return { kind: "lines", x: axis || "date", y: "per 1,000 usage hours", labels: labels, series: Array.from(groups.values()) };
  }

  function lineDatasets(spec) {
    const datasets = [];
    spec.series.forEach(function (s, i) {
      const color = PALETTE[i % PALETTE.length];
      const thin = s.thin || [];
      if (s.lower && s.upper) {
        // No band around thin points: their intervals are wide and say nothing.
        const upper = s.upper.map(function (v, k) { return thin[k] ? null : v; });
        const lower = s.lower.map(function (v, k) { return thin[k] ? null : v; });
        datasets.push({ label: s.name + " upper", band: true, data: upper, borderWidth: 0, pointRadius: 0, pointHitRadius: 0, fill: false, spanGaps: false });
        datasets.push({ label: s.name + " lower", band: true, data: lower, borderWidth: 0, pointRadius: 0, pointHitRadius: 0, fill: "-1", backgroundColor: alpha(color, 0.13), spanGaps: false });
      }
      datasets.push({
        label: s.name, band: false, data: s.values, thin: thin, lower: s.lower, upper: s.upper,
        borderColor: color, backgroundColor: color, borderWidth: 2, spanGaps: false, tension: 0,
        pointRadius: 3, pointHoverRadius: 5,
        pointBackgroundColor: s.values.map(function (_, k) { return thin[k] ? THIN : color; }),
        pointBorderColor: s.values.map(function (_, k) { return thin[k] ? THIN : color; }),
        segment: { borderColor: function (ctx) { return thin[ctx.p0DataIndex] || thin[ctx.p1DataIndex] ? THIN : color; },
                   borderDash: function (ctx) { return thin[ctx.p0DataIndex] || thin[ctx.p1DataIndex] ? [4, 3] : undefined; } },
      });
    });
    return datasets;
  }

  function intervalDatasets(spec) {
    const s = spec.series[0];
    const thin = s.thin || [];
    const flag = s.flag || [];
    function color(k, a) { return flag[k] === "regression" ? alpha(WORSE, a) : thin[k] ? alpha(THIN, a) : alpha(PALETTE[0], a); }
    return [
      { type: "bar", label: "95% interval", band: true, data: s.values.map(function (_, k) { return s.lower[k] === null ? null : [s.lower[k], s.upper[k]]; }),
        backgroundColor: s.values.map(function (_, k) { return color(k, 0.28); }), barPercentage: 0.35, categoryPercentage: 1.0 },
      { type: "line", label: s.name, band: false, data: s.values, showLine: false, thin: thin, lower: s.lower, upper: s.upper, flag: flag,
        pointRadius: 4, pointHoverRadius: 6, borderColor: PALETTE[0],
        pointBackgroundColor: s.values.map(function (_, k) { return color(k, 1); }),
        pointBorderColor: s.values.map(function (_, k) { return color(k, 1); }) },
    ];
  }

  function barDatasets(spec) {
    return spec.series.map(function (s, i) {
      return { label: s.name, band: false, data: s.values, backgroundColor: i === 0 ? alpha(PALETTE[0], 0.75) : alpha(WORSE, 0.75), stack: "pings" };
    });
  }

  // A round number just above the largest value or interval end that is not thin: a thin point's
  // interval (a few usage hours) may reach thousands and would flatten every solid one.
  function niceMax(spec) {
    let top = 0;
    let thinOnly = true;
    spec.series.forEach(function (s) {
      (s.values || []).forEach(function (v, k) {
        if (v === null || (s.thin && s.thin[k])) return;
        thinOnly = false;
        top = Math.max(top, v, s.upper && s.upper[k] !== null ? s.upper[k] : v);
      });
    });
    if (thinOnly || top <= 0) return undefined;
    const step = Math.pow(10, Math.floor(Math.log10(top)));
    for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * step >= top * 1.05) return m * step;
    return 10 * step;
  }

  function config(spec) {
    const kind = spec.kind;
    const datasets = kind === "intervals" ? intervalDatasets(spec) : kind === "bars" ? barDatasets(spec) : lineDatasets(spec);
    const percent = !!spec.percent;
    const yMax = kind === "bars" || percent ? undefined : niceMax(spec);
    return {
      type: kind === "lines" ? "line" : "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: kind === "bars", title: { display: true, text: spec.x }, ticks: { autoSkip: true, maxRotation: 60 } },
          y: { stacked: kind === "bars", beginAtZero: true, max: yMax, title: { display: true, text: spec.y } },
        },
        plugins: {
          legend: { labels: { filter: function (item, data) { return !data.datasets[item.datasetIndex].band; } } },
          tooltip: {
            filter: function (item) { return !item.dataset.band; },
            callbacks: {
              label: function (ctx) {
                const d = ctx.dataset;
                const k = ctx.dataIndex;
                let text = d.label + ": " + fmt(ctx.parsed.y) + (percent ? "%" : "");
                if (d.lower && d.upper && d.lower[k] !== null) text += " [" + fmt(d.lower[k]) + "–" + fmt(d.upper[k]) + "]";
                if (d.thin && d.thin[k]) text += " (too few usage hours)";
                if (d.flag && d.flag[k]) text += " " + d.flag[k];
                return text;
              },
            },
          },
        },
      },
    };
  }

  function draw(canvas, spec) {
    const chart = new window.Chart(canvas, config(spec));
    canvas.dataset.series = String(chart.data.datasets.filter(function (d) { return !d.band; }).length);
    canvas.dataset.ready = "1";
    return chart;
  }

  function fail(canvas, message) {
    const p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = message;
    canvas.parentNode.replaceWith(p);
  }

  function start() {
    document.querySelectorAll("canvas[data-spec]").forEach(function (canvas) {
      const block = document.getElementById(canvas.dataset.spec);
      draw(canvas, JSON.parse(block.textContent));
    });
    document.querySelectorAll("canvas[data-api]").forEach(function (canvas) {
      const url = canvas.dataset.api;
      const split = new URL(url, window.location.href).searchParams.has("by");
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          if (!res.ok) { fail(canvas, res.body.error || "the chart's data could not be loaded"); return; }
          draw(canvas, specFromRows(res.body.rows, Number(canvas.dataset.minHours), split, canvas.dataset.axis));
        })
        .catch(function () { fail(canvas, "the chart's data could not be loaded"); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

// crash-aggregates: saving from the console, a saved query's page (save, fork, add to a dashboard),
// and restoring a version. Every change goes through the JSON API (/api/queries, /api/dashboards)
// with the page's CSRF token. No inline script (CSP).
"use strict";

(function () {
  const $ = function (id) { return document.getElementById(id); };

  const { api, say } = window.ConsoleApi;

  // The console's parameters as a saved query keeps them: {name: {type, default}}.
  function parameterSpecs() {
    const out = {};
    const given = window.SqlConsole.parameters();
    Object.keys(given).forEach(function (name) {
      const p = given[name];
      const empty = p.value === null || p.value === "" || (Array.isArray(p.value) && !p.value.length);
      out[name] = empty ? { type: p.type } : { type: p.type, default: p.value };
      if (p.options_query) out[name].options_query = p.options_query;
    });
    return out;
  }

  function content() {
    const c = window.SqlConsole;
    const chart = c.chart();
    return { sql: c.sql(), dialect: c.dialect(), parameters: parameterSpecs(), chart: chart && chart.type ? chart : {} };
  }

  // -- the console: save as a new query ---------------------------------------------------
  const saveNew = $("save-new");
  if (saveNew) {
    saveNew.addEventListener("submit", async function (e) {
      e.preventDefault();
      try {
        const q = await api("POST", "/api/queries", Object.assign({ name: saveNew.elements.name.value }, content()));
        window.location.href = "/queries/" + q.id;
      } catch (err) { say(err.message, true); }
    });
  }

  // -- a saved query's page ---------------------------------------------------------------
  const data = $("saved-query");
  if (data) {
    const query = JSON.parse(data.textContent);
    let version = query.version;
    const start = function () {
      const c = window.SqlConsole;
      c.setParameters(query.parameters);
      c.setChart(query.chart);
      c.run().then(function () {
        if (query.chart && query.chart.type) document.querySelector('#results .tab[data-tab="chart"]').click();
      });
    };
    if (window.SqlConsole) start(); else document.addEventListener("sqlconsole:ready", start);

    const save = $("save");
    if (save) save.addEventListener("click", async function () {
      const body = Object.assign(content(), {
        name: $("query-name").value,
        description: $("query-description").value,
        tags: $("query-tags").value.split(",").map(function (t) { return t.trim(); }).filter(Boolean),
        version: version,
      });
      try {
        const q = await api("PUT", "/api/queries/" + query.id, body);
        version = q.version;
        say("saved: version " + q.version);
      } catch (err) { say(err.message, true); }
    });

    const fork = $("fork");
    if (fork) fork.addEventListener("click", async function () {
      try {
        const q = await api("POST", "/api/queries/" + query.id + "/fork", { name: $("query-name").value + " (fork)" });
        window.location.href = "/queries/" + q.id;
      } catch (err) { say(err.message, true); }
    });

    const add = $("add-to-dashboard");
    if (add) add.addEventListener("click", async function () {
      const choice = $("dashboard-choice").value;
      const widget = { type: "query", query: query.id, x: 0, w: 6, h: 4 };
      const mine = parameterSpecs();
      try {
        let board;
        if (choice) {
          board = await api("GET", "/api/dashboards/" + choice);
          const bottom = board.widgets.reduce(function (m, w) { return Math.max(m, w.y + w.h); }, 0);
          const params = Object.assign({}, board.parameters);
          Object.keys(mine).forEach(function (n) { if (!params[n]) params[n] = mine[n]; });  // feeds this query from now on
          board = await api("PUT", "/api/dashboards/" + board.id, {
            widgets: board.widgets.concat([Object.assign(widget, { y: bottom })]), parameters: params, version: board.version,
          });
        } else {
          const name = $("new-dashboard-name").value.trim();
          if (!name) { say("give the new dashboard a name", true); return; }
          board = await api("POST", "/api/dashboards", { name: name, widgets: [Object.assign(widget, { y: 0 })], parameters: mine });
        }
        window.location.href = "/dashboards/" + board.id;
      } catch (err) { say(err.message, true); }
    });
  }

  // -- one version: restore it ------------------------------------------------------------
  const restore = $("restore");
  if (restore) restore.addEventListener("click", async function () {
    try {
      await api("POST", `/api/queries/${restore.dataset.query}/versions/${restore.dataset.version}/restore`);
      window.location.href = "/queries/" + restore.dataset.query;
    } catch (err) { say(err.message, true); }
  });
})();

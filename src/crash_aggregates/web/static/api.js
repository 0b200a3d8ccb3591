// crash-aggregates: what the console's pages share to call the JSON API: the page's CSRF token,
// a JSON request that throws the server's one-line error, and the status line. No inline script (CSP).
"use strict";

window.ConsoleApi = (function () {
  function csrf() {
    const el = document.querySelector("[data-csrf]");
    return el ? el.dataset.csrf : "";
  }

  async function api(method, url, body) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (csrf()) headers["X-CSRF-Token"] = csrf();
    const r = await fetch(url, { method: method, headers: headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
    let answer = {};
    try { answer = await r.json(); } catch (e) { answer = { error: "the server answered " + r.status }; }
    if (!r.ok) throw Object.assign(new Error(answer.error || "the server answered " + r.status), { answer: answer });
    return answer;
  }

  function say(text, bad) {
    const s = document.getElementById("save-status");
    if (!s) return;
    s.textContent = text;
    s.classList.toggle("bad", !!bad);
  }

  return { csrf: csrf, api: api, say: say };
})();

// The labelling page: plain script, no build step, nothing fetched from elsewhere.
"use strict";
(function () {
  const KEYS = { ArrowLeft: "left", ArrowRight: "right", ArrowUp: "equal", "=": "equal", ArrowDown: "skip", " ": "skip" };
  let token = localStorage.getItem("rewardlab-labeller");
  let current = null;
  let shownAt = 0;
  let busy = false;
  const $ = (id) => document.getElementById(id);

  function showStats(stats) {
    $("mine").textContent = stats.mine;
    $("labels").textContent = stats.labels;
    $("queue").textContent = stats.queue;
    $("rate").textContent = stats.labels_per_minute.toFixed(1);
    $("agreement").textContent = stats.agreement === null ? "–" : (100 * stats.agreement).toFixed(0) + "%";
  }

  function message(text) { $("message").textContent = text; }

  async function api(method, path, body) {
    const response = await fetch(path, {
      method: method,
      headers: { "Content-Type": "application/json", "X-Labeller": token || "" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) { throw new Error(data.detail || response.statusText); }
    return data;
  }

  function drawFactors(side, sums, names) {
    const box = $("factors-" + side);
    box.replaceChildren();
    if (!sums) { return; }
    const scale = Math.max(1e-9, ...sums.flat().map(Math.abs));
    sums[side].forEach((value, k) => {
      const row = document.createElement("div");
      row.className = "bar";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = names && names[k] ? names[k] : "factor " + k;
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill" + (value < 0 ? " negative" : "");
      const width = 50 * Math.abs(value) / scale;
      fill.style.left = (value < 0 ? 50 - width : 50) + "%";
      fill.style.width = width + "%";
      track.appendChild(fill);
      const number = document.createElement("span");
      number.textContent = value.toFixed(2);
      row.append(name, track, number);
      box.appendChild(row);
    });
  }

  async function next() {
    const data = await api("GET", "/api/next");
    showStats(data.stats);
    current = data.query;
    $("query").hidden = current === null;
    $("empty").hidden = current !== null;
    document.body.dataset.queryId = current === null ? "" : String(current.id);
    if (current === null) { setTimeout(() => { if (current === null) next().catch(fail); }, 2000); return; }
    for (const side of [0, 1]) {
      $("clip-" + side).src = current.clips[side];
      $("side-" + side).classList.remove("chosen");
      drawFactors(side, current.factors, current.factor_names);
    }
    shownAt = performance.now();
  }

  function fail(error) { message(String(error.message || error)); }

  async function answer(choice) {
    if (busy || current === null) { return; }
    busy = true;
    try {
      const seconds = (performance.now() - shownAt) / 1000;
      const data = await api("POST", "/api/labels", { query_id: current.id, choice: choice, seconds: seconds });
      message("saved: " + choice + " on query " + current.id);
      document.body.dataset.confirmed = String(Number(document.body.dataset.confirmed || 0) + 1);
      showStats(data.stats);
      await next();
    } catch (error) { fail(error); await next().catch(fail); } finally { busy = false; }
  }

  async function undo() {
    if (busy) { return; }
    busy = true;
    try {
      const data = await api("POST", "/api/undo");
      message(
        "undone: query " + data.query_id +
          (data.taken ? " (the trainer had it: your new answer replaces it at its next update)" : "")
      );
      await next();
    } catch (error) { fail(error); } finally { busy = false; }
  }

  function start() {
    $("login").hidden = true;
    next().catch(fail);
  }

  document.addEventListener("keydown", (event) => {
    if (!token || event.target.tagName === "INPUT") { return; }
    if (KEYS[event.key]) { event.preventDefault(); answer(KEYS[event.key]); }
    else if (event.key === "u" || event.key === "Backspace") { event.preventDefault(); undo(); }
  });
  document.querySelectorAll("nav button").forEach((button) => {
    button.addEventListener("click", () => (button.dataset.undo ? undo() : answer(button.dataset.choice)));
  });
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const data = await api("POST", "/api/labellers", { name: $("name").value });
      token = data.token;
      localStorage.setItem("rewardlab-labeller", token);
      start();
    } catch (error) { fail(error); }
  });
  const fromUrl = new URLSearchParams(location.search).get("labeller");
  if (fromUrl) { token = fromUrl; localStorage.setItem("rewardlab-labeller", token); }
  if (token) {
    $("login").hidden = true;
    next().catch(() => { token = null; localStorage.removeItem("rewardlab-labeller"); $("login").hidden = false; });
  }
})();

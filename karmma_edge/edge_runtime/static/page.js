// The live page of `karmma-edge serve`: predictions from /v1/events (Server-Sent Events), sensor
// states from /healthz once a second, mute buttons through POST /v1/sensors/{name}. Plain ES2017,
// no framework, nothing loaded from anywhere but this daemon.
"use strict";

const HISTORY_S = 120;      // the timeline and the latency chart show the last two minutes
const POLL_MS = 1000;       // /healthz
const THUMB_MS = 1000;      // camera thumbnail (the daemon re-encodes at most every 0.5 s)
const GAP_S = 1.5;          // no prediction for this long: a gap in the timeline
const TOKEN_KEY = "karmma-edge-token";
const SENSORS = {rgb: "Camera", flow: "Optical flow", audio: "Microphone"};
const COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#8c8c2c"];
const SVG_NS = "http://www.w3.org/2000/svg";   // a namespace name, never fetched

const $ = (id) => document.getElementById(id);
const recent = [];          // {t: browser time in s, seq, profile, latency_ms}, oldest first
const switches = [];        // {t, from, to}
let health = null;          // the newest /healthz reply
let lastHealthAt = 0;
let lastPrediction = null;  // and the browser time it arrived: {p, t}
let profileColours = {};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) k === "text" ? (node.textContent = v) : node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

const now = () => Date.now() / 1000;
const pct = (score) => `${(100 * score).toFixed(1)} %`;
const colour = (profile) => profileColours[profile] || "#888";

// --- the bearer token: ?token=... once (then removed from the address bar) or typed in; kept in
// this browser's localStorage, never in the served page --------------------------------------------

function initToken() {
  const url = new URL(location.href);
  if (url.searchParams.has("token")) {
    localStorage.setItem(TOKEN_KEY, url.searchParams.get("token"));
    url.searchParams.delete("token");
    history.replaceState(null, "", url);
  }
  $("token").value = localStorage.getItem(TOKEN_KEY) || "";
  showTokenState();
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token").value.trim());
    showTokenState();
    // The daemon turns ?token= into the cookie that the event stream and the thumbnail carry.
    location.replace(`/?token=${encodeURIComponent($("token").value.trim())}`);
  });
}

function showTokenState() {
  $("token-state").textContent = localStorage.getItem(TOKEN_KEY) ? "(token saved)" : "(no token)";
}

// --- sensor tiles ---------------------------------------------------------------------------------

function sensorState(s) {
  if (s.muted) return ["muted", "⊘ MUTED"];
  if (s.live) return ["live", "● LIVE"];
  if (s.reason === "no data" || s.reason === "recovering") return ["waiting", `◌ WAITING: ${s.reason}`];
  return ["dead", `✕ DEAD: ${s.reason}`];
}

function makeTile(name) {
  const body = el("div", {class: "tile-body"});
  if (name === "rgb") {
    body.append(el("div", {class: "thumb"}, el("img", {alt: "camera thumbnail"}), el("span", {class: "thumb-note"})),
                el("div", {class: "muted-text thumb-caption"}));
  } else if (name === "audio") {
    body.append(el("div", {class: "meter-wrap"},
      el("div", {class: "level", text: "— dBFS"}),
      el("div", {class: "meter"}, el("div", {class: "meter-fill"})),
      el("div", {class: "meter-scale"}, ...[-60, -40, -20, 0].map(scaleMark))));
  } else {
    body.append(el("div", {class: "muted-text", text: "Dense optical flow (OpenCV DIS) between consecutive camera frames."}));
  }
  const button = el("button", {type: "button", class: "mute"});
  button.addEventListener("click", () => toggleMute(name, button));
  return el("article", {class: "tile", id: `tile-${name}`, "data-state": "waiting"},
    el("div", {class: "tile-head"}, el("h2", {text: `${SENSORS[name] || name} `}, el("code", {text: name})),
      el("span", {class: "state"})),
    body,
    el("div", {class: "tile-foot"}, el("span", {class: "source muted-text"}), button),
    el("div", {class: "error"}));
}

function renderTiles(h) {
  for (const [name, s] of Object.entries(h.sensors)) {
    const tile = $(`tile-${name}`) || $("sensors").appendChild(makeTile(name));
    const [state, text] = sensorState(s);
    tile.dataset.state = state;
    tile.querySelector(".state").textContent = text;
    const age = s.last_data_age_s == null ? "" : ` · last data ${s.last_data_age_s.toFixed(1)} s ago`;
    tile.querySelector(".source").textContent = `${s.source}${age}`;
    const button = tile.querySelector("button.mute");
    button.textContent = s.muted ? "Unmute" : "Mute";
    button.disabled = s.reason === "no source";
    if (name === "audio") renderLevel(tile, s);
    if (name === "rgb") tile.querySelector(".thumb").dataset.muted = s.muted ? "1" : "";
  }
}

function scaleMark(db) {   // a label placed where its level is on the meter
  const mark = el("span", {text: db === 0 ? "0 dBFS" : `${db}`.replace("-", "−")});
  mark.style.left = `${(100 * (db + 60) / 60).toFixed(1)}%`;
  return mark;
}

function renderLevel(tile, s) {
  const level = s.live ? s.level_dbfs : null;   // a dead or muted mic has no current level
  tile.querySelector(".level").textContent = level == null ? `— dBFS (${s.muted ? "muted" : "no signal"})`
                                                           : `${level.toFixed(1).replace("-", "−")} dBFS`;
  const fill = level == null ? 0 : Math.min(1, Math.max(0, (level + 60) / 60));
  tile.querySelector(".meter-fill").style.width = `${(100 * fill).toFixed(1)}%`;
  tile.querySelector(".meter-fill").classList.toggle("hot", level != null && level > -3);
}

function refreshThumbnail() {
  const thumb = document.querySelector("#tile-rgb .thumb");
  if (!thumb) return;
  const img = thumb.querySelector("img"), note = thumb.querySelector(".thumb-note");
  const show = (ok, text) => { img.hidden = !ok; note.hidden = ok; note.textContent = text; };
  if (!health) return;        // daemon unreachable: keep the last image (the page is greyed out)
  if (thumb.dataset.muted) return show(false, "camera muted — no image");
  const next = new Image();   // load off-screen, swap when complete: no flicker
  next.onload = () => {
    img.src = next.src;
    show(true, "");
    document.querySelector("#tile-rgb .thumb-caption").textContent =
      `newest frame as the model sees it, refreshed every ${THUMB_MS / 1000} s`;
  };
  next.onerror = () => { if (!img.src) show(false, "no image yet"); };   // else keep the last frame
  next.src = `/v1/sensors/rgb/thumbnail.jpg?t=${Date.now()}`;
}

async function toggleMute(name, button) {
  const tile = $(`tile-${name}`);
  const enable = button.textContent === "Unmute";
  const headers = {"Content-Type": "application/json"};
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  tile.querySelector(".error").textContent = "";
  try {
    const r = await fetch(`/v1/sensors/${name}`, {method: "POST", headers, body: JSON.stringify({enabled: enable})});
    if (r.status === 401) throw new Error("401: the daemon needs an API token — enter it at the top right");
    if (!r.ok) throw new Error(`${r.status}: ${(await r.json()).error}`);
  } catch (e) {
    tile.querySelector(".error").textContent = e.message;
  }
  pollHealth();   // show the new state now, not at the next poll
}

// --- predictions ----------------------------------------------------------------------------------

function renderTopK(id, items) {
  $(id).replaceChildren(...items.slice(0, 5).map((it) => {
    const bar = el("div", {class: "bar"});
    bar.style.width = `${(100 * it.score).toFixed(1)}%`;
    return el("li", {title: `${it.name}: ${pct(it.score)}`},
      el("span", {class: "name", text: it.name}), el("span", {class: "pct", text: pct(it.score)}), bar);
  }));
}

function onPrediction(p) {
  const t = now();
  const last = recent[recent.length - 1];
  if (last && last.profile !== p.profile) {
    switches.push({t, from: last.profile, to: p.profile});
    renderSwitches();
  }
  recent.push({t, seq: p.seq, profile: p.profile, latency_ms: p.latency_ms});
  while (recent.length && recent[0].t < t - HISTORY_S) recent.shift();
  $("profile").textContent = p.profile;
  $("profile").style.background = `${colour(p.profile)}33`;
  lastPrediction = {p, t};
  renderPredictionMeta();
  renderTopK("top-verb", p.verb);
  renderTopK("top-noun", p.noun);
  renderTopK("top-action", p.action);
}

function renderPredictionMeta() {
  if (!lastPrediction) return;
  const {p, t} = lastPrediction, age = now() - t, old = age > 3;
  $("pred-meta").textContent = `window #${p.seq} · live: ${p.live.join(", ") || "none"} · ` +
    `inference ${p.latency_ms.toFixed(2)} ms` + (old ? ` · last prediction, ${age.toFixed(0)} s ago` : "");
  $("prediction").classList.toggle("old", old);   // grey: no longer what the device recognises
}

function renderSwitches() {
  const latest = switches.slice(-5).reverse();
  $("switches").replaceChildren(...latest.map((s) =>
    el("li", {text: `${new Date(s.t * 1000).toLocaleTimeString()}   ${s.from} → ${s.to}`})));
}

// --- the timeline and the latency chart share one time axis -----------------------------------------

const PAD = {left: 58, right: 12};

function axisX(width) {
  const span = width - PAD.left - PAD.right, t1 = now();
  return (t) => PAD.left + span * (1 - (t1 - t) / HISTORY_S);
}

function runs() {
  // consecutive predictions of one profile without a gap: one bar on the timeline, one line on the chart
  const out = [];
  for (const h of recent) {
    const run = out[out.length - 1];
    if (run && run.profile === h.profile && h.t - run.points[run.points.length - 1].t <= GAP_S) run.points.push(h);
    else out.push({profile: h.profile, points: [h]});
  }
  return out;
}

function renderCharts() {
  const tl = $("timeline"), lat = $("latency");
  const width = Math.max(300, tl.clientWidth || 600);
  const x = axisX(width), all = runs();

  // Profile timeline: a coloured bar per run, a tick at each switch, grey where nothing was predicted.
  tl.setAttribute("viewBox", `0 0 ${width} 46`);
  tl.replaceChildren(svg("rect", {x: PAD.left, y: 6, width: width - PAD.left - PAD.right, height: 22, fill: "#e4e5e9"}),
                     svg("text", {x: PAD.left - 6, y: 21, "text-anchor": "end"}, "profile"));
  for (const run of all) {
    const x0 = Math.max(PAD.left, x(run.points[0].t)), x1 = x(run.points[run.points.length - 1].t);
    tl.append(svg("rect", {x: x0, y: 6, width: Math.max(2, x1 - x0), height: 22, fill: colour(run.profile)}));
  }
  for (const s of switches.filter((s) => x(s.t) >= PAD.left)) {
    tl.append(svg("line", {x1: x(s.t), x2: x(s.t), y1: 2, y2: 32, stroke: "#111", "stroke-width": 2}));
  }
  timeTicks(tl, x, 44);

  // Latency: one line per run in its profile's colour; the y axis scales to the largest value shown.
  const height = 170, top = 8, bottom = 140;
  lat.setAttribute("viewBox", `0 0 ${width} ${height}`);
  lat.replaceChildren();
  const ymax = niceCeil(Math.max(0.1, ...recent.map((h) => h.latency_ms)));
  const y = (ms) => bottom - (bottom - top) * ms / ymax;
  for (const v of [0, ymax / 2, ymax]) {
    lat.append(svg("line", {x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v), stroke: "#e1e3e8"}),
               svg("text", {x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end"}, `${fmt(v)} ms`));
  }
  lat.append(svg("line", {x1: PAD.left, x2: PAD.left, y1: top, y2: bottom, stroke: "#999"}));
  for (const run of all) {
    const pts = run.points.filter((p) => x(p.t) >= PAD.left);
    if (pts.length === 1) lat.append(svg("circle", {cx: x(pts[0].t), cy: y(pts[0].latency_ms), r: 2, fill: colour(run.profile)}));
    if (pts.length > 1) {
      const points = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.latency_ms).toFixed(1)}`).join(" ");
      lat.append(svg("polyline", {points, fill: "none", stroke: colour(run.profile), "stroke-width": 2}));
    }
  }
  timeTicks(lat, x, height - 14);
  if (!recent.length) {
    lat.append(svg("text", {x: width / 2, y: 70, "text-anchor": "middle"}, "no prediction in the last 2 minutes"));
  }
}

function timeTicks(chart, x, yText) {
  for (const ago of [120, 90, 60, 30, 0]) {
    const xt = x(now() - ago);
    chart.append(svg("text", {x: xt, y: yText, "text-anchor": ago === 0 ? "end" : ago === 120 ? "start" : "middle"},
                     ago === 0 ? "now" : `−${ago} s`));
  }
}

function niceCeil(v) {   // 1, 2 or 5 times a power of ten, at least v
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v);
}

const fmt = (v) => `${Number(v.toPrecision(2))}`;   // 0, 0.05, 2.5, 10, 250

function renderLegend(profiles) {
  $("legend").replaceChildren(...profiles.map((p) => {
    const sw = el("span", {class: "swatch"});
    sw.style.background = colour(p);
    return el("span", {}, sw, p);
  }));
}

// --- /healthz once a second -----------------------------------------------------------------------

async function pollHealth() {
  try {
    const r = await fetch("/healthz", {cache: "no-store", signal: AbortSignal.timeout(2000)});
    health = await r.json();
    lastHealthAt = now();
  } catch (e) {
    health = null;
  }
  renderHealth();
}

function renderHealth() {
  const pill = $("daemon");
  if (!health) {
    const since = lastHealthAt ? ` (last reply ${Math.round(now() - lastHealthAt)} s ago)` : "";
    pill.dataset.state = "down";
    pill.textContent = `daemon: unreachable${since}`;
    $("main").classList.add("stale");
    return;
  }
  $("main").classList.toggle("stale", $("stream").dataset.state !== "ok");
  if (!Object.keys(profileColours).length) {
    health.profiles.forEach((p, i) => { profileColours[p] = COLOURS[i % COLOURS.length]; });
    renderLegend(health.profiles);
  }
  pill.dataset.state = "ok";
  pill.textContent = `daemon: ${health.status}`;
  renderTiles(health);
  if (!health.active_profile) {   // the daemon has nothing to run: say so instead of the last profile
    $("profile").textContent = "none (no live sensor)";
    $("profile").style.background = "";
  } else if (!recent.length) {
    $("profile").textContent = health.active_profile;
  }
  $("footer").textContent = `${health.backend} · ${health.precision} · up ${health.uptime_s.toFixed(0)} s · ` +
    `${health.windows} windows · ${health.predictions} predictions · ${health.dropped_windows} dropped`;
  renderPredictionMeta();
}

// --- the event stream: EventSource reconnects by itself; the page shows whether it is connected ---

function setStream(state, text) {
  $("stream").dataset.state = state;
  $("stream").textContent = `stream: ${text}`;
  $("banner").hidden = state === "ok";
  $("main").classList.toggle("stale", state !== "ok");
}

function connect() {
  const es = new EventSource("/v1/events");
  es.addEventListener("open", () => setStream("ok", "connected"));
  es.addEventListener("prediction", (e) => onPrediction(JSON.parse(e.data)));
  es.addEventListener("error", () => {
    setStream("down", "disconnected — reconnecting…");
    if (es.readyState === EventSource.CLOSED) {   // the browser gave up (e.g. an HTTP error): retry ourselves
      es.close();
      setTimeout(connect, 2000);
    }
  });
}

initToken();
connect();
pollHealth();
setInterval(pollHealth, POLL_MS);
setInterval(refreshThumbnail, THUMB_MS);
setInterval(renderCharts, POLL_MS);

// The console page: draws what the server's websocket says, sends the person's presses.
// The server checks every message it gets; this page holds no card number (cards are
// chosen by their place in the list) and echoes no key.
"use strict";

const $ = (sel) => document.querySelector(sel);
const ON = [150, 220, 255], OFF = [8, 12, 24];     // the OLED's colours, as screen_png.py
const MAX_MESSAGES = 300;

// what the tests read: every screen's text, and key press -> screen drawn times
const posConsole = window.posConsole = { screens: [], latencies: [], pongs: [], ws: null };
const pings = new Map();
// the websocket's own round trip, without the board: the baseline of a key's latency
posConsole.ping = (n) => { pings.set(n, performance.now()); return send({ type: "ping", n }); };
let pendingKey = null;       // {key, at}: the last key sent, until the next screen is drawn
let retry = 500;

function connect() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  posConsole.ws = ws;
  ws.onopen = () => { setBadge("#connection", "connected", "ok"); retry = 500; };
  ws.onclose = () => {
    setBadge("#connection", "disconnected: retrying", "bad");
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 5000);
  };
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    const handler = handlers[msg.type];
    if (handler) handler(msg);
  };
}

function send(obj) {
  const ws = posConsole.ws;
  if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(obj)); return true; }
  notice("not connected to the console");
  return false;
}

function setBadge(sel, text, cls) {
  const el = $(sel); el.textContent = text; el.className = "badge " + (cls || "");
}

let noticeTimer = null;
function notice(text) {
  const el = $("#notice"); el.textContent = text; el.hidden = false;
  clearTimeout(noticeTimer); noticeTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

// ---- the display: the firmware's MONO_VLSB frame buffer (byte k: column k % 128 of
// page k / 128, bit 0 at the top), as the SSD1306 lays it out
const canvas = $("#display"), ctx = canvas.getContext("2d");
const image = ctx.createImageData(128, 64);

function drawScreen(msg) {
  const fb = Uint8Array.from(atob(msg.fb), (c) => c.charCodeAt(0));
  const px = image.data;
  for (let page = 0; page < 8; page++) {
    for (let x = 0; x < 128; x++) {
      const byte = fb[page * 128 + x];
      for (let bit = 0; bit < 8; bit++) {
        const i = ((page * 8 + bit) * 128 + x) * 4, c = (byte >> bit) & 1 ? ON : OFF;
        px[i] = c[0]; px[i + 1] = c[1]; px[i + 2] = c[2]; px[i + 3] = 255;
      }
    }
  }
  ctx.putImageData(image, 0, 0);
  const text = msg.lines.join("\n");
  $("#display-text").textContent = text;
  $("#heap").textContent = `heap free on this screen: ${msg.heap_free} bytes`;
  posConsole.screens.push(text);
  if (posConsole.screens.length > 500) posConsole.screens.shift();
  if (pendingKey) {
    const key = pendingKey; pendingKey = null;
    // the next frame: the canvas is on the screen by then
    requestAnimationFrame(() => {
      posConsole.latencies.push({ key: key.key, ms: performance.now() - key.at });
    });
  }
}

// ---- the link panel
function describeFields(fields) {
  return Object.entries(fields).map(([k, v]) =>
    `${k}=${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`).join(" ");
}

function addMessage(m) {
  const li = document.createElement("li");
  const from = { "board>bridge": "from-board", "bridge>board": "from-bridge" }[m.dir] || "note";
  li.className = `${m.name} ${from}`;
  const time = new Date(m.at * 1000).toLocaleTimeString();
  const dir = { "board>bridge": "board → bridge", "bridge>board": "bridge → board" }[m.dir] || "";
  li.innerHTML = `<span class="dir"></span> <span class="name"></span> <span class="fields"></span>`;
  li.querySelector(".dir").textContent = `${time} ${dir}`;
  li.querySelector(".name").textContent = m.name;
  li.querySelector(".fields").textContent = m.problem || describeFields(m.fields);
  const list = $("#messages");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.appendChild(li);
  while (list.children.length > MAX_MESSAGES) list.removeChild(list.firstChild);
  if (atBottom) list.scrollTop = list.scrollHeight;
  $("#message-count").textContent = `(${list.children.length})`;
}

// ---- the phone
function showPhone(msg) {
  const owner = msg.card || {};
  $("#phone-owner").textContent = owner.masked
    ? `${owner.name} · ${owner.phone || "no phone on file"} · ${owner.alerts ? owner.alerts.toUpperCase() + " alerts" : "not subscribed"} · ${owner.language}`
    : "No card in use: swipe one";
  const list = $("#alerts");
  list.textContent = "";
  for (const a of msg.alerts) {
    const li = document.createElement("li");
    const sent = a.status === "sent";
    li.className = (a.channel === "app" ? "app" : "sms") + (sent ? "" : " waiting");
    li.lang = a.language || "";
    const meta = document.createElement("span");
    meta.className = "meta";
    const at = (t) => new Date(t * 1000).toLocaleTimeString();
    const when = sent ? (a.sent_at ? at(a.sent_at) : "")
      : `not sent yet: ${a.status} in the issuer's outbox` +
        (a.next_attempt_at ? ` until ${at(a.next_attempt_at)}` : "");
    meta.textContent = `${a.channel === "app" ? "Bank app" : "SMS"} · ${when}`;
    li.appendChild(meta);
    li.appendChild(document.createTextNode(a.text));
    list.appendChild(li);
  }
}

// ---- status
function counters(obj) {
  // one line: "tx 10 · rx 11 · retransmits 0 …", the counters that are not 0 marked
  const span = document.createElement("span");
  Object.entries(obj || {}).forEach(([k, v], i) => {
    if (i) span.append(" · ");
    const b = document.createElement("span");
    b.textContent = `${k} ${v}`;
    if (v && !["tx", "rx"].includes(k)) b.className = "nonzero";
    span.append(b);
  });
  return span;
}

function showStatus(msg) {
  const b = msg.board || {};
  const rows = [["power", `${msg.power}, boots: ${msg.boots}`]];
  if (b.heap_free !== undefined) rows.push(["heap free", `${b.heap_free} bytes (at the last STATUS)`]);
  if (b.uptime_s !== undefined) rows.push(["board", `${b.state}, up ${b.uptime_s} s`]);
  rows.push(["board's link", counters(b.link)]);
  rows.push(["bridge's link", counters(msg.bridge_link)]);
  rows.push(["pages open", String(msg.pages)]);
  const dl = $("#status-list");
  dl.textContent = "";
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd");
    if (typeof v === "string") dd.textContent = v; else dd.append(v);
    dl.append(dt, dd);
  }
}

function showFaults(msg) {
  for (const name of ["slow", "unavailable", "bad_mac"]) $(`#fault-${name}`).checked = !!msg.faults[name];
  if (msg.slow_s) $("#slow-s").textContent = msg.slow_s;
}

const handlers = {
  hello(msg) {
    const select = $("#card"), chosen = select.value;
    select.textContent = "";
    for (const c of msg.cards) {
      const opt = document.createElement("option");
      opt.value = c.id;
      opt.textContent = `${c.masked} · ${c.name}${c.status !== "active" ? " (" + c.status + ")" : ""}`;
      select.appendChild(opt);
    }
    if (chosen) select.value = chosen;
    $("#tap").disabled = !msg.contactless;
    if (msg.slow_s) $("#slow-s").textContent = msg.slow_s;
  },
  screen: drawScreen,
  message: addMessage,
  messages(msg) { $("#messages").textContent = ""; msg.items.forEach(addMessage); },
  phone: showPhone,
  status: showStatus,
  faults: showFaults,
  power(msg) {
    setBadge("#power", `board: ${msg.state}`, msg.state === "on" ? "ok" : "bad");
    const restart = ["stopped", "failed"].includes(msg.state);
    $("#power-cut").disabled = !(restart || msg.state === "on");
    $("#power-cut").textContent = restart ? "Power on" : "Power cut";
  },
  refused(msg) { notice(msg.reason); },
  pong(msg) {
    const at = pings.get(msg.n);
    if (at !== undefined) { pings.delete(msg.n); posConsole.pongs.push(performance.now() - at); }
  },
};

// ---- input
function pressKey(key) {
  if (send({ type: "key", key })) pendingKey = { key, at: performance.now() };
}

for (const btn of document.querySelectorAll("#pinpad button")) {
  btn.addEventListener("click", () => pressKey(btn.dataset.key));
}

const KEYBOARD = { Enter: "E", Backspace: "B", Escape: "X", Delete: "C" };
document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.altKey || ev.metaKey) return;
  if (["SELECT", "INPUT", "TEXTAREA"].includes(ev.target.tagName)) return;
  const key = /^[0-9]$/.test(ev.key) ? ev.key : KEYBOARD[ev.key];
  if (!key) return;
  ev.preventDefault();
  const btn = document.querySelector(`#pinpad button[data-key="${key}"]`);
  if (btn) { btn.classList.add("pressed"); setTimeout(() => btn.classList.remove("pressed"), 120); }
  pressKey(key);
});

$("#swipe").addEventListener("click", () => {
  const id = parseInt($("#card").value, 10);
  if (Number.isInteger(id)) send({ type: "swipe", card: id });
});
$("#bad-swipe").addEventListener("click", () => send({ type: "bad_swipe" }));
$("#tap").addEventListener("click", () => {
  const id = parseInt($("#card").value, 10);
  if (Number.isInteger(id)) send({ type: "tap", card: id });
});
for (const name of ["slow", "unavailable", "bad_mac"]) {
  $(`#fault-${name}`).addEventListener("change", () => send({
    type: "faults", slow: $("#fault-slow").checked, unavailable: $("#fault-unavailable").checked,
    bad_mac: $("#fault-bad_mac").checked }));
}
$("#hide-polls").addEventListener("change", (ev) =>
  $("#messages").classList.toggle("hide-polls", ev.target.checked));
$("#power-cut").addEventListener("click", () => send({ type: "power_cut" }));

connect();

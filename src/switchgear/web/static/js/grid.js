// The grid page: set the simulated grid's frequency and voltage, and watch the power
// controllers trip and recover, live from the event stream.

import { request } from "./api.js";
import { clock, devices, lastKnown, powerNow } from "./model.js";
import { relayControl, updateRelay } from "./relays.js";
import { announce } from "./notice.js";

const $ = (id) => document.getElementById(id);
const rows = new Map(); // controller id -> its <tr>

const controllers = () => [...devices.values()].filter((d) => d.family === "load_controller");

// A controller's FFR state in words: tripped, armed at its threshold, or not enabled.
export function ffrState(d) {
  const x = d.extra || {};
  if (x.ffrTripped) return "tripped";
  const ffr = x.config && x.config.ffr;
  if (ffr && ffr.enabled) return `armed below ${ffr.tripThreshold} Hz`;
  return "not enabled";
}

function num(id) {
  const v = $(id).value;
  return v === "" ? null : Number(v);
}

export function setupGrid() {
  $("grid-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {};
    const hz = num("grid-hz");
    const v = num("grid-v");
    const lasting = num("grid-for");
    if (hz !== null) body.frequency_hz = hz;
    if (v !== null) body.voltage_v = v;
    if (lasting !== null) body.duration_s = lasting;
    if (hz === null && v === null) { announce("Give a frequency, a voltage or both.", true); return; }
    try {
      await request("PUT", "/sim/grid", body);
      const what = [hz !== null && `${hz} Hz`, v !== null && `${v} V`].filter(Boolean).join(", ");
      announce(`Grid set to ${what}${lasting ? ` for ${lasting} s` : ""}.`);
      $("grid-now").textContent = `Last set: ${what}${lasting ? `, back to nominal after ${lasting} s` : ""}.`;
    } catch (err) {
      announce(`Grid not set: ${err.message}`, true);
    }
  });
  $("grid-clock").addEventListener("submit", async (e) => {
    e.preventDefault();
    const seconds = Number($("grid-seconds").value);
    try {
      const c = await request("POST", "/sim/clock/advance", { seconds });
      clock.seen(c.epoch);
      announce(`Clock moved ${seconds} s.`);
    } catch (err) {
      announce(`Clock not moved: ${err.message}`, true);
    }
  });
}

export function showGrid() {
  document.title = "Grid · switchgear";
  $("grid-clock").hidden = !clock.manual;
  gridTick();
  renderControllers();
}

function renderControllers() {
  const list = controllers();
  const body = $("controllers").tBodies[0];
  rows.clear();
  if (!list.length) {
    const td = document.createElement("td");
    td.colSpan = 5;
    td.textContent = "This account has no power controller.";
    body.replaceChildren(document.createElement("tr"));
    body.rows[0].append(td);
    return;
  }
  body.replaceChildren(...list.map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.device = d.id;
    rows.set(d.id, tr);
    const name = document.createElement("a");
    name.href = `#/devices/${d.id}`;
    name.textContent = d.name;
    const cells = [name, relayControl(d, d.channels[0]), "", "", ""];
    for (const c of cells) {
      const td = document.createElement("td");
      td.append(c);
      tr.append(td);
    }
    fill(tr, d);
    return tr;
  }));
}

function fill(tr, d) {
  const [, relay, ffr, power, water] = tr.cells;
  const wrap = relay.querySelector(".relay");
  if (wrap && d.channels[0]) updateRelay(wrap, d, d.channels[0]);
  const state = ffrState(d);
  ffr.textContent = state;
  ffr.className = state === "tripped" ? "off" : "";
  power.textContent = d.meters.length ? powerNow(d, d.meters[0].power_w) : "—";
  const w = d.extra && d.extra.water_temperature_c;
  const temp = typeof w === "number" ? `${w.toFixed(1)} °C` : "—";
  water.textContent = d.online || temp === "—" ? temp : `last known ${lastKnown(d, temp)}`;
}

// The server's clock, as the page follows it: manual, or running `speed` times real time.
export function gridTick() {
  if ($("grid-view").hidden) return;
  const how = clock.manual ? "manual: it moves only when moved" : `running at ${clock.speed}× real time`;
  $("grid-time").textContent = `Server clock: ${new Date(clock.now() * 1000).toLocaleString()} (${how}).`;
  for (const [id, tr] of rows) { // an offline one's readings age
    const d = devices.get(id);
    if (d && !d.online) fill(tr, d);
  }
}

// A device changed (id), or the list did (null: loaded, or one added since the page
// opened): a controller not on the page yet brings the table up to date.
export function gridChanged(id) {
  if ($("grid-view").hidden) return;
  if (id === null) {
    const list = controllers();
    if (list.length !== rows.size || list.some((d) => !rows.has(d.id))) { renderControllers(); return; }
    for (const [i, tr] of rows) fill(tr, devices.get(i));
    return;
  }
  const d = devices.get(id);
  if (!d || d.family !== "load_controller") return;
  if (rows.has(id)) fill(rows.get(id), d);
  else renderControllers();
}

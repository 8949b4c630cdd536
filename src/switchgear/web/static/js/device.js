// A device's page: its facts, its relays, and its power over time from the history.

import { request } from "./api.js";
import { devices, clock, refresh, totalPower, watts, lastKnown } from "./model.js";
import { relayControl, updateRelay, tick } from "./relays.js";
import { setupSettings, showSettings } from "./settings.js";
import { setupSim, showSim, simChanged } from "./sim.js";

const MAX_PAGES = 20; // 20 × 5000 records: a 10-day window at the densest cadence
const $ = (id) => document.getElementById(id);
let current = null; // the device id shown
let plot = null;
let loading = 0;

export function setupDevice() {
  setupSettings();
  setupSim();
  $("range").addEventListener("change", () => current !== null && loadChart(current));
  window.addEventListener("resize", () => plot && plot.setSize(size()));
}

export async function showDevice(id) {
  current = id;
  const d = devices.get(id) || (await refresh(id));
  render(d);
  await loadChart(id).catch((err) => {
    $("chart-status").textContent = `The history could not be loaded: ${err.message}`;
  });
}

export function leaveDevice() {
  current = null;
  if (plot) { plot.destroy(); plot = null; }
}

function render(d) {
  $("device-title").textContent = d.name || d.serial;
  document.title = `${d.name} · switchgear`;
  facts(d);
  const ul = $("device-relays");
  ul.replaceChildren(...d.channels.map((ch) => {
    const li = document.createElement("li");
    li.append(relayControl(d, ch));
    return li;
  }));
  if (!d.channels.length) ul.textContent = "This device has no relay.";
  showSettings(d);
  showSim(d);
}

// An offline device's readings are its last report's: labelled "last known", with its age,
// and no power "now".
function facts(d) {
  const metered = d.meters.length > 0;
  const items = [["Family", d.family], ["Model", d.model], ["Serial", d.serial],
    ["State", d.online ? "online" : "offline"], ["Tags", d.tags.join(", ") || "—"],
    ["Power now", metered && d.online ? watts(totalPower(d)) : "—"]];
  const reading = (label, text) => (d.online
    ? [label, text] : [`${label} (last known)`, lastKnown(d, text)]);
  if (metered && !d.online) items.push(["Last known power", lastKnown(d, watts(totalPower(d)))]);
  if (d.meters.length > 1 && d.meters.length !== d.channels.length) {
    d.meters.forEach((m, i) => items.push(reading(`Phase ${i + 1}`, watts(m.power_w))));
  }
  const water = d.extra && d.extra.water_temperature_c;
  if (typeof water === "number") items.push(reading("Water", `${water.toFixed(1)} °C`));
  if (typeof d.temperature_c === "number") {
    items.push(reading("Device temperature", `${d.temperature_c.toFixed(1)} °C`));
  }
  $("device-facts").replaceChildren(...items.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    return [dt, dd];
  }));
}

export function deviceChanged(id) {
  if (current === null || (id !== null && id !== current)) return;
  const d = devices.get(current);
  if (!d) return;
  facts(d);
  simChanged(d);
  const wraps = $("device-relays").querySelectorAll(".relay");
  d.channels.forEach((ch, i) => wraps[i] && updateRelay(wraps[i], d, ch));
}

export function deviceTick() {
  $("device-relays").querySelectorAll(".relay").forEach(tick);
  const d = current === null ? null : devices.get(current);
  if (d && !d.online) facts(d); // the last report's age moves with the clock
}

function size() {
  const w = $("chart").clientWidth || 600;
  return { width: w, height: Math.max(200, Math.min(360, Math.round(w * 0.45))) };
}

async function history(id, start, end) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < MAX_PAGES; i++) {
    const q = new URLSearchParams({ start, end, limit: "5000" });
    if (cursor) q.set("cursor", cursor);
    const page = await request("GET", `/devices/${id}/history?${q}`);
    out.push(...page.statuses);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return out;
}

// Families whose `update` status reports `power` as the energy (Wh) of its period, as
// the power controller's vendor does; the others report watts averaged over the period.
const POWER_IS_PERIOD_WH = new Set(["load_controller"]);
const MARKS = { relay: "#2e7d32", trigger: "#e65100", ffr: "#6a1b9a" };
const PHASE_COLOURS = ["#6d4c41", "#00838f", "#ad1457"];
const round1 = (v) => (typeof v === "number" ? Math.round(v * 10) / 10 : null);

// The plotted series of a device's history: power, each phase of a 3-phase meter, and a
// water heater's water temperature and capacity level; relay changes and trips as marks.
function readings(d, records) {
  const xs = [];
  const ys = [];
  const phases = []; // phases[i][k]: phase i's average watts at reading k
  const temps = []; // the controller's temperature, °C (its vendor reports °F)
  const water = [];
  const capacity = [];
  const marks = [];
  for (const r of records) {
    const t = Date.parse(r.ts) / 1000;
    if (r.kind === "relay" || r.kind === "trigger") {
      const kind = r.kind === "trigger" && r.reason === "ffr" ? "ffr" : r.kind;
      marks.push({ t, kind, on: r.data && r.data.on, reason: r.reason });
      continue;
    }
    let w = r.data && r.data.power;
    if (typeof w !== "number") continue;
    if (POWER_IS_PERIOD_WH.has(d.family)) {
      const dur = r.data.duration;
      if (!dur) continue;
      w = (w * 3600) / dur;
    }
    const k = xs.length;
    xs.push(t);
    ys.push(round1(w));
    (r.data.phases || []).forEach((p, i) => {
      if (!phases[i]) phases[i] = new Array(k).fill(null);
      phases[i].push(round1(p.power));
    });
    phases.forEach((col) => { if (col.length === k) col.push(null); });
    const f = r.data.temperature;
    temps.push(typeof f === "number" ? Math.round(((f - 32) * 50) / 9) / 10 : null);
    water.push(round1(r.data.water_temperature));
    capacity.push(round1(r.data.capacity_level));
  }
  return { xs, ys, phases, temps, water, capacity, marks };
}

// Draws each relay change and trigger as a vertical line across the plot.
function markers(marks) {
  return (u) => {
    const { ctx } = u;
    const { top, height } = u.bbox;
    ctx.save();
    ctx.lineWidth = 1.5 * devicePixelRatio;
    for (const m of marks) {
      const x = Math.round(u.valToPos(m.t, "x", true));
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.strokeStyle = MARKS[m.kind];
      ctx.setLineDash(m.kind === "relay" && m.on === false ? [4, 4] : []);
      if (m.kind === "relay" && m.reason === "ffr") ctx.strokeStyle = MARKS.ffr;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    ctx.restore();
  };
}

// Energy per calendar day (the browser's time zone): the growth of the `energy_wh`
// register between readings, or the sum of a power controller's per-period Wh.
function energyPerDay(d, records) {
  const days = new Map();
  let last = null;
  for (const r of records) {
    if (r.kind !== "update" || !r.data) continue;
    const day = new Date(Date.parse(r.ts)).toLocaleDateString(undefined,
      { weekday: "short", year: "numeric", month: "short", day: "numeric" });
    let wh = null;
    if (POWER_IS_PERIOD_WH.has(d.family)) {
      wh = typeof r.data.power === "number" ? r.data.power : null;
    } else if (typeof r.data.energy_wh === "number") {
      if (last !== null) wh = Math.max(0, r.data.energy_wh - last);
      last = r.data.energy_wh;
    }
    if (wh !== null) days.set(day, (days.get(day) || 0) + wh);
  }
  return [...days];
}

function renderEnergy(days) {
  const top = Math.max(1, ...days.map(([, wh]) => wh));
  const body = $("energy").tBodies[0];
  if (!days.length) {
    const td = document.createElement("td");
    td.colSpan = 3;
    td.textContent = "No energy readings in this range.";
    body.replaceChildren(document.createElement("tr"));
    body.rows[0].append(td);
    return;
  }
  body.replaceChildren(...days.map(([day, wh]) => {
    const tr = document.createElement("tr");
    const bar = document.createElement("div");
    bar.className = "bar-fill";
    bar.style.width = `${Math.round((wh / top) * 100)}%`;
    for (const c of [day, `${(wh / 1000).toFixed(2)} kWh`, bar]) {
      const td = document.createElement("td");
      td.append(c);
      tr.append(td);
    }
    return tr;
  }));
}

async function loadChart(id) {
  const mine = ++loading;
  const span = Number($("range").value);
  const label = $("range").selectedOptions[0].textContent.toLowerCase();
  $("chart-status").textContent = "Loading history…";
  await clock.load().catch(() => {});
  const end = clock.now();
  const iso = (t) => new Date(t * 1000).toISOString();
  const records = await history(id, iso(end - span), iso(end + 1));
  if (mine !== loading || current !== id) return;
  const d = devices.get(id);
  const { xs, ys, phases, temps, water, capacity, marks } = readings(d, records);
  renderEnergy(energyPerDay(d, records));
  const count = (kind) => marks.filter((m) => m.kind === kind).length;
  const plural = (n, one) => `${n} ${one}${n === 1 ? "" : "s"}`;
  const relays = count("relay");
  const ffr = count("ffr");
  const trips = count("trigger");
  const parts = [xs.length ? `${xs.length} readings over the ${label}` : `No power readings over the ${label}`];
  if (phases.length) parts.push(`${phases.length} phases`);
  if (relays) parts.push(`${plural(relays, "relay change")} (green lines; dashed: off; purple: by FFR)`);
  if (ffr) parts.push(`${plural(ffr, "FFR trip")} (purple lines)`);
  if (trips) parts.push(`${plural(trips, "trip")} (orange lines)`);
  $("chart-status").textContent = parts.join("; ");
  $("chart").setAttribute("aria-label", `Power over the ${label}: ${parts.join("; ")}`);
  if (plot) plot.destroy();
  const opts = {
    ...size(),
    scales: { x: { time: true, range: [end - span, end] } },
    axes: [{}, { label: "W" }],
    series: [{}, { label: "Power (W)", stroke: "#1565c0", fill: "rgba(21,101,192,0.12)", width: 1.5 }],
    hooks: { draw: [markers(marks)] },
  };
  const data = [xs, ys];
  phases.forEach((col, i) => {
    opts.series.push({ label: `Phase ${i + 1} (W)`, stroke: PHASE_COLOURS[i % 3], width: 1.25 });
    data.push(col);
  });
  if (POWER_IS_PERIOD_WH.has(d.family)) { // a power controller: water and its own temperature
    const anyOf = (col) => col.some((v) => v !== null);
    if (anyOf(water)) {
      opts.series.push({ label: "Water temperature (°C)", scale: "°C", stroke: "#c62828", width: 1.5 });
      data.push(water);
    }
    opts.series.push({ label: "Device temperature (°C)", scale: "°C", stroke: "#ef6c00", width: 1, dash: [3, 3] });
    data.push(temps);
    opts.axes.push({ scale: "°C", label: "°C", side: 1, grid: { show: false } });
    if (anyOf(capacity)) {
      opts.series.push({ label: "Capacity level", scale: "level", stroke: "#2e7d32", width: 1.5 });
      opts.axes.push({ scale: "level", label: "capacity", side: 1, grid: { show: false } });
      data.push(capacity);
    }
  }
  plot = new window.uPlot(opts, data, $("chart"));
}

// A device's page: its facts, its relays, and its power over time from the history.

import { request } from "./api.js";
import { devices, clock, refresh, totalPower, watts } from "./model.js";
import { relayControl, updateRelay, tick } from "./relays.js";

const MAX_PAGES = 20; // 20 × 5000 records: a 10-day window at the densest cadence
const $ = (id) => document.getElementById(id);
let current = null; // the device id shown
let plot = null;
let loading = 0;

export function setupDevice() {
  $("range").addEventListener("change", () => current !== null && loadChart(current));
  window.addEventListener("resize", () => plot && plot.setSize(size()));
}

export async function showDevice(id) {
  current = id;
  const d = devices.get(id) || (await refresh(id));
  render(d);
  await loadChart(id);
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
}

function facts(d) {
  const items = [["Family", d.family], ["Model", d.model], ["Serial", d.serial],
    ["State", d.online ? "online" : "offline"], ["Tags", d.tags.join(", ") || "—"],
    ["Power now", d.meters.length ? watts(totalPower(d)) : "—"]];
  if (d.meters.length > 1 && d.meters.length !== d.channels.length) {
    d.meters.forEach((m, i) => items.push([`Phase ${i + 1}`, watts(m.power_w)]));
  }
  const water = d.extra && d.extra.water_temperature_c;
  if (typeof water === "number") items.push(["Water", `${water.toFixed(1)} °C`]);
  if (typeof d.temperature_c === "number") items.push(["Device temperature", `${d.temperature_c.toFixed(1)} °C`]);
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
  const wraps = $("device-relays").querySelectorAll(".relay");
  d.channels.forEach((ch, i) => wraps[i] && updateRelay(wraps[i], d, ch));
}

export function deviceTick() {
  $("device-relays").querySelectorAll(".relay").forEach(tick);
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
  const xs = [];
  const ys = [];
  for (const r of records) {
    const w = r.data && r.data.power;
    if (typeof w !== "number") continue;
    xs.push(Date.parse(r.ts) / 1000);
    ys.push(w);
  }
  $("chart-status").textContent = xs.length
    ? `${xs.length} readings over the ${label}`
    : `No power readings over the ${label}.`;
  $("chart").setAttribute("aria-label", `Power over the ${label}: ${xs.length} readings`);
  if (plot) plot.destroy();
  const opts = {
    ...size(),
    scales: { x: { time: true, range: [end - span, end] } },
    axes: [{}, { label: "W", values: (u, vals) => vals.map((v) => `${v}`) }],
    series: [{}, { label: "Power (W)", stroke: "#1565c0", fill: "rgba(21,101,192,0.12)", width: 1.5 }],
  };
  plot = new window.uPlot(opts, [xs, ys], $("chart"));
}

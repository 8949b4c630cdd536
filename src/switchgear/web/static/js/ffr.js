// The FFR events page: the account's groups, their events with the compliance verdict,
// and one event's evidence (frequency and the group's active power) plotted.

import { request, requestText } from "./api.js";
import { devices } from "./model.js";

const $ = (id) => document.getElementById(id);
const when = (t) => (t ? new Date(t).toLocaleString() : "—");
const kw = (v) => (typeof v === "number" ? `${v.toFixed(2)} kW` : "—");
const secs = (v) => (typeof v === "number" ? `${v.toFixed(3)} s` : "—");
let plot = null;
let csvUrl = null;

function cellRow(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    td.append(c);
    tr.append(td);
  }
  return tr;
}

function verdict(ev) {
  if (ev.open) return "running";
  return ev.compliant ? "compliant" : "not compliant";
}

function empty(table, text, span) {
  const td = document.createElement("td");
  td.colSpan = span;
  td.textContent = text;
  const tr = document.createElement("tr");
  tr.append(td);
  table.tBodies[0].replaceChildren(tr);
}

export function setupFfr() {
  window.addEventListener("resize", () => plot && plot.setSize(size()));
  $("evidence-span").addEventListener("change", zoom);
}

// The evidence's first seconds matter most (the crossing and the trips): show a span of
// the window from its start, or all of it.
function zoom() {
  if (!plot || !plot.data[0].length) return;
  const xs = plot.data[0];
  const span = Number($("evidence-span").value);
  plot.setScale("x", { min: xs[0], max: span ? Math.min(xs[0] + span, xs[xs.length - 1]) : xs[xs.length - 1] });
}

export async function showFfr(eventId) {
  document.title = "FFR events · switchgear";
  const [groups, events] = await Promise.all([request("GET", "/ffr/groups"), request("GET", "/ffr/events")]);
  const details = await Promise.all(groups.map((g) => request("GET", `/ffr/groups/${g.id}`)));
  const names = new Map(groups.map((g) => [g.id, g.name]));
  if (!groups.length) {
    empty($("ffr-groups"), "No FFR group yet: enrol power controllers with POST /api/v1/ffr/groups or `switchgear ffr`.", 5);
  } else {
    $("ffr-groups").tBodies[0].replaceChildren(...details.map((g) => cellRow([
      g.name, g.programme.name || g.programme.id, String(g.devices.length),
      kw(g.contracted_kw), kw(g.available_kw)])));
  }
  if (!events.length) {
    empty($("ffr-events"), "No event yet: a frequency below a group's threshold starts one (see Grid).", 7);
  } else {
    $("ffr-events").tBodies[0].replaceChildren(...events.map((ev) => {
      const link = document.createElement("a");
      link.href = `#/ffr/events/${ev.id}`;
      link.textContent = `Event ${ev.id}`;
      link.setAttribute("aria-label", `Evidence of event ${ev.id}`);
      const tr = cellRow([when(ev.started_at), names.get(ev.group_id) || `group ${ev.group_id}`,
        `${ev.frequency_min_hz} Hz`, `${kw(ev.delivered_kw)} of ${kw(ev.contracted_kw)}`,
        secs(ev.activation_s), verdict(ev), ev.open ? "" : link]);
      tr.cells[5].className = ev.open ? "" : ev.compliant ? "on" : "off";
      return tr;
    }));
  }
  const chosen = events.find((e) => e.id === eventId && !e.open);
  $("ffr-event").hidden = !chosen;
  if (plot) { plot.destroy(); plot = null; }
  if (chosen) await showEvent(chosen.id, names);
}

function size() {
  const w = $("evidence").clientWidth || 600;
  return { width: w, height: Math.max(200, Math.min(340, Math.round(w * 0.4))) };
}

async function showEvent(id, names) {
  const [ev, csv] = await Promise.all([
    request("GET", `/ffr/events/${id}`), requestText(`/ffr/events/${id}/evidence.csv`)]);
  $("event-title").textContent = `Event ${id}: ${names.get(ev.group_id) || `group ${ev.group_id}`}, ${when(ev.started_at)}`;
  $("event-verdict").textContent = `${verdict(ev)[0].toUpperCase()}${verdict(ev).slice(1)}: `
    + `${kw(ev.delivered_kw)} delivered of ${kw(ev.contracted_kw)} contracted, `
    + `full activation in ${secs(ev.activation_s)}, lowest frequency ${ev.frequency_min_hz} Hz `
    + `(${ev.programme}).`;
  $("event-reasons").replaceChildren(...(ev.reasons || []).map((r) => {
    const li = document.createElement("li");
    li.textContent = r;
    return li;
  }));
  $("event-devices").tBodies[0].replaceChildren(...ev.devices.map((d) => {
    const dev = devices.get(d.device_id);
    return cellRow([dev ? dev.name : `device ${d.device_id}`, secs(d.response_s), kw(d.shed_kw),
      secs(d.support_s), d.compliant ? "compliant" : "not compliant"]);
  }));
  if (csvUrl) URL.revokeObjectURL(csvUrl);
  csvUrl = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  $("evidence-csv").href = csvUrl;
  $("evidence-csv").download = `ffr-event-${id}.csv`;
  const xs = [];
  const hz = [];
  const power = [];
  for (const line of csv.trim().split("\n").slice(1)) {
    const [t, f, p] = line.split(",");
    xs.push(Date.parse(t) / 1000);
    hz.push(Number(f));
    power.push(Number(p));
  }
  $("evidence-status").textContent = `${xs.length} samples of frequency and the group's active power`
    + (xs.length > 1 ? `, every ${Math.round((xs[1] - xs[0]) * 1000)} ms` : "");
  plot = new window.uPlot({
    ...size(),
    scales: { x: { time: true } },
    axes: [{}, { label: "kW" }, { scale: "Hz", label: "Hz", side: 1, grid: { show: false } }],
    series: [{}, { label: "Active power (kW)", stroke: "#1565c0", fill: "rgba(21,101,192,0.12)", width: 1.5 },
      { label: "Frequency (Hz)", scale: "Hz", stroke: "#c62828", width: 1.5 }],
  }, [xs, power, hz], $("evidence"));
  zoom();
}

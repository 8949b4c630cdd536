// What the page knows: the account's devices by id, kept current by the event stream,
// and the server's (possibly virtual) clock.

import { request } from "./api.js";

export const devices = new Map();
const listeners = new Set();

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed(id) {
  for (const fn of listeners) fn(id);
}

export async function loadDevices() {
  const list = await request("GET", "/devices");
  devices.clear();
  for (const d of list) devices.set(d.id, d);
  changed(null);
  return list;
}

export async function refresh(id) {
  const d = await request("GET", `/devices/${id}`);
  devices.set(d.id, d);
  changed(d.id);
  return d;
}

// An event's `state` carries the device's shadow: channels, meters, online. The stream
// holds the account's devices only, so one not known yet was added since the page loaded
// (an import, an adoption): its state is the whole device, as `GET /devices` gives it.
// Its `ts` (ISO 8601, as everywhere in the API) is the server's clock at the event: a
// manual or fast clock moved by another client reaches the page this way.
export function applyEvent(msg) {
  const ts = epochOf(msg.ts);
  if (Number.isFinite(ts)) clock.seen(ts);
  const d = devices.get(msg.device_id);
  const st = msg.state;
  if (!st) return;
  if (!d) {
    if (st.id !== msg.device_id || !Array.isArray(st.channels)) return;
    devices.set(st.id, { tags: [], meters: [], extra: {}, ...st });
    changed(null);
    return;
  }
  if (typeof st.online === "boolean") d.online = st.online;
  if ("reported_at" in st) d.reported_at = st.reported_at;
  if (Array.isArray(st.channels)) {
    d.channels = st.channels.map((c, i) => ({ ...(d.channels[i] || {}), ...c }));
  }
  if (Array.isArray(st.meters)) d.meters = st.meters;
  if ("temperature_c" in st) d.temperature_c = st.temperature_c;
  if (st.extra && typeof st.extra === "object") d.extra = st.extra;
  changed(d.id);
}

// Server time in epoch seconds: a manual clock moves only when told, a scaled one runs
// `speed` times as fast as the wall clock.
export const clock = {
  epoch: Date.now() / 1000, speed: 1, manual: false, wall: Date.now() / 1000,
  async load() {
    const c = await request("GET", "/sim/clock");
    Object.assign(this, { epoch: c.epoch, speed: c.speed, manual: c.manual, wall: Date.now() / 1000 });
  },
  now() {
    if (this.manual) return this.epoch;
    return this.epoch + this.speed * (Date.now() / 1000 - this.wall);
  },
  seen(ts) {
    if (ts > this.now()) { this.epoch = ts; this.wall = Date.now() / 1000; }
  },
};

export function epochOf(t) {
  if (t === null || t === undefined) return null;
  return typeof t === "number" ? t : Date.parse(t) / 1000;
}

export function totalPower(d) {
  return (d.meters || []).reduce((w, m) => w + (m.power_w || 0), 0);
}

// A channel's own power when the device meters each channel, else null.
export function channelPower(d, i) {
  const m = d.meters || [];
  return m.length === d.channels.length && m.length > 1 ? m[i].power_w : null;
}

export function watts(w) {
  if (w === null || w === undefined) return "—";
  return Math.abs(w) >= 1000 ? `${(w / 1000).toFixed(2)} kW` : `${w.toFixed(0)} W`;
}

// How long before the server's now a time was, in words ("5 min ago"); null if unknown.
export function ago(t) {
  const at = epochOf(t);
  if (!Number.isFinite(at)) return null;
  const s = Math.max(0, Math.floor(clock.now() - at));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// A reading of an offline device is its last report, not the present: said with its age.
export function lastKnown(d, text) {
  const age = ago(d.reported_at);
  return age ? `${text}, ${age}` : text;
}

// A device's power as a live page shows it: now when online, else the last known value.
export function powerNow(d, w) {
  if (w === null || w === undefined) return "—";
  return d.online ? watts(w) : `last known ${lastKnown(d, watts(w))}`;
}

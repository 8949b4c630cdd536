// A channel's settings on the device page: power-on state, flip-back timers, over-power
// limit; only the fields the user changed are sent.

import { request } from "./api.js";
import { devices, refresh } from "./model.js";
import { announce } from "./notice.js";

const $ = (id) => document.getElementById(id);
const FIELDS = [
  ["power-on", "power_on", (v) => v],
  ["auto-off", "auto_off_s", Number],
  ["auto-on", "auto_on_s", Number],
  ["max-power", "max_power_w", Number],
];
let deviceId = null;

export function setupSettings() {
  $("settings-channel").addEventListener("change", fill);
  $("settings").addEventListener("submit", async (e) => {
    e.preventDefault();
    const d = devices.get(deviceId);
    const ch = d.channels[Number($("settings-channel").value)];
    const body = {};
    for (const [id, key, parse] of FIELDS) {
      const raw = $(id).value;
      const was = ch.settings[key];
      if (raw === "" || raw === String(was ?? "")) continue;
      body[key] = parse(raw);
    }
    if (!Object.keys(body).length) { announce("Nothing to save."); return; }
    if (d.channels.length > 1) body.channel = ch.index;
    try {
      await request("PATCH", `/devices/${d.id}/settings`, body);
      await refresh(d.id);
      fill();
      announce(`${d.name}: settings saved.`);
    } catch (err) {
      announce(`${d.name}: settings not saved: ${err.message}`, true);
    }
  });
}

export function showSettings(d) {
  deviceId = d.id;
  $("settings").hidden = !d.channels.length;
  $("settings-title").hidden = !d.channels.length;
  $("settings-channel-field").hidden = d.channels.length < 2;
  $("settings-channel").replaceChildren(...d.channels.map((c) => new Option(c.name, c.index)));
  fill();
}

function fill() {
  const d = devices.get(deviceId);
  const ch = d && d.channels[Number($("settings-channel").value) || 0];
  if (!ch) return;
  for (const [id, key] of FIELDS) {
    const v = ch.settings[key];
    $(id).value = v === null || v === undefined ? "" : String(v);
  }
}

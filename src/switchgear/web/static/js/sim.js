// The device page's simulation panel: network on/off, a mains power cycle, the load
// behind a channel and, on a manual clock, moving the clock (the operator's right).

import { request } from "./api.js";
import { clock, devices, refresh } from "./model.js";
import { announce } from "./notice.js";

const $ = (id) => document.getElementById(id);
let deviceId = null;

async function act(what, fn) {
  const d = devices.get(deviceId);
  try {
    await fn(d);
    await refresh(d.id);
    announce(`${d.name}: ${what}.`);
  } catch (err) {
    announce(`${d.name}: ${what} refused: ${err.message}`, true);
  }
}

export function setupSim() {
  $("sim-online").addEventListener("click", () => {
    const on = !devices.get(deviceId).online;
    act(on ? "back online" : "taken offline", (d) =>
      request("POST", `/sim/devices/${d.id}/online`, { online: on }));
  });
  $("sim-cycle").addEventListener("click", () =>
    act("power cycled", (d) => request("POST", `/sim/devices/${d.id}/power-cycle`)));
  $("sim-load").addEventListener("submit", (e) => {
    e.preventDefault();
    const channel = Number($("sim-channel").value) || 0;
    const watts = Number($("sim-watts").value);
    act(`load set to ${watts} W`, (d) => request("PUT", `/sim/devices/${d.id}/load`, { channel, watts }));
  });
  $("sim-clock").addEventListener("submit", (e) => {
    e.preventDefault();
    const seconds = Number($("sim-seconds").value);
    act(`clock moved ${seconds} s`, async () => {
      const c = await request("POST", "/sim/clock/advance", { seconds });
      clock.seen(c.epoch);
    });
  });
}

export function showSim(d) {
  deviceId = d.id;
  const n = Math.max(d.channels.length, 1);
  $("sim-channel-field").hidden = n < 2;
  $("sim-channel").replaceChildren(...(d.channels.length ? d.channels : [{ index: 0, name: "0" }])
    .map((c) => new Option(c.name, c.index)));
  $("sim-clock").hidden = !clock.manual;
  simChanged(d);
}

export function simChanged(d) {
  if (d.id === deviceId) $("sim-online").textContent = d.online ? "Take offline" : "Bring online";
}

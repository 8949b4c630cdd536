// One relay channel's control: a switch whose checked state is the relay's, named after
// its device, with the pending flip's countdown; switching sends delay and duration.

import { request, ApiError } from "./api.js";
import { clock, epochOf, refresh, channelPower, watts } from "./model.js";
import { announce } from "./notice.js";

export function switchOptions() {
  const num = (id) => {
    const v = document.getElementById(id)?.value;
    return v === "" || v === undefined ? null : Number(v);
  };
  const body = {};
  const delay = num("delay");
  const duration = num("duration");
  if (delay) body.delay = delay;
  if (duration) body.duration = duration;
  return body;
}

function countdown(s) {
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

export function relayControl(d, ch) {
  const wrap = document.createElement("span");
  wrap.className = "relay";
  const label = document.createElement("label");
  const input = document.createElement("input");
  input.type = "checkbox";
  input.setAttribute("role", "switch");
  input.dataset.device = d.id;
  input.dataset.channel = ch.index;
  const text = document.createElement("span");
  label.append(input, text);
  const pending = document.createElement("span");
  pending.className = "pending";
  wrap.append(label, pending);
  input.addEventListener("change", async () => {
    const want = input.checked;
    input.checked = !want; // shows the relay, not the wish, until the device reports
    const dev = wrap._device;
    try {
      const body = { action: want ? "on" : "off", ...switchOptions() };
      await request("POST", `/devices/${dev.id}/channels/${ch.index}/switch`, body);
      await refresh(dev.id);
    } catch (err) {
      const why = err instanceof ApiError && err.status === 503 ? "is offline" : `refused: ${err.message}`;
      announce(`${dev.name}: ${why}`, true);
    }
  });
  updateRelay(wrap, d, ch);
  return wrap;
}

export function updateRelay(wrap, d, ch) {
  wrap._device = d;
  const input = wrap.querySelector("input");
  const text = wrap.querySelector("label span");
  const pending = wrap.querySelector(".pending");
  const name = d.channels.length > 1 ? `${d.name} ${ch.name}` : d.name;
  input.checked = !!ch.on;
  input.disabled = !d.online;
  input.setAttribute("aria-label", d.online ? name : `${name} (offline)`);
  const p = channelPower(d, ch.index);
  const label = d.channels.length > 1 ? `${ch.name}` : "";
  // an offline device's power is its last report, not now: the device's total says so
  text.textContent = [label, ch.on ? "on" : "off", p === null || !d.online ? "" : watts(p),
    d.online ? "" : "offline"].filter(Boolean).join(" · ");
  const at = epochOf(ch.toggle_at);
  wrap._toggleAt = at;
  wrap._toggleTo = ch.on ? "off" : "on";
  tick(wrap);
}

export function tick(wrap) {
  const pending = wrap.querySelector(".pending");
  const at = wrap._toggleAt;
  if (at === null || at === undefined) { pending.textContent = ""; return; }
  pending.textContent = `${wrap._toggleTo} in ${countdown(at - clock.now())}`;
}

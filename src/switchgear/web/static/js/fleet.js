// The fleet overview: every device of the account, filtered by family, tag and name,
// a page of rows at a time so a fleet of thousands stays quick; rows update live.

import { devices, totalPower, powerNow } from "./model.js";
import { relayControl, updateRelay, tick } from "./relays.js";

const PAGE = 50;
let page = 0;
const rows = new Map(); // device id -> its <tr>

const $ = (id) => document.getElementById(id);

export function setupFleet() {
  for (const id of ["family", "tag"]) $(id).addEventListener("change", () => { page = 0; renderFleet(); });
  $("search").addEventListener("input", () => { page = 0; renderFleet(); });
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("prev").addEventListener("click", () => { page -= 1; renderFleet(); });
  $("next").addEventListener("click", () => { page += 1; renderFleet(); });
}

function fillSelect(sel, values) {
  const keep = sel.value;
  const first = sel.options[0];
  sel.replaceChildren(first, ...[...values].sort().map((v) => new Option(v, v)));
  sel.value = values.has(keep) ? keep : "";
}

export function renderFleet() {
  const all = [...devices.values()];
  fillSelect($("family"), new Set(all.map((d) => d.family)));
  fillSelect($("tag"), new Set(all.flatMap((d) => d.tags)));
  const family = $("family").value;
  const tag = $("tag").value;
  const q = $("search").value.trim().toLowerCase();
  const shown = all.filter((d) => (!family || d.family === family)
    && (!tag || d.tags.includes(tag)) && (!q || d.name.toLowerCase().includes(q)));
  const pages = Math.max(1, Math.ceil(shown.length / PAGE));
  page = Math.min(Math.max(page, 0), pages - 1);
  const slice = shown.slice(page * PAGE, (page + 1) * PAGE);
  rows.clear();
  $("fleet").tBodies[0].replaceChildren(...slice.map(row));
  $("fleet-count").textContent = shown.length === all.length
    ? `${all.length} devices` : `${shown.length} of ${all.length} devices`;
  $("page-info").textContent = `Page ${page + 1} of ${pages}`;
  $("prev").disabled = page === 0;
  $("next").disabled = page >= pages - 1;
}

function row(d) {
  const tr = document.createElement("tr");
  const name = document.createElement("a");
  name.href = `#/devices/${d.id}`;
  name.textContent = d.name || d.serial;
  const cells = [name, d.family, d.model, "", document.createElement("div"), ""];
  for (const c of cells) {
    const td = document.createElement("td");
    td.append(c);
    tr.append(td);
  }
  tr.cells[0].classList.add("name");
  tr.cells[4].firstChild.className = "relays";
  for (const ch of d.channels) tr.cells[4].firstChild.append(relayControl(d, ch));
  if (!d.channels.length) tr.cells[4].firstChild.textContent = "no relay";
  rows.set(d.id, tr);
  update(tr, d);
  return tr;
}

function update(tr, d) {
  tr.cells[3].textContent = d.online ? "online" : "offline";
  tr.cells[3].className = d.online ? "on" : "off";
  tr.cells[5].textContent = d.meters.length ? powerNow(d, totalPower(d)) : "—";
  const wraps = tr.cells[4].querySelectorAll(".relay");
  d.channels.forEach((ch, i) => wraps[i] && updateRelay(wraps[i], d, ch));
}

export function fleetChanged(id) {
  if (id === null) { renderFleet(); return; }
  const tr = rows.get(id);
  if (tr) update(tr, devices.get(id));
}

export function fleetTick() {
  for (const [id, tr] of rows) {
    tr.querySelectorAll(".relay").forEach(tick);
    const d = devices.get(id);
    if (d && !d.online && d.meters.length) tr.cells[5].textContent = powerNow(d, totalPower(d));
  }
}

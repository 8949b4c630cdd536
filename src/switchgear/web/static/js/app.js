// The dashboard's entry: sign in and out, route between the fleet and a device's page,
// and keep the page current from the event stream.

import { session, signIn, signOut, forget, streamEvents, whenUnauthorized } from "./api.js";
import { applyEvent, clock, loadDevices, onChange } from "./model.js";
import { setupFleet, renderFleet, fleetChanged, fleetTick } from "./fleet.js";
import { setupDevice, showDevice, leaveDevice, deviceChanged, deviceTick } from "./device.js";
import { announce } from "./notice.js";
import { setupAccount, showAccount } from "./account.js";
import { setupGrid, showGrid, gridChanged, gridTick } from "./grid.js";
import { setupFfr, showFfr } from "./ffr.js";

const $ = (id) => document.getElementById(id);
let stopStream = null;
const VIEWS = ["signin-view", "fleet-view", "device-view", "account-view", "grid-view", "ffr-view"];

function show(view) {
  for (const v of VIEWS) $(v).hidden = v !== view;
  $("switch-options").hidden = view === "signin-view"; // they apply to every switch
}

function live(on) {
  $("live").dataset.state = on ? "on" : "off";
  $("live").textContent = on ? "Live updates: on" : "Live updates: off";
}

async function route() {
  if (!session()) { showSignIn(); return; }
  const m = location.hash.match(/^#\/devices\/(\d+)$/);
  const ffr = location.hash.match(/^#\/ffr(?:\/events\/(\d+))?$/);
  if (location.hash === "#/account") {
    leaveDevice();
    show("account-view");
    await showAccount(endSession).catch((err) => announce(err.message, true));
  } else if (location.hash === "#/grid") {
    leaveDevice();
    show("grid-view");
    showGrid();
  } else if (ffr) {
    leaveDevice();
    show("ffr-view");
    await showFfr(ffr[1] ? Number(ffr[1]) : null).catch((err) => announce(err.message, true));
  } else if (m) {
    show("device-view");
    try {
      await showDevice(Number(m[1]));
    } catch (err) {
      // not the page of the device shown before, with its live switches, under this address
      leaveDevice();
      document.title = "switchgear";
      show("fleet-view");
      renderFleet();
      announce(`This device cannot be shown: ${err.message}`, true);
    }
  } else {
    leaveDevice();
    document.title = "switchgear";
    show("fleet-view");
    renderFleet();
  }
}

function showSignIn() {
  if (stopStream) { stopStream(); stopStream = null; }
  $("who").hidden = true;
  $("nav").hidden = true;
  show("signin-view");
  document.title = "Sign in · switchgear";
  $("email").focus();
}

async function start() {
  const s = session();
  $("who-email").textContent = s.email;
  $("who").hidden = false;
  $("nav").hidden = false;
  await Promise.all([loadDevices(), clock.load().catch(() => {})]);
  if (!stopStream) stopStream = streamEvents((kind, msg) => { if (kind !== "end") applyEvent(msg); }, live);
  await route();
}

$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = $("signin-error");
  err.hidden = true;
  const button = e.submitter || $("signin").querySelector("button");
  button.disabled = true;
  try {
    await signIn($("email").value.trim(), $("password").value);
    $("password").value = "";
    await start();
  } catch (ex) {
    err.textContent = ex.status === 401 ? "Wrong email or password." : `Sign-in failed: ${ex.message}`;
    err.hidden = false;
  } finally {
    button.disabled = false;
  }
});

$("signout").addEventListener("click", async () => {
  if (stopStream) { stopStream(); stopStream = null; }
  await signOut();
  location.hash = "";
  showSignIn();
});

function endSession() {
  forget();
  announce("Your session has ended; please sign in again.", true);
  showSignIn();
}

whenUnauthorized(endSession);

$("switch-options").addEventListener("submit", (e) => e.preventDefault());
setupFleet();
setupAccount(endSession);
setupDevice();
setupGrid();
setupFfr();
onChange((id) => { fleetChanged(id); deviceChanged(id); gridChanged(id); });
window.addEventListener("hashchange", route);
setInterval(() => { fleetTick(); deviceTick(); gridTick(); }, 1000);

if (session()) {
  start().catch((err) => announce(`Could not load the fleet: ${err.message}`, true));
} else {
  showSignIn();
}

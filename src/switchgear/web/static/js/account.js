// The account page: who is signed in, its native API tokens (create, shown once; revoke;
// revoking this page's own token signs the page out) and its vendor-API credentials.

import { request, session } from "./api.js";
import { announce } from "./notice.js";

const $ = (id) => document.getElementById(id);
const when = (t) => (t ? new Date(t).toLocaleString() : "never");

// The credentials `POST /api/v1/credentials` issues, one per vendor face's kind.
const KINDS = [
  ["smartplug.client", "Smart plug API client (client id and secret)"],
  ["multisocket.key", "Multi-outlet subscription key"],
  ["multisocket.id_token", "Multi-outlet id token"],
  ["powercontroller.token", "Power controller API token"],
  ["push3.key", "Push3 API key"],
  ["push3.gateway_key", "Push3 gateway key"],
];
const KIND_NAMES = new Map(KINDS);

export function setupAccount(signedOut) {
  $("cred-kind").replaceChildren(...KINDS.map(([k, name]) => new Option(name, k)));
  $("new-cred").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const c = await request("POST", "/credentials", { kind: $("cred-kind").value, desc: $("cred-desc").value });
      $("cred-value").replaceChildren(...Object.entries(c).flatMap(([k, v]) => {
        const dt = document.createElement("dt");
        const dd = document.createElement("dd");
        const code = document.createElement("code");
        dt.textContent = k;
        // times come as epoch seconds from some faces: shown as dates
        const time = k.endsWith("_at") && typeof v === "number";
        code.textContent = time ? when(v * 1000) : typeof v === "string" ? v : JSON.stringify(v);
        dd.append(code);
        return [dt, dd];
      }));
      $("cred-secret").hidden = false;
      $("cred-desc").value = "";
      await credentials();
    } catch (err) {
      announce(`Credential not issued: ${err.message}`, true);
    }
  });
  $("new-token").addEventListener("submit", async (e) => {
    e.preventDefault();
    const days = Number($("token-days").value) || 30;
    try {
      const t = await request("POST", "/tokens", { desc: $("token-desc").value, expires_in: days * 86400 });
      $("token-value").textContent = t.token;
      $("token-secret").hidden = false;
      $("token-desc").value = "";
      await list(signedOut);
    } catch (err) {
      announce(`Token not created: ${err.message}`, true);
    }
  });
}

export async function showAccount(signedOut) {
  document.title = "Account · switchgear";
  $("token-secret").hidden = true;
  const a = await request("GET", "/account");
  $("account-who").textContent = `${a.name} <${a.email}>, ${a.role}`;
  $("cred-secret").hidden = true;
  await Promise.all([list(signedOut), credentials()]);
}

async function credentials() {
  const creds = await request("GET", "/credentials");
  $("creds").tBodies[0].replaceChildren(...creds.map((c) => {
    const tr = document.createElement("tr");
    const desc = c.desc || c.id;
    const kind = KIND_NAMES.get(c.kind) || c.kind;
    for (const v of [kind, desc, when(c.created_at), when(c.expires_at), c.revoked ? "revoked" : "active"]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    const td = document.createElement("td");
    if (!c.revoked) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Revoke";
      b.setAttribute("aria-label", `Revoke credential ${desc}`);
      b.addEventListener("click", async () => {
        try {
          await request("DELETE", `/credentials/${encodeURIComponent(c.id)}`);
        } catch (err) {
          announce(`Not revoked: ${err.message}`, true);
          return;
        }
        announce(`Credential "${desc}" revoked.`);
        await credentials();
      });
      td.append(b);
    }
    tr.append(td);
    return tr;
  }));
}

async function list(signedOut) {
  const mine = session() && session().id;
  const tokens = await request("GET", "/tokens");
  $("tokens").tBodies[0].replaceChildren(...tokens.map((t) => {
    const tr = document.createElement("tr");
    const desc = t.desc || t.id;
    const state = t.revoked ? "revoked" : t.id === mine ? "this session" : "active";
    for (const c of [desc, when(t.created_at), when(t.expires_at), state]) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.append(td);
    }
    const td = document.createElement("td");
    if (!t.revoked) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Revoke";
      b.setAttribute("aria-label", `Revoke ${desc}`);
      b.addEventListener("click", async () => {
        try {
          await request("DELETE", `/tokens/${encodeURIComponent(t.id)}`);
        } catch (err) {
          announce(`Not revoked: ${err.message}`, true);
          return;
        }
        if (t.id === mine) { signedOut(); return; }
        announce(`Token "${desc}" revoked.`);
        await list(signedOut);
      });
      td.append(b);
    }
    tr.append(td);
    return tr;
  }));
}

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
  issuing("new-cred", "Credential not issued", async () => {
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
  });
  issuing("new-token", "Token not created", async () => {
    const days = Number($("token-days").value) || 30;
    const t = await request("POST", "/tokens", { desc: $("token-desc").value, expires_in: days * 86400 });
    $("token-value").textContent = t.token;
    $("token-secret").hidden = false;
    $("token-desc").value = "";
    await list(signedOut);
  });
}

// The form `id` runs `issue` when submitted; a refusal is announced after `failure`.
function issuing(id, failure, issue) {
  $(id).addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await issue();
    } catch (err) {
      announce(`${failure}: ${err.message}`, true);
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
    const desc = c.desc || c.id;
    const kind = KIND_NAMES.get(c.kind) || c.kind;
    const cells = [kind, desc, when(c.created_at), when(c.expires_at), c.revoked ? "revoked" : "active"];
    return row(cells, c.revoked ? null : {
      label: `Revoke credential ${desc}`,
      path: `/credentials/${encodeURIComponent(c.id)}`,
      done: async () => {
        announce(`Credential "${desc}" revoked.`);
        await credentials();
      },
    });
  }));
}

async function list(signedOut) {
  const mine = session() && session().id;
  const tokens = await request("GET", "/tokens");
  $("tokens").tBodies[0].replaceChildren(...tokens.map((t) => {
    const desc = t.desc || t.id;
    const state = t.revoked ? "revoked" : t.id === mine ? "this session" : "active";
    return row([desc, when(t.created_at), when(t.expires_at), state], t.revoked ? null : {
      label: `Revoke ${desc}`,
      path: `/tokens/${encodeURIComponent(t.id)}`,
      done: async () => {
        if (t.id === mine) { signedOut(); return; }
        announce(`Token "${desc}" revoked.`);
        await list(signedOut);
      },
    });
  }));
}

// A table row of `cells` (as text) and a last cell holding, when `revoke` is given, a
// "Revoke" button named `revoke.label`: it sends DELETE `revoke.path`, announces a
// refusal, and calls `revoke.done` once revoked.
function row(cells, revoke) {
  const tr = document.createElement("tr");
  for (const v of cells) {
    const td = document.createElement("td");
    td.textContent = v;
    tr.append(td);
  }
  const td = document.createElement("td");
  if (revoke) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "Revoke";
    b.setAttribute("aria-label", revoke.label);
    b.addEventListener("click", async () => {
      try {
        await request("DELETE", revoke.path);
      } catch (err) {
        announce(`Not revoked: ${err.message}`, true);
        return;
      }
      await revoke.done();
    });
    td.append(b);
  }
  tr.append(td);
  return tr;
}

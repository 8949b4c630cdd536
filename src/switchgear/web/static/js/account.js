// The account page: who is signed in, and the account's native API tokens (create,
// shown once; revoke). Revoking this page's own token signs the page out.

import { request, session } from "./api.js";
import { announce } from "./notice.js";

const $ = (id) => document.getElementById(id);
const when = (t) => (t ? new Date(t).toLocaleString() : "never");

export function setupAccount(signedOut) {
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
  await list(signedOut);
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

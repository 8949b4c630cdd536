// The native API as the page uses it: a bearer token held in this tab, never a cookie,
// so no other site can make a request on the user's behalf.

const KEY = "switchgear.session";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY));
  } catch {
    return null;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export async function request(method, path, body) {
  const s = session();
  const headers = { Accept: "application/json" };
  if (s) headers.Authorization = `Bearer ${s.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
  });
  if (r.status === 204) return null;
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    if (r.status === 401 && s) onUnauthorized();
    throw new ApiError(r.status, data.detail || data.title || `HTTP ${r.status}`);
  }
  return data;
}

export async function signIn(email, password) {
  const t = await request("POST", "/tokens", {
    email, password, desc: "dashboard", expires_in: 12 * 3600,
  });
  sessionStorage.setItem(KEY, JSON.stringify({ token: t.token, id: t.id, email }));
  return session();
}

export async function signOut() {
  const s = session();
  if (s) {
    try {
      await request("DELETE", `/tokens/${encodeURIComponent(s.id)}`);
    } catch {
      // revoked or expired already: signed out either way
    }
  }
  sessionStorage.removeItem(KEY);
}

export function forget() {
  sessionStorage.removeItem(KEY);
}

// Server-sent events read through fetch (EventSource cannot send a bearer token).
// Calls onEvent(kind, data) per event and onState(connected); reconnects after a pause.
export function streamEvents(onEvent, onState) {
  const ctl = new AbortController();
  let stopped = false;
  async function run() {
    while (!stopped) {
      const s = session();
      if (!s) return;
      try {
        const r = await fetch("/api/v1/events", {
          headers: { Authorization: `Bearer ${s.token}`, Accept: "text/event-stream" },
          signal: ctl.signal,
          credentials: "omit",
        });
        if (r.status === 401) { onUnauthorized(); return; }
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        onState(true);
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let kind = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) kind = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
            }
            if (data.length) onEvent(kind, JSON.parse(data.join("\n")));
            if (kind === "end") { stopped = true; onUnauthorized(); return; }
          }
        }
      } catch (err) {
        if (stopped || err.name === "AbortError") return;
      }
      onState(false);
      if (!stopped) await new Promise((ok) => setTimeout(ok, 2000));
    }
  }
  run();
  return () => { stopped = true; ctl.abort(); onState(false); };
}

// A text answer (a CSV file) of the native API, with the page's bearer token.
export async function requestText(path) {
  const s = session();
  const r = await fetch(`/api/v1${path}`, {
    headers: s ? { Authorization: `Bearer ${s.token}` } : {},
    credentials: "omit",
  });
  if (r.status === 401 && s) onUnauthorized();
  if (!r.ok) throw new ApiError(r.status, `HTTP ${r.status}`);
  return r.text();
}

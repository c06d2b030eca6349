// The JSON API, with the API's own authentication: a bearer token the user pasted once (kept in
// sessionStorage, so it ends with the tab), or none, when a trusted proxy's identity header
// authenticates the browser's requests.

const KEY = "lineage.token";

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
  // A 404 for the route itself (this server has no such endpoint), not for a missing object.
  get missingRoute() {
    return (this.status === 404 || this.status === 405) && /^(Not Found|Method Not Allowed):/.test(this.message);
  }
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t.trim());
  else sessionStorage.removeItem(KEY);
}

export async function get(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const url = path + (q.toString() ? "?" + q.toString() : "");
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let r;
  try {
    r = await fetch(url, { headers, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, `the server did not answer (${e.message})`, path);
  }
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    body = null;
  }
  if (!r.ok) throw new ApiError(r.status, (body && body.message) || `HTTP ${r.status}`, path);
  return body;
}

// Path segments for the Marquez-style routes: every character that is not safe is encoded,
// slashes included (the server matches on the encoded path).
export function seg(s) {
  return encodeURIComponent(s);
}

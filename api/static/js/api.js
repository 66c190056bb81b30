// The API client: every call sends the stored key as X-API-Key; errors become ApiError.
const KEY_STORE = "riskgraph.apiKey";

export const ENTITY_TYPES = ["person", "employer", "clinic", "pharmacy", "agency"];
export const REL_TYPES = ["EMPLOYED_BY", "PLACED_BY", "CONTRIBUTED", "VISITED", "PURCHASED", "PRESCRIBED_AT",
  "LINKED", "HAS_PHONE", "HAS_ADDRESS", "HAS_BANK_ACCOUNT", "SAME_PERSON"];

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function getKey() { return localStorage.getItem(KEY_STORE) || ""; }
export function setKey(key) { localStorage.setItem(KEY_STORE, key.trim()); }
export function clearKey() { localStorage.removeItem(KEY_STORE); }

/** The role a development key names ("dev-<role>-..."), else null (other keys do not say). */
export function roleHint(key = getKey()) {
  const m = /^dev-(inspector|approval_system|investigator|model_owner|admin)-/.exec(key);
  return m ? m[1] : null;
}

/** "a=1&g=A&g=B" from {a: 1, g: ["A", "B"]}, leaving out empty values. */
export function query(params = {}) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) q.append(name, String(v));
  }
  return q.toString();
}

/** Fetch `path` (with `params`) from the API; JSON by default, the Response itself when `raw`. */
export async function api(path, { method = "GET", params, body, raw = false } = {}) {
  const qs = params ? query(params) : "";
  const headers = { "X-API-Key": getKey() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(qs ? `${path}?${qs}` : path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!resp.ok) {
    let code = "http_error";
    let message = `${resp.status} ${resp.statusText}`;
    try {
      const err = (await resp.json()).error;
      if (err) { code = err.code; message = err.message; }
    } catch { /* not a JSON error body */ }
    throw new ApiError(resp.status, code, message);
  }
  return raw ? resp : resp.json();
}

/** Public page configuration (no key needed): version and, on loopback in dev mode, the dev keys file. */
export async function pagesConfig() {
  try {
    const resp = await fetch("/pages/config");
    return resp.ok ? await resp.json() : {};
  } catch {
    return {};
  }
}

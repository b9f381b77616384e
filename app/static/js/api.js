// Calls to the service's /api/v1 with the key the user entered (kept in localStorage).
// Errors become ApiError with the problem+json detail and, for 403, the role needed.

const KEY_STORAGE = "spcmon.apiKey";
const ROLE_PATTERN = /needs the (\w+) role/;

export class ApiError extends Error {
  constructor(status, title, detail, neededRole = null) {
    super(detail || title || `HTTP ${status}`);
    this.status = status; // 0: the service could not be reached
    this.title = title;
    this.detail = detail;
    this.neededRole = neededRole;
  }
}

export function getKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return ""; // storage disabled: no key
  }
}

export function setKey(key) {
  const value = (key || "").trim();
  if (value) localStorage.setItem(KEY_STORAGE, value);
  else localStorage.removeItem(KEY_STORAGE);
}

/** The request headers that carry the key (none without one: anonymous read may be on). */
export function authHeaders() {
  const key = getKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

const listeners = new Set();

/** Be told of every refused call (401, 403), e.g. to show a notice. */
export function onRefused(listener) {
  listeners.add(listener);
}

/**
 * Call the API: `path` relative to the page (e.g. "api/v1/plant"). Resolves to the JSON
 * answer; rejects with ApiError. `role` is the role the call needs, for the message when
 * the service refuses it without naming one.
 */
export async function api(path, { method = "GET", body, role = null, revalidate = false } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  const init = { method, headers, cache: revalidate ? "no-cache" : "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "unreachable", String(err.message || err));
  }
  if (response.ok) return response.status === 204 ? null : response.json();
  throw await problem(response, role);
}

/** An ApiError from an error answer (problem+json when the service sent one). */
export async function problem(response, role = null) {
  let title = response.statusText;
  let detail = "";
  try {
    const body = await response.json();
    title = body.title || title;
    detail = body.detail || "";
  } catch {
    // not JSON: keep the status text
  }
  const named = ROLE_PATTERN.exec(detail);
  const needed = response.status === 403 ? (named ? named[1] : role) : null;
  const error = new ApiError(response.status, title, detail, needed);
  if (response.status === 401 || response.status === 403) {
    for (const listener of listeners) listener(error);
  }
  return error;
}

/** `api` for each path, settled: [{ok, value} | {ok: false, error}] in the same order. */
export async function apiAll(paths) {
  const settled = await Promise.allSettled(paths.map((p) => api(p, { revalidate: true })));
  return settled.map((s) =>
    s.status === "fulfilled" ? { ok: true, value: s.value } : { ok: false, error: s.reason },
  );
}

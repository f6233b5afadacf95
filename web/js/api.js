// API client: JSON over fetch, with a timeout, the API's error envelope turned into
// ApiError, and a 401 answered by one token renewal and one retry. The session is plugged
// in through useAuth() (session.js), so this module knows nothing about storage.

const API = "/api/v1";
const REQUEST_TIMEOUT_MS = 20_000;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The session ended (or changed) while the request ran: its answer is of no use. */
export class Cancelled extends Error {}

let auth = {
  generation: () => 0,       // bumped on login/logout: answers of an older session are dropped
  token: () => null,
  renew: async () => false,  // trade the refresh token; true if there is a new access token
  expired: () => {},         // the session cannot be renewed
};

export function useAuth(hooks) {
  auth = { ...auth, ...hooks };
}

export async function api(path, { method = "GET", body, auth: withAuth = true, idempotencyKey, retried = false } = {}) {
  const gen = auth.generation();
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (withAuth) {
    const token = auth.token();
    if (!token) throw new Cancelled();
    headers.Authorization = `Bearer ${token}`;
  }
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), REQUEST_TIMEOUT_MS);
  let res;
  let text = "";
  try {
    res = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctrl.signal,
      cache: "no-store",
      credentials: "omit",
    });
    text = await res.text();
  } catch (e) {
    if (gen !== auth.generation()) throw new Cancelled();
    throw new ApiError(0, "network_error",
      e?.name === "AbortError" ? "The server took too long to answer. Please try again."
        : "Cannot reach the server. Check your connection and try again.");
  } finally {
    clearTimeout(timer);
  }
  if (gen !== auth.generation()) throw new Cancelled();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = data && typeof data === "object" && data.error ? data.error : {};
    const message = typeof err.message === "string" && err.message
      ? err.message : `The server answered ${res.status} ${res.statusText || ""}`.trim();
    if (res.status === 401 && withAuth) {
      // The access token expired or was rejected: trade the refresh token once, then retry.
      if (!retried && (await auth.renew())) {
        return api(path, { method, body, auth: withAuth, idempotencyKey, retried: true });
      }
      auth.expired();
      throw new Cancelled();
    }
    throw new ApiError(res.status, err.code || `http_${res.status}`, message);
  }
  return data;
}

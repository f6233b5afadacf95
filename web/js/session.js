// Session: the access and refresh tokens (sessionStorage), their silent renewal, and the
// generation counter that makes answers of an ended session harmless.

import { api, useAuth } from "./api.js";

const STORAGE_TOKEN = "billwire.token";
const STORAGE_EXPIRES = "billwire.expires_at";
const STORAGE_REFRESH = "billwire.refresh_token";
// Renew the access token this long before it expires.
const REFRESH_AHEAD_MS = 60_000;

export const session = {
  gen: 0,              // bumped when a session ends: responses of an older one are ignored
  token: null,
  expiresAt: 0,
  refreshToken: null,  // single-use: POST /auth/refresh trades it for a new pair
};

let expiryTimer = null;
let refreshing = null; // the one refresh in flight
let onExpired = () => {};

/** What to do when the session cannot be renewed (end it, show the login form). */
export function onSessionExpired(fn) {
  onExpired = fn;
}

function expired() {
  if (!session.token) return;
  onExpired();
}

export function saveToken(token, expiresIn, refreshToken) {
  session.token = token;
  session.expiresAt = Date.now() + Math.max(30, Number(expiresIn) || 900) * 1000;
  if (typeof refreshToken === "string" && refreshToken) session.refreshToken = refreshToken;
  try {
    sessionStorage.setItem(STORAGE_TOKEN, token);
    sessionStorage.setItem(STORAGE_EXPIRES, String(session.expiresAt));
    if (session.refreshToken) sessionStorage.setItem(STORAGE_REFRESH, session.refreshToken);
  } catch { /* private mode: the session lasts as long as the page */ }
  scheduleRenewal();
}

function clearToken() {
  session.token = null;
  session.expiresAt = 0;
  session.refreshToken = null;
  try {
    sessionStorage.removeItem(STORAGE_TOKEN);
    sessionStorage.removeItem(STORAGE_EXPIRES);
    sessionStorage.removeItem(STORAGE_REFRESH);
  } catch { /* ignore */ }
}

/**
 * Picks up the tokens of this tab's session after a reload. Returns "restored", "expired"
 * (there was a token but it cannot be used) or "none".
 */
export function restoreSession() {
  let token = null;
  let expires = 0;
  let refresh = null;
  try {
    token = sessionStorage.getItem(STORAGE_TOKEN);
    expires = Number(sessionStorage.getItem(STORAGE_EXPIRES)) || 0;
    refresh = sessionStorage.getItem(STORAGE_REFRESH);
  } catch { /* no storage */ }
  if (token && (expires > Date.now() + 5000 || refresh)) {
    // An expired access token with a refresh token: the first call renews it.
    session.token = token;
    session.expiresAt = expires;
    session.refreshToken = refresh;
    return "restored";
  }
  clearToken();
  return token ? "expired" : "none";
}

/** One refresh at a time: a refresh token works once, so parallel 401s share one trade. */
export async function refreshSession() {
  if (!session.refreshToken) return false;
  if (!refreshing) {
    const gen = session.gen;
    const presented = session.refreshToken;
    refreshing = (async () => {
      try {
        const tok = await api("/auth/refresh", {
          method: "POST", body: { refresh_token: presented }, auth: false,
        });
        if (gen !== session.gen || !tok?.access_token) return false;
        saveToken(tok.access_token, tok.expires_in, tok.refresh_token);
        return true;
      } catch {
        return false;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

/**
 * Renews the access token shortly before it expires; without a refresh token the session
 * simply ends at expiry.
 */
export function scheduleRenewal() {
  clearTimeout(expiryTimer);
  const left = session.expiresAt - Date.now();
  const renew = async () => {
    if (!(await refreshSession())) expired();
  };
  const wait = session.refreshToken ? left - REFRESH_AHEAD_MS : left;
  expiryTimer = setTimeout(session.refreshToken ? renew : expired,
    Math.min(Math.max(wait, 0), 2_147_483_000));
}

/** Forgets the tokens; requests of this session still in flight come back Cancelled. */
export function endSession() {
  session.gen += 1;
  clearToken();
  clearTimeout(expiryTimer);
  refreshing = null;
}

/** Ends the login on the server too (its refresh tokens stop working); does not wait. */
export function logoutOnServer() {
  const refreshToken = session.refreshToken;
  if (!refreshToken) return;
  api("/auth/logout", { method: "POST", body: { refresh_token: refreshToken }, auth: false })
    .catch(() => { /* offline: the token still expires on its own */ });
}

useAuth({
  generation: () => session.gen,
  token: () => session.token,
  renew: refreshSession,
  expired,
});

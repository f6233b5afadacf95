// Billwire dashboard: plain ES module, no build step.
//
// Data flow:
//   1. GET /dashboard/stats gives the numbers as of event `as_of_event` (one snapshot).
//   2. A WebSocket subscribes with `after = as_of_event`, so every live event is a change the
//      numbers do not include yet. Each event is applied to the numbers at once.
//   3. A throttled refetch (at most every RECONCILE_MS while events arrive) replaces the base
//      numbers; events newer than the new snapshot are re-applied on top, so nothing is counted
//      twice or dropped.
// Incoming events are queued and applied once per animation frame, so a burst of thousands
// costs one DOM/chart update per frame.

const API = "/api/v1";
const STORAGE_TOKEN = "billwire.token";
const STORAGE_EXPIRES = "billwire.expires_at";
const STORAGE_REFRESH = "billwire.refresh_token";
// Renew the access token this long before it expires.
const REFRESH_AHEAD_MS = 60_000;
const RECONCILE_MS = 2500;
const PING_MS = 30_000;
const PONG_TIMEOUT_MS = 10_000;
const SUBSCRIBE_TIMEOUT_MS = 10_000;
const BACKOFF_MS = [1000, 2000, 4000, 5000];
const REQUEST_TIMEOUT_MS = 20_000;
const TOAST_MS = 5000;
const MAX_TOASTS = 5;
const RECENT_ORDERS = 10;
const RECENT_INVOICES = 5;
const DAY_MS = 86_400_000;

const PAYMENT_STATUSES = {
  succeeded: { label: "Succeeded", color: "#16a34a" },
  requires_confirmation: { label: "Pending", color: "#f59e0b" },
  failed: { label: "Failed", color: "#dc2626" },
  refunded: { label: "Refunded", color: "#7c3aed" },
  canceled: { label: "Canceled", color: "#94a3b8" },
};
const INVOICE_STATUSES = {
  draft: "Draft", open: "Open", paid: "Paid", void: "Void", uncollectible: "Uncollectible",
};

// ---------------------------------------------------------------------------------------------
// Small DOM helpers

const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function setText(id, text) {
  const node = $(id);
  if (node && node.textContent !== text) node.textContent = text;
}

// ---------------------------------------------------------------------------------------------
// Formatting. Money is integer minor units; it is only turned into a decimal string for
// Intl.NumberFormat (exact), never into a float for arithmetic.

const formatters = new Map();
function nf(key, make) {
  let f = formatters.get(key);
  if (!f) {
    f = make();
    formatters.set(key, f);
  }
  return f;
}

function safeCurrency(currency) {
  return typeof currency === "string" && /^[A-Za-z]{3}$/.test(currency) ? currency.toUpperCase() : "USD";
}

function fractionDigits(currency) {
  const c = safeCurrency(currency);
  return nf(`digits:${c}`, () => new Intl.NumberFormat("en", { style: "currency", currency: c }))
    .resolvedOptions().maximumFractionDigits;
}

/** 123456 minor units with 2 digits -> "1234.56"; exact for any safe integer. */
function minorToDecimal(minor, digits) {
  const n = Math.trunc(Number(minor) || 0);
  const neg = n < 0;
  let s = String(Math.abs(n));
  if (digits > 0) {
    s = s.padStart(digits + 1, "0");
    s = `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  }
  return neg ? `-${s}` : s;
}

function formatMoney(minor, currency, { compact = false } = {}) {
  const c = safeCurrency(currency);
  const digits = fractionDigits(c);
  const f = compact
    ? nf(`money-compact:${c}`, () => new Intl.NumberFormat(undefined, {
        style: "currency", currency: c, notation: "compact", maximumFractionDigits: 1,
      }))
    : nf(`money:${c}`, () => new Intl.NumberFormat(undefined, {
        style: "currency", currency: c, minimumFractionDigits: digits, maximumFractionDigits: digits,
      }));
  return f.format(minorToDecimal(minor, digits));
}

/** For chart axes only (Chart.js needs numbers); never used for arithmetic on money. */
function minorToMajorForChart(minor, currency) {
  return Number(minorToDecimal(minor, fractionDigits(currency)));
}

function formatCount(n) {
  return nf("count", () => new Intl.NumberFormat()).format(Number(n) || 0);
}

function formatPercent(ratio) {
  return nf("pct", () => new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 0 }))
    .format(ratio);
}

function formatDateTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const ago = Date.now() - d.getTime();
  if (ago >= -60_000 && ago < 60_000) return "Just now";
  if (ago > 0 && ago < 3_600_000) return `${Math.floor(ago / 60_000)} min ago`;
  const sameDay = new Date().toDateString() === d.toDateString();
  if (sameDay) {
    return `Today, ${nf("time", () => new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" })).format(d)}`;
  }
  return nf("datetime", () => new Intl.DateTimeFormat(undefined, {
    month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
  })).format(d);
}

function formatDayLabel(isoDate) {
  // "2026-11-01" is a UTC calendar day; format it as such.
  const d = new Date(`${isoDate}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return isoDate;
  return nf("day", () => new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" }))
    .format(d);
}

function utcDay(iso) {
  const d = iso ? new Date(iso) : new Date();
  return Number.isNaN(d.getTime()) ? new Date().toISOString().slice(0, 10) : d.toISOString().slice(0, 10);
}

function within24h(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? true : Date.now() - t < DAY_MS;
}

function titleCase(s) {
  return String(s || "").replace(/_/g, " ").replace(/^\w/, (c) => c.toUpperCase());
}

function initials(name, email) {
  const src = (name || email || "?").trim();
  const parts = src.split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : src.slice(0, 2);
  return letters.toUpperCase();
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// State

const S = {
  gen: 0,              // bumped on login/logout: responses of an older session are ignored
  token: null,
  expiresAt: 0,
  refreshToken: null,  // single-use: POST /auth/refresh trades it for a new pair
  me: null,
  base: null,          // the last fetched stats, as the server sent them
  stats: null,         // what is shown: base + the events newer than base.as_of_event
  pending: [],         // events applied on top of base (id > base.as_of_event), id order
  recent: [],          // the last events, re-applied to refetched lists
  lastEventId: null,   // the newest event id seen: drop anything <= it, resume after it
  inbox: [],           // events received, not yet applied (applied per animation frame)
  payments: [],
  invoices: [],
  paymentTimes: new Map(), // payment id -> {created_at, succeeded_at}: for refunds and day buckets
  dirty: new Set(),
  newRows: new Set(),  // ids of rows to highlight
  loaded: false,
  fetchedAt: 0,        // when the numbers were last fetched
};

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
class Cancelled extends Error {}

// ---------------------------------------------------------------------------------------------
// API client

async function api(path, { method = "GET", body, auth = true, idempotencyKey, retried = false } = {}) {
  const gen = S.gen;
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) {
    if (!S.token) throw new Cancelled();
    headers.Authorization = `Bearer ${S.token}`;
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
    if (gen !== S.gen) throw new Cancelled();
    throw new ApiError(0, "network_error",
      e?.name === "AbortError" ? "The server took too long to answer. Please try again."
        : "Cannot reach the server. Check your connection and try again.");
  } finally {
    clearTimeout(timer);
  }
  if (gen !== S.gen) throw new Cancelled();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = data && typeof data === "object" && data.error ? data.error : {};
    const message = typeof err.message === "string" && err.message
      ? err.message : `The server answered ${res.status} ${res.statusText || ""}`.trim();
    if (res.status === 401 && auth) {
      // The access token expired or was rejected: trade the refresh token once, then retry.
      if (!retried && (await refreshSession())) {
        return api(path, { method, body, auth, idempotencyKey, retried: true });
      }
      sessionExpired();
      throw new Cancelled();
    }
    throw new ApiError(res.status, err.code || `http_${res.status}`, message);
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Session

function showLogin({ notice = "", error = "" } = {}) {
  $("boot").hidden = true;
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  document.title = "Sign in · Billwire";
  const n = $("login-notice");
  n.textContent = notice;
  n.hidden = !notice;
  const e = $("login-error");
  e.textContent = error;
  e.hidden = !error;
  setBusy($("login-submit"), false);
  $("login-password").value = "";
  const email = $("login-email");
  (email.value ? $("login-password") : email).focus();
}

function saveToken(token, expiresIn, refreshToken) {
  S.token = token;
  S.expiresAt = Date.now() + Math.max(30, Number(expiresIn) || 900) * 1000;
  if (typeof refreshToken === "string" && refreshToken) S.refreshToken = refreshToken;
  try {
    sessionStorage.setItem(STORAGE_TOKEN, token);
    sessionStorage.setItem(STORAGE_EXPIRES, String(S.expiresAt));
    if (S.refreshToken) sessionStorage.setItem(STORAGE_REFRESH, S.refreshToken);
  } catch { /* private mode: the session lasts as long as the page */ }
  scheduleRenewal();
}

function clearToken() {
  S.token = null;
  S.expiresAt = 0;
  S.refreshToken = null;
  try {
    sessionStorage.removeItem(STORAGE_TOKEN);
    sessionStorage.removeItem(STORAGE_EXPIRES);
    sessionStorage.removeItem(STORAGE_REFRESH);
  } catch { /* ignore */ }
}

// One refresh at a time: a refresh token works once, so parallel 401s share one trade.
let refreshing = null;

async function refreshSession() {
  if (!S.refreshToken) return false;
  if (!refreshing) {
    const gen = S.gen;
    const presented = S.refreshToken;
    refreshing = (async () => {
      try {
        const tok = await api("/auth/refresh", {
          method: "POST", body: { refresh_token: presented }, auth: false,
        });
        if (gen !== S.gen || !tok?.access_token) return false;
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

// Renews the access token shortly before it expires; without a refresh token the
// session simply ends at expiry.
function scheduleRenewal() {
  clearTimeout(expiryTimer);
  const left = S.expiresAt - Date.now();
  const renew = async () => {
    if (!(await refreshSession())) sessionExpired();
  };
  const wait = S.refreshToken ? left - REFRESH_AHEAD_MS : left;
  expiryTimer = setTimeout(S.refreshToken ? renew : sessionExpired,
    Math.min(Math.max(wait, 0), 2_147_483_000));
}

let expiryTimer = null;

function endSession() {
  S.gen += 1;
  clearToken();
  clearTimeout(expiryTimer);
  refreshing = null;
  stopLive();
  clearTimeout(reconcileTimer);
  reconcileTimer = null;
  reconcileRunning = false;
  reconcileAgain = false;
  clearInterval(clockTimer);
  destroyCharts();
  clearToasts();
  Object.assign(S, {
    me: null, base: null, stats: null, pending: [], recent: [], lastEventId: null, inbox: [],
    payments: [], invoices: [], loaded: false, fetchedAt: 0,
  });
  S.paymentTimes.clear();
  S.dirty.clear();
  S.newRows.clear();
}

function sessionExpired() {
  if (!S.token) return;
  endSession();
  showLogin({ notice: "Session expired, please log in again." });
}

function logout() {
  // End the login on the server too (its refresh tokens stop working); the page does not
  // wait for the answer.
  const refreshToken = S.refreshToken;
  if (refreshToken) {
    api("/auth/logout", { method: "POST", body: { refresh_token: refreshToken }, auth: false })
      .catch(() => { /* offline: the token still expires on its own */ });
  }
  endSession();
  showLogin();
}

async function startSession() {
  const gen = S.gen;
  scheduleRenewal();
  $("login-view").hidden = true;
  $("boot").hidden = false;
  let me;
  try {
    me = await api("/auth/me");
  } catch (e) {
    if (e instanceof Cancelled) return;
    endSession();
    showLogin({ error: e.message });
    return;
  }
  if (gen !== S.gen) return;
  S.me = me;
  renderShell();
  $("boot").hidden = true;
  $("app-view").hidden = false;
  $("main").focus({ preventScroll: true });
  clockTimer = setInterval(() => markDirty("orders", "invoices", "asof"), 30_000);
  await initialLoad(gen);
}

async function initialLoad(gen) {
  $("load-error").hidden = true;
  try {
    const [stats, payments, invoices] = await Promise.all([
      api("/dashboard/stats"),
      api(`/payments?limit=${RECENT_ORDERS}`),
      api(`/invoices?limit=${RECENT_INVOICES}`),
    ]);
    if (gen !== S.gen) return;
    setBase(stats);
    S.fetchedAt = Date.now();
    S.lastEventId = stats.as_of_event ?? 0;
    setLists(payments, invoices);
    S.loaded = true;
    markDirty("stats", "charts", "orders", "invoices", "top", "asof");
    startLive();
  } catch (e) {
    if (e instanceof Cancelled || gen !== S.gen) return;
    const box = $("load-error");
    box.replaceChildren(
      `Could not load the dashboard: ${e.message} `,
      h("button", { type: "button", class: "link-btn", onclick: () => initialLoad(S.gen) }, "Try again"),
    );
    box.hidden = false;
    setText("page-sub", "Not loaded");
  }
}

// ---------------------------------------------------------------------------------------------
// Applying events to the numbers and lists

function setBase(stats) {
  stats.payments_by_status = stats.payments_by_status || {};
  stats.invoices_by_status = stats.invoices_by_status || {};
  stats.top_customers = Array.isArray(stats.top_customers) ? stats.top_customers : [];
  stats.revenue_by_day = Array.isArray(stats.revenue_by_day) ? stats.revenue_by_day : [];
  S.base = stats;
  const asOf = stats.as_of_event ?? 0;
  S.pending = S.pending.filter((ev) => ev.id > asOf);
  S.stats = structuredClone(stats);
  for (const ev of S.pending) applyToStats(S.stats, ev);
}

function setLists(payments, invoices) {
  if (payments && Array.isArray(payments.data)) {
    S.payments = payments.data.slice();
    for (const p of S.payments) rememberPayment(p);
  }
  if (invoices && Array.isArray(invoices.data)) S.invoices = invoices.data.slice();
  // The lists are not from the stats' snapshot: replay the latest events on them. Updates are
  // applied only if newer than the row (updated_at), so a fresher row is never rolled back.
  for (const ev of S.recent) applyToLists(ev, false);
  sortTrim();
}

function rememberPayment(p) {
  if (!p || !p.id) return;
  const t = S.paymentTimes.get(p.id) || {};
  if (p.created_at) t.created_at = p.created_at;
  if (p.status === "succeeded" && p.updated_at && !t.succeeded_at) t.succeeded_at = p.updated_at;
  S.paymentTimes.set(p.id, t);
  if (S.paymentTimes.size > 5000) S.paymentTimes.delete(S.paymentTimes.keys().next().value);
}

function bump(map, key, by) {
  if (!key) return;
  const v = (Number(map[key]) || 0) + by;
  if (v <= 0) delete map[key];
  else map[key] = v;
}

function dayPoint(st, day) {
  const series = st.revenue_by_day;
  let p = series.find((x) => x.date === day);
  if (p) return p;
  const last = series.length ? series[series.length - 1].date : null;
  if (last && day < last) return null; // older than the window
  // A new UTC day began: extend the window, keep 30 days.
  let cursor = last ? new Date(`${last}T00:00:00Z`) : new Date(`${day}T00:00:00Z`);
  if (!last) series.push(p = { date: day, orders: 0, revenue: 0 });
  while (!p) {
    cursor = new Date(cursor.getTime() + DAY_MS);
    const d = cursor.toISOString().slice(0, 10);
    const point = { date: d, orders: 0, revenue: 0 };
    series.push(point);
    if (d >= day) p = point;
    if (series.length > 400) break;
  }
  while (series.length > 30) series.shift();
  return p;
}

function addCustomerSpend(st, customer, currency, amount, orders) {
  if (!customer || !customer.id) return;
  const c = st.top_customers.find((x) => x.id === customer.id);
  if (!c) return; // membership changes come with the next refetch
  c.total_spent = c.total_spent || {};
  c.total_spent[currency] = (Number(c.total_spent[currency]) || 0) + amount;
  c.order_count = (Number(c.order_count) || 0) + orders;
  const cur = st.currency;
  st.top_customers.sort((a, b) => (Number(b.total_spent?.[cur]) || 0) - (Number(a.total_spent?.[cur]) || 0));
}

/** Applies one event to a stats object (mutates it). Pure with respect to the DOM. */
function applyToStats(st, ev) {
  const d = ev.data || {};
  const cur = st.currency;
  const amount = Math.trunc(Number(d.amount ?? d.total) || 0);
  const sameCurrency = d.currency === cur;
  switch (ev.event) {
    case "order_created": {
      st.total_orders += 1;
      if (within24h(ev.created_at)) st.orders_24h += 1;
      bump(st.payments_by_status, "requires_confirmation", 1);
      const p = dayPoint(st, utcDay(ev.created_at));
      if (p) p.orders += 1;
      addCustomerSpend(st, d.customer, d.currency, 0, 1);
      break;
    }
    case "payment_received": {
      bump(st.payments_by_status, "requires_confirmation", -1);
      bump(st.payments_by_status, "succeeded", 1);
      if (within24h(ev.created_at)) st.payments_24h += 1;
      if (sameCurrency) {
        st.total_revenue += amount;
        if (within24h(ev.created_at)) st.revenue_24h += amount;
        const created = S.paymentTimes.get(d.payment_id)?.created_at || ev.created_at;
        const p = dayPoint(st, utcDay(created));
        if (p) p.revenue += amount;
      }
      addCustomerSpend(st, d.customer, d.currency, amount, 0);
      break;
    }
    case "order_updated": {
      if (d.kind === "invoice") {
        bump(st.invoices_by_status, d.previous_status, -1);
        bump(st.invoices_by_status, d.status, 1);
        if (sameCurrency) {
          if (d.previous_status === "open" && d.status !== "open") st.outstanding_invoices -= amount;
          if (d.status === "open" && d.previous_status !== "open") st.outstanding_invoices += amount;
        }
        break;
      }
      // A payment.
      bump(st.payments_by_status, d.previous_status, -1);
      bump(st.payments_by_status, d.status, 1);
      const sign = d.previous_status === "succeeded" && d.status !== "succeeded" ? -1
        : d.status === "succeeded" && d.previous_status !== "succeeded" ? 1 : 0;
      if (sign !== 0) {
        const times = S.paymentTimes.get(d.id) || {};
        const succeededAt = sign > 0 ? ev.created_at : times.succeeded_at;
        const recent = succeededAt ? within24h(succeededAt) : false;
        if (recent) st.payments_24h += sign;
        if (sameCurrency) {
          st.total_revenue += sign * amount;
          if (recent) st.revenue_24h += sign * amount;
          if (times.created_at || sign > 0) {
            const p = dayPoint(st, utcDay(times.created_at || ev.created_at));
            if (p) p.revenue += sign * amount;
          }
        }
        addCustomerSpend(st, d.customer, d.currency, sign * amount, 0);
      }
      break;
    }
    case "invoice_created": {
      bump(st.invoices_by_status, d.status || "draft", 1);
      if (d.status === "open" && sameCurrency) st.outstanding_invoices += amount;
      break;
    }
    default:
      break; // unknown event types are shown nowhere; the next refetch covers them
  }
}

function isNewer(ev, row) {
  const a = Date.parse(ev.created_at);
  const b = Date.parse(row.updated_at);
  return Number.isNaN(a) || Number.isNaN(b) || a >= b;
}

/** Applies one event to the recent orders/invoices lists. */
function applyToLists(ev, fresh) {
  const d = ev.data || {};
  switch (ev.event) {
    case "order_created": {
      if (!d.payment_id) return;
      S.paymentTimes.set(d.payment_id, { ...S.paymentTimes.get(d.payment_id), created_at: ev.created_at });
      if (S.payments.some((p) => p.id === d.payment_id)) return;
      S.payments.push({
        id: d.payment_id, status: "requires_confirmation", amount: d.amount, currency: d.currency,
        plan_name: d.plan_name, billing_cycle: d.billing_cycle, customer: d.customer,
        created_at: ev.created_at, updated_at: ev.created_at,
      });
      if (fresh) S.newRows.add(d.payment_id);
      S.dirty.add("orders");
      return;
    }
    case "payment_received": {
      const t = S.paymentTimes.get(d.payment_id) || {};
      t.succeeded_at = ev.created_at;
      S.paymentTimes.set(d.payment_id, t);
      setRowStatus(S.payments, d.payment_id, "succeeded", ev, fresh);
      return;
    }
    case "order_updated": {
      if (d.kind === "invoice") setRowStatus(S.invoices, d.id, d.status, ev, fresh);
      else setRowStatus(S.payments, d.id, d.status, ev, fresh);
      return;
    }
    case "invoice_created": {
      if (!d.invoice_id || S.invoices.some((i) => i.id === d.invoice_id)) return;
      S.invoices.push({
        id: d.invoice_id, number: d.invoice_number, status: d.status || "draft", currency: d.currency,
        total: d.total, customer: d.customer, created_at: ev.created_at, updated_at: ev.created_at,
      });
      if (fresh) S.newRows.add(d.invoice_id);
      S.dirty.add("invoices");
      return;
    }
    default:
  }
}

function setRowStatus(list, id, status, ev, fresh) {
  const row = list.find((r) => r.id === id);
  if (!row || !status || !isNewer(ev, row)) return;
  row.status = status;
  row.updated_at = ev.created_at;
  if (fresh) S.newRows.add(id);
  S.dirty.add(list === S.invoices ? "invoices" : "orders");
}

function sortTrim() {
  const byNewest = (a, b) => (Date.parse(b.created_at) || 0) - (Date.parse(a.created_at) || 0);
  S.payments.sort(byNewest);
  S.invoices.sort(byNewest);
  S.payments.length = Math.min(S.payments.length, RECENT_ORDERS);
  S.invoices.length = Math.min(S.invoices.length, RECENT_INVOICES);
}

// ---------------------------------------------------------------------------------------------
// Receiving events: dedupe at once, apply per frame

function receive(ev) {
  if (!ev || typeof ev !== "object" || !Number.isSafeInteger(ev.id)) return;
  if (S.lastEventId != null && ev.id <= S.lastEventId) return; // at-least-once delivery
  S.lastEventId = ev.id;
  S.inbox.push(ev);
  scheduleFlush();
}

let flushScheduled = false;
function scheduleFlush() {
  if (flushScheduled) return;
  flushScheduled = true;
  // Animation frames stop in background tabs; a timer keeps the numbers moving there.
  if (document.hidden) setTimeout(flush, 250);
  else requestAnimationFrame(flush);
}

function flush() {
  flushScheduled = false;
  if (!S.base) return;
  const batch = S.inbox;
  S.inbox = [];
  if (!batch.length) return;
  const asOf = S.base.as_of_event ?? 0;
  const groups = new Map();
  for (const ev of batch) {
    if (ev.id > asOf) {
      applyToStats(S.stats, ev);
      S.pending.push(ev);
    }
    applyToLists(ev, true);
    S.recent.push(ev);
    const g = groups.get(ev.event);
    if (g) { g.count += 1; g.last = ev; } else groups.set(ev.event, { count: 1, last: ev });
  }
  if (S.recent.length > 200) S.recent.splice(0, S.recent.length - 200);
  sortTrim();
  markDirty("stats", "charts", "top", "asof");
  for (const [type, g] of groups) eventToast(type, g.count, g.last);
  scheduleReconcile();
}

// One refetch at most every RECONCILE_MS while events keep arriving (throttle, trailing).
let reconcileTimer = null;
let reconcileRunning = false;
let reconcileAgain = false;
let lastReconcile = 0;

function scheduleReconcile() {
  if (reconcileRunning) {
    reconcileAgain = true;
    return;
  }
  if (reconcileTimer) return;
  const wait = Math.max(RECONCILE_MS - (Date.now() - lastReconcile), 1000);
  reconcileTimer = setTimeout(reconcile, wait);
}

async function reconcile() {
  reconcileTimer = null;
  if (!S.token || !S.base) return;
  const gen = S.gen;
  reconcileRunning = true;
  reconcileAgain = false;
  lastReconcile = Date.now();
  try {
    const [stats, payments, invoices] = await Promise.all([
      api("/dashboard/stats"),
      api(`/payments?limit=${RECENT_ORDERS}`),
      api(`/invoices?limit=${RECENT_INVOICES}`),
    ]);
    if (gen !== S.gen) return;
    // If the snapshot is ahead of the stream, the events in between still arrive (toasts,
    // lists) but are not counted again: they are <= as_of_event.
    setBase(stats);
    S.fetchedAt = Date.now();
    setLists(payments, invoices);
    markDirty("stats", "charts", "orders", "invoices", "top", "asof");
  } catch (e) {
    if (e instanceof Cancelled || gen !== S.gen) return;
    console.warn("billwire: refresh failed", e);
    reconcileAgain = true; // try again later; the live numbers stand meanwhile
  } finally {
    if (gen === S.gen) {
      reconcileRunning = false;
      if (reconcileAgain) scheduleReconcile();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Live connection

const live = {
  ws: null,
  stopped: true,
  attempt: 0,
  everLive: false,
  retryTimer: null,
  pingTimer: null,
  pongTimer: null,
  subscribeTimer: null,
  connecting: false,
  seq: 0,              // identifies the current connect attempt
};

function setLiveState(state, detail = "") {
  const el = $("live-status");
  el.dataset.state = state;
  const text = state === "live" ? "Live" : state === "connecting" ? "Connecting…" : "Disconnected";
  setText("live-status-text", text);
  el.title = detail || (state === "live" ? "Receiving real-time updates" : text);
}

function startLive() {
  live.stopped = false;
  live.attempt = 0;
  live.everLive = false;
  setLiveState("connecting", "Connecting to real-time updates…");
  connectLive();
}

function stopLive() {
  live.stopped = true;
  clearLiveTimers();
  clearTimeout(live.retryTimer);
  live.retryTimer = null;
  const ws = live.ws;
  live.ws = null;
  if (ws) detachAndClose(ws, 1000, "logout");
  live.connecting = false;
  live.seq += 1;
  setLiveState("connecting");
}

function clearLiveTimers() {
  clearInterval(live.pingTimer);
  clearTimeout(live.pongTimer);
  clearTimeout(live.subscribeTimer);
  live.pingTimer = live.pongTimer = live.subscribeTimer = null;
}

function detachAndClose(ws, code, reason) {
  ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
  try { ws.close(code, reason); } catch { /* already closed */ }
}

async function connectLive() {
  if (live.stopped || live.ws || live.connecting) return;
  clearTimeout(live.retryTimer);
  live.retryTimer = null;
  live.connecting = true;
  const seq = ++live.seq;
  const gen = S.gen;
  if (!live.everLive) setLiveState("connecting", "Connecting to real-time updates…");
  let ticket;
  try {
    ticket = await api("/events/ticket", { method: "POST" }); // single use: one per connect
  } catch (e) {
    if (seq !== live.seq) return; // a newer attempt (or a logout) took over
    live.connecting = false;
    if (e instanceof Cancelled || gen !== S.gen) return;
    connectionLost(`Could not get a connection ticket: ${e.message}`);
    return;
  }
  if (seq !== live.seq) return;
  live.connecting = false;
  if (live.stopped || gen !== S.gen) return;
  let url = typeof ticket?.url === "string" && /^wss?:\/\//.test(ticket.url) ? ticket.url : null;
  if (!url) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    url = `${scheme}://${location.host}/ws?ticket=${encodeURIComponent(ticket?.ticket ?? "")}`;
  }
  let ws;
  try {
    ws = new WebSocket(url);
  } catch (e) {
    connectionLost(`Could not open the connection: ${e.message}`);
    return;
  }
  live.ws = ws;
  ws.onopen = () => {
    send(ws, { action: "subscribe", after: S.lastEventId });
    live.subscribeTimer = setTimeout(() => dropSocket(ws, "No answer to subscribe"), SUBSCRIBE_TIMEOUT_MS);
  };
  ws.onmessage = (m) => onSocketMessage(ws, m);
  ws.onerror = () => { /* a close event follows */ };
  ws.onclose = (e) => {
    if (live.ws !== ws) return;
    live.ws = null;
    connectionLost(e.reason ? `Connection closed: ${e.reason}` : "Connection closed");
  };
}

function send(ws, msg) {
  try {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  } catch { /* the close handler takes over */ }
}

function dropSocket(ws, why) {
  if (live.ws !== ws) return;
  live.ws = null;
  detachAndClose(ws, 4000, "client timeout");
  connectionLost(why);
}

function connectionLost(why) {
  clearLiveTimers();
  if (live.stopped) return;
  const delay = BACKOFF_MS[Math.min(live.attempt, BACKOFF_MS.length - 1)];
  live.attempt += 1;
  setLiveState("disconnected", `${why}. Reconnecting in ${Math.round(delay / 1000)} s…`);
  clearTimeout(live.retryTimer);
  live.retryTimer = setTimeout(connectLive, delay);
}

/** Reconnect now (tab visible again, network back); probe an open socket with a ping. */
function wakeLive() {
  if (live.stopped) return;
  if (live.ws) {
    if (live.ws.readyState === WebSocket.OPEN && !live.pongTimer) {
      const ws = live.ws;
      send(ws, { action: "ping" });
      live.pongTimer = setTimeout(() => dropSocket(ws, "No answer to ping"), 5000);
    }
    return;
  }
  if (!live.connecting) {
    live.attempt = 0;
    connectLive();
  }
}

function onSocketMessage(ws, m) {
  if (live.ws !== ws) return;
  let msg;
  try { msg = JSON.parse(m.data); } catch { return; }
  if (!msg || typeof msg !== "object") return;
  switch (msg.type) {
    case "subscribed": {
      clearTimeout(live.subscribeTimer);
      live.subscribeTimer = null;
      const after = Number.isSafeInteger(msg.after) ? msg.after : null;
      if (after != null && S.lastEventId != null && after < S.lastEventId) {
        // The server's log is behind what we saw (a reset database): start over from it.
        S.lastEventId = after;
        S.pending = [];
        S.recent = [];
        scheduleReconcile();
      }
      const wasLive = live.everLive;
      live.everLive = true;
      live.attempt = 0;
      setLiveState("live");
      clearInterval(live.pingTimer);
      live.pingTimer = setInterval(() => {
        send(ws, { action: "ping" });
        clearTimeout(live.pongTimer);
        live.pongTimer = setTimeout(() => dropSocket(ws, "No answer to ping"), PONG_TIMEOUT_MS);
      }, PING_MS);
      if (wasLive) scheduleReconcile(); // resumed: refresh what events cannot carry
      break;
    }
    case "event":
      receive(msg);
      break;
    case "events":
      if (Array.isArray(msg.items)) for (const ev of msg.items) receive(ev);
      break;
    case "pong":
      clearTimeout(live.pongTimer);
      live.pongTimer = null;
      break;
    case "error":
      console.warn("billwire: live error", msg.code, msg.message);
      if (msg.code === "not_connected") dropSocket(ws, "The server forgot this connection");
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Toasts

const TOASTS = {
  order_created: { title: "New order received!", kind: "order", icon: "+", many: (n) => `${n} new orders` },
  payment_received: { title: "Payment received!", kind: "payment", icon: "✓", many: (n) => `${n} payments` },
  invoice_created: { title: "Invoice created", kind: "invoice", icon: "#", many: (n) => `${n} new invoices` },
  order_updated: { title: "Order status updated!", kind: "update", icon: "↻", many: (n) => `${n} updates` },
};

function eventDetail(ev) {
  const d = ev.data || {};
  const who = d.customer?.name || d.customer?.email || "";
  const amount = d.amount ?? d.total;
  const money = amount != null && d.currency ? formatMoney(amount, d.currency) : "";
  switch (ev.event) {
    case "order_created":
      return [who, money, d.plan_name && `${d.plan_name}${d.billing_cycle ? ` (${d.billing_cycle})` : ""}`];
    case "payment_received":
      return [who, money];
    case "invoice_created":
      return [d.invoice_number, who, money];
    case "order_updated": {
      const what = d.kind === "invoice" ? (d.invoice_number || "Invoice") : "Payment";
      const change = d.previous_status
        ? `${titleCase(statusLabel(d.previous_status, d.kind))} → ${statusLabel(d.status, d.kind)}`
        : statusLabel(d.status, d.kind);
      return [what, change, who, money];
    }
    default:
      return [];
  }
}

function statusLabel(status, kind) {
  if (kind === "invoice") return INVOICE_STATUSES[status] || titleCase(status);
  return PAYMENT_STATUSES[status]?.label || titleCase(status);
}

// A toast of a type shown less than TOAST_GROUP_MS ago absorbs the next ones of that type, so
// a burst gives one toast per type with a count, not a flood (nor a flood of announcements).
const TOAST_GROUP_MS = 1500;
const groupedToasts = new Map(); // type -> {node, count, at}

function eventToast(type, count, last) {
  const t = TOASTS[type];
  if (!t) return;
  const detail = eventDetail(last).filter(Boolean).join(" · ");
  const g = groupedToasts.get(type);
  if (g && g.node.isConnected && !g.node.classList.contains("is-leaving") && Date.now() - g.at < TOAST_GROUP_MS) {
    g.count += count;
    g.at = Date.now();
    const d = g.node.querySelector(".toast__detail");
    if (d) d.textContent = `${t.many(g.count)} · latest: ${detail}`;
    g.node.restartTimer?.();
    return;
  }
  const node = showToast({
    title: t.title,
    detail: count > 1 ? `${t.many(count)} · latest: ${detail}` : detail,
    kind: t.kind,
    icon: t.icon,
    type,
  });
  groupedToasts.set(type, { node, count, at: Date.now() });
}

function showToast({ title, detail = "", kind = "info", icon = "i", type = "", error = false }) {
  const region = $("toasts");
  const node = h("div", {
      class: `toast toast--${kind}`, "data-testid": "toast", "data-type": type || kind,
      role: error ? "alert" : null,
    },
    h("span", { class: "toast__icon", "aria-hidden": "true" }, icon),
    h("div", {},
      h("p", { class: "toast__title", "data-testid": "toast-title" }, title),
      detail ? h("p", { class: "toast__detail", "data-testid": "toast-detail" }, detail) : null),
    h("button", { type: "button", class: "toast__close", "aria-label": "Dismiss notification", onclick: () => dismiss(node) }, "×"),
  );
  region.append(node);
  while (region.children.length > MAX_TOASTS) region.firstElementChild.remove();
  const life = error ? TOAST_MS * 2 : TOAST_MS;
  let timer = setTimeout(() => dismiss(node), life);
  let held = false;
  node.restartTimer = () => {
    clearTimeout(timer);
    if (!held) timer = setTimeout(() => dismiss(node), life);
  };
  // Keep it while the pointer or focus is on it.
  node.addEventListener("mouseenter", () => { held = true; clearTimeout(timer); });
  node.addEventListener("mouseleave", () => { held = false; timer = setTimeout(() => dismiss(node), 2000); });
  node.addEventListener("focusin", () => { held = true; clearTimeout(timer); });
  return node;
}

function dismiss(node) {
  if (!node.isConnected || node.classList.contains("is-leaving")) return;
  node.classList.add("is-leaving");
  setTimeout(() => node.remove(), 200);
}

function clearToasts() {
  groupedToasts.clear();
  $("toasts").replaceChildren();
}

// ---------------------------------------------------------------------------------------------
// Rendering (batched: markDirty schedules one render per frame)

let renderScheduled = false;
let clockTimer = null;

function markDirty(...parts) {
  for (const p of parts) S.dirty.add(p);
  if (renderScheduled) return;
  renderScheduled = true;
  if (document.hidden) setTimeout(render, 250);
  else requestAnimationFrame(render);
}

function render() {
  renderScheduled = false;
  if (!S.stats || !S.me) return;
  const dirty = new Set(S.dirty);
  S.dirty.clear();
  if (dirty.has("stats")) renderStats();
  if (dirty.has("charts")) renderCharts();
  if (dirty.has("orders")) renderOrders();
  if (dirty.has("invoices")) renderInvoices();
  if (dirty.has("top")) renderTopCustomers();
  if (dirty.has("asof")) renderAsOf();
  if (S.newRows.size) {
    const ids = [...S.newRows];
    S.newRows.clear();
    setTimeout(() => {
      for (const id of ids) document.querySelector(`tr[data-id="${CSS.escape(id)}"]`)?.classList.remove("is-new");
    }, 1500);
  }
}

function isAdmin() {
  return S.me?.role === "admin";
}

function renderShell() {
  const me = S.me;
  const admin = isAdmin();
  setText("account-name", me.account?.name || "");
  setText("user-name", me.name || me.email);
  setText("user-sub", `${admin ? "Admin" : "Customer"} · ${me.email}`);
  setText("user-avatar", initials(me.name, me.email));
  $("app-view").classList.toggle("is-customer", !admin);
  $("stat-customers-card").hidden = !admin;
  $("top-customers-panel").hidden = !admin;
  $("place-order-button").hidden = admin;
  const currency = me.account?.currency || "";
  setText("page-sub", admin
    ? `${me.account?.name || "Your account"} · all figures in ${currency}`
    : `Your orders and payments · ${currency}`);
  document.title = `${me.account?.name ? `${me.account.name} · ` : ""}Billwire`;
}

function setStat(id, text, raw) {
  const node = $(id);
  if (!node) return;
  const before = node.dataset.value;
  node.textContent = text;
  node.dataset.value = String(raw);
  if (before !== undefined && before !== String(raw)) {
    const card = node.closest(".stat");
    if (card && id === card.querySelector(".stat__value")?.id) {
      card.classList.remove("is-bumped");
      void card.offsetWidth; // restart the animation
      card.classList.add("is-bumped");
    }
  }
}

function renderStats() {
  const st = S.stats;
  const cur = st.currency;
  setStat("stat-total-revenue", formatMoney(st.total_revenue, cur), st.total_revenue);
  setStat("stat-revenue-24h", formatMoney(st.revenue_24h, cur), st.revenue_24h);
  setStat("stat-total-orders", formatCount(st.total_orders), st.total_orders);
  setStat("stat-orders-24h", formatCount(st.orders_24h), st.orders_24h);
  setStat("stat-payments-24h", formatCount(st.payments_24h), st.payments_24h);
  const pbs = st.payments_by_status;
  const ok = (pbs.succeeded || 0) + (pbs.refunded || 0);
  const attempted = ok + (pbs.failed || 0);
  setStat("stat-success-rate", attempted ? formatPercent(ok / attempted) : "—", attempted ? `${ok}/${attempted}` : "");
  setStat("stat-outstanding", formatMoney(st.outstanding_invoices, cur), st.outstanding_invoices);
  setStat("stat-open-invoices", formatCount(st.invoices_by_status.open || 0), st.invoices_by_status.open || 0);
  setStat("stat-customers", formatCount(st.total_customers), st.total_customers);
  const succeeded = pbs.succeeded || 0;
  const avg = succeeded ? Math.round(st.total_revenue / succeeded) : 0;
  setStat("stat-avg-order", succeeded ? formatMoney(avg, cur) : "—", avg);
}

function renderAsOf() {
  const t = nf("clock", () => new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" }));
  const parts = [];
  if (S.lastEventId != null) parts.push(`Last event #${S.lastEventId}`);
  if (S.fetchedAt) parts.push(`numbers refreshed ${t.format(new Date(S.fetchedAt))}`);
  setText("as-of", parts.join(" · "));
}

function statusBadge(status, kind) {
  return h("span", { class: `badge badge--${String(status || "").replace(/[^a-z_]/g, "")}` }, statusLabel(status, kind));
}

function customerCell(c) {
  return h("td", { class: "col-customer" },
    h("div", { class: "cell-main", title: c?.name || "" }, c?.name || "—"),
    h("div", { class: "cell-sub", title: c?.email || "" }, c?.email || ""));
}

function renderOrders() {
  const body = $("recent-orders");
  const rows = S.payments.map((p) => h("tr", { "data-id": p.id, class: S.newRows.has(p.id) ? "is-new" : null },
    customerCell(p.customer),
    h("td", { class: "col-plan" },
      h("div", { class: "cell-main" }, p.plan_name || "—"),
      h("div", { class: "cell-sub" }, titleCase(p.billing_cycle || ""))),
    h("td", { class: "num" }, formatMoney(p.amount, p.currency)),
    h("td", {}, statusBadge(p.status, "payment")),
    h("td", { class: "col-date" }, h("time", { datetime: p.created_at }, formatDateTime(p.created_at)))));
  body.replaceChildren(...rows);
  $("recent-orders-empty").hidden = rows.length > 0;
}

function renderInvoices() {
  const body = $("recent-invoices");
  const rows = S.invoices.map((i) => h("tr", { "data-id": i.id, class: S.newRows.has(i.id) ? "is-new" : null },
    h("td", {},
      h("div", { class: "cell-main mono" }, i.number || "—"),
      h("div", { class: "cell-sub", title: i.customer?.email || "" },
        isAdmin() ? (i.customer?.name || i.customer?.email || "") : formatDateTime(i.created_at))),
    h("td", { class: "num" }, formatMoney(i.total, i.currency)),
    h("td", {}, statusBadge(i.status, "invoice"))));
  body.replaceChildren(...rows);
  $("recent-invoices-empty").hidden = rows.length > 0;
}

function renderTopCustomers() {
  if (!isAdmin()) return;
  const cur = S.stats.currency;
  const list = S.stats.top_customers;
  const rows = list.map((c) => {
    const spent = c.total_spent || {};
    const others = Object.keys(spent).filter((k) => k !== cur && spent[k]);
    return h("tr", { "data-id": c.id },
      h("td", {},
        h("div", { class: "cell-main", title: c.name || "" }, c.name || c.email || "—"),
        h("div", { class: "cell-sub", title: c.email || "" }, c.email || "")),
      h("td", { class: "num" }, formatCount(c.order_count)),
      h("td", { class: "num" },
        h("div", {}, formatMoney(spent[cur] || 0, cur)),
        others.length ? h("div", { class: "cell-sub" }, others.map((k) => formatMoney(spent[k], k)).join(" · ")) : null));
  });
  $("top-customers").replaceChildren(...rows);
  $("top-customers-empty").hidden = rows.length > 0;
}

// ---------------------------------------------------------------------------------------------
// Charts (Chart.js, vendored)

const charts = { revenue: null, status: null };

function chartLib() {
  return typeof window.Chart === "function" ? window.Chart : null;
}

function setupChartDefaults(Chart) {
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = "#5b6577";
  Chart.defaults.borderColor = "#e9ecf2";
}

function renderCharts() {
  const Chart = chartLib();
  if (!Chart) return;
  const st = S.stats;
  const cur = st.currency;
  const series = st.revenue_by_day;
  const labels = series.map((p) => formatDayLabel(p.date));
  const revenue = series.map((p) => minorToMajorForChart(p.revenue, cur));
  const orders = series.map((p) => p.orders);

  if (!charts.revenue) {
    setupChartDefaults(Chart);
    charts.revenue = new Chart($("chart-revenue"), {
      data: {
        labels,
        datasets: [
          {
            type: "bar", label: "Revenue", data: revenue, yAxisID: "y", order: 2,
            backgroundColor: "rgba(79, 70, 229, .78)", hoverBackgroundColor: "#4338ca",
            borderRadius: 4, maxBarThickness: 22,
          },
          {
            type: "line", label: "Orders", data: orders, yAxisID: "y1", order: 1,
            borderColor: "#0ea5e9", backgroundColor: "#0ea5e9", borderWidth: 2,
            pointRadius: 0, pointHoverRadius: 4, cubicInterpolationMode: "monotone",
          },
        ],
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: { duration: 300 },
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: {
            position: "top", align: "end",
            labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8, sort: (a, b) => a.datasetIndex - b.datasetIndex },
          },
          tooltip: {
            callbacks: {
              title: (items) => {
                const p = S.stats?.revenue_by_day[items[0]?.dataIndex];
                return p ? formatDayLabel(p.date) : "";
              },
              label: (ctx) => {
                const p = S.stats?.revenue_by_day[ctx.dataIndex];
                if (!p) return "";
                return ctx.dataset.yAxisID === "y"
                  ? ` Revenue: ${formatMoney(p.revenue, S.stats.currency)}`
                  : ` Orders: ${formatCount(p.orders)}`;
              },
            },
          },
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          y: {
            beginAtZero: true, position: "left", grace: "5%",
            ticks: {
              maxTicksLimit: 6,
              callback: (v) => nf(`axis:${S.stats?.currency}`, () => new Intl.NumberFormat(undefined, {
                style: "currency", currency: safeCurrency(S.stats?.currency), notation: "compact", maximumFractionDigits: 1,
              })).format(v),
            },
          },
          y1: {
            beginAtZero: true, position: "right", grid: { display: false }, grace: "10%",
            ticks: { precision: 0, maxTicksLimit: 6 },
          },
        },
      },
    });
  } else {
    const c = charts.revenue;
    c.data.labels = labels;
    c.data.datasets[0].data = revenue;
    c.data.datasets[1].data = orders;
    c.update("none");
  }
  const totalRevenue = series.reduce((a, p) => a + p.revenue, 0);
  const totalOrders = series.reduce((a, p) => a + p.orders, 0);
  $("chart-revenue").setAttribute("aria-label",
    `Revenue and orders per day, last 30 days: ${formatMoney(totalRevenue, cur)} revenue from ${formatCount(totalOrders)} orders.`);

  // Payments by status.
  const pbs = st.payments_by_status;
  const keys = [...Object.keys(PAYMENT_STATUSES), ...Object.keys(pbs).filter((k) => !PAYMENT_STATUSES[k])];
  const shown = keys.filter((k) => (pbs[k] || 0) > 0);
  const sLabels = shown.map((k) => statusLabel(k, "payment"));
  const sData = shown.map((k) => pbs[k]);
  const sColors = shown.map((k) => PAYMENT_STATUSES[k]?.color || "#64748b");
  if (!charts.status) {
    charts.status = new Chart($("chart-status"), {
      type: "doughnut",
      plugins: [centerTotal],
      data: { labels: sLabels, datasets: [{ data: sData, backgroundColor: sColors, borderColor: "#fff", borderWidth: 2, hoverOffset: 4 }] },
      options: {
        responsive: true, maintainAspectRatio: false, cutout: "64%", animation: { duration: 300 },
        plugins: {
          legend: { position: "bottom", labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8, padding: 14 } },
          tooltip: {
            callbacks: {
              label: (ctx) => {
                const total = ctx.dataset.data.reduce((a, b) => a + b, 0) || 1;
                return ` ${ctx.label}: ${formatCount(ctx.parsed)} (${formatPercent(ctx.parsed / total)})`;
              },
            },
          },
        },
      },
    });
  } else {
    const c = charts.status;
    c.data.labels = sLabels;
    c.data.datasets[0].data = sData;
    c.data.datasets[0].backgroundColor = sColors;
    c.update("none");
  }
  $("chart-status-empty").hidden = sData.length > 0;
  $("chart-status").setAttribute("aria-label", sData.length
    ? `Payments by status: ${shown.map((k, i) => `${sLabels[i]} ${formatCount(sData[i])}`).join(", ")}.`
    : "Payments by status: no payments yet.");
}

// Draws the total in the doughnut's hole.
const centerTotal = {
  id: "centerTotal",
  afterDraw(chart) {
    const data = chart.data.datasets[0]?.data || [];
    const total = data.reduce((a, b) => a + b, 0);
    if (!total) return;
    const meta = chart.getDatasetMeta(0);
    const arc = meta?.data?.[0];
    if (!arc) return;
    const { ctx } = chart;
    const { x, y } = arc;
    ctx.save();
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillStyle = "#0f172a";
    ctx.font = `700 24px ${Chart.defaults.font.family}`;
    ctx.fillText(formatCount(total), x, y - 8);
    ctx.fillStyle = "#5b6577";
    ctx.font = `500 12px ${Chart.defaults.font.family}`;
    ctx.fillText(total === 1 ? "payment" : "payments", x, y + 14);
    ctx.restore();
  },
};

function destroyCharts() {
  for (const k of Object.keys(charts)) {
    charts[k]?.destroy();
    charts[k] = null;
  }
}

// ---------------------------------------------------------------------------------------------
// Test order (customers)

let plansCache = null;

async function placeTestOrder() {
  const btn = $("place-order-button");
  if (btn.getAttribute("aria-busy") === "true") return;
  setBusy(btn, true);
  try {
    if (!plansCache) {
      const plans = await api("/plans");
      plansCache = Array.isArray(plans?.data) ? plans.data : [];
    }
    const plan = plansCache.find((p) => p.active !== false) || plansCache[0];
    if (!plan) throw new ApiError(0, "no_plan", "No plan is available to order.");
    const intent = await api("/payments/intent", {
      method: "POST",
      body: { plan_id: plan.id, billing_cycle: "monthly", payment_method: "card" },
      idempotencyKey: uuid(),
    });
    const paid = await api(`/payments/${encodeURIComponent(intent.id)}/confirm`, {
      method: "POST", idempotencyKey: uuid(),
    });
    if ($("live-status").dataset.state !== "live") {
      // No live feed to show it: say so here, and refresh the numbers.
      showToast({
        title: paid.status === "succeeded" ? "Order placed" : "Order placed, payment failed",
        detail: `${plan.name} · ${formatMoney(paid.amount, paid.currency)}`,
        kind: paid.status === "succeeded" ? "payment" : "error", icon: "✓",
      });
      scheduleReconcile();
    }
  } catch (e) {
    if (e instanceof Cancelled) return;
    plansCache = null;
    showToast({ title: "Could not place the order", detail: e.message, kind: "error", icon: "!", error: true });
  } finally {
    setBusy(btn, false);
  }
}

function setBusy(btn, busy) {
  btn.disabled = busy;
  btn.setAttribute("aria-busy", busy ? "true" : "false");
}

// ---------------------------------------------------------------------------------------------
// Login form

async function onLogin(event) {
  event.preventDefault();
  const btn = $("login-submit");
  if (btn.disabled) return;
  const email = $("login-email");
  const password = $("login-password");
  const account = $("login-account");
  const accountShown = !$("login-account-field").hidden;
  const error = $("login-error");
  error.hidden = true;
  $("login-notice").hidden = true;
  for (const f of [email, password, account]) f.removeAttribute("aria-invalid");

  const missing = [];
  if (!email.value.trim()) missing.push(email);
  if (!password.value) missing.push(password);
  if (accountShown && !account.value.trim()) missing.push(account);
  if (missing.length) {
    for (const f of missing) f.setAttribute("aria-invalid", "true");
    error.textContent = accountShown && missing.includes(account) && missing.length === 1
      ? "Enter the account's slug." : "Enter your email and password.";
    error.hidden = false;
    missing[0].focus();
    return;
  }

  const body = { email: email.value.trim(), password: password.value };
  if (accountShown && account.value.trim()) body.account = account.value.trim();
  setBusy(btn, true);
  try {
    const tok = await api("/auth/login", { method: "POST", body, auth: false });
    if (!tok?.access_token) throw new ApiError(0, "bad_response", "The server sent no token.");
    saveToken(tok.access_token, tok.expires_in, tok.refresh_token);
    password.value = "";
    await startSession();
  } catch (e) {
    if (e instanceof Cancelled) return;
    if (e.status === 400 && e.code === "account_required") {
      $("login-account-field").hidden = false;
      $("login-notice").textContent = "This email belongs to several accounts. Which one do you want to sign in to?";
      $("login-notice").hidden = false;
      account.setAttribute("aria-invalid", "true");
      account.focus();
    } else {
      error.textContent = e.message;
      error.hidden = false;
      if (e.status === 401) password.select();
    }
  } finally {
    setBusy(btn, false);
  }
}

// ---------------------------------------------------------------------------------------------
// Boot

function boot() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout-button").addEventListener("click", logout);
  $("place-order-button").addEventListener("click", placeTestOrder);
  if (["127.0.0.1", "localhost", "[::1]"].includes(location.hostname)) {
    $("demo-logins").hidden = false;
    for (const b of document.querySelectorAll("[data-demo-email]")) {
      b.addEventListener("click", () => {
        $("login-email").value = b.dataset.demoEmail;
        $("login-password").value = b.dataset.demoPassword;
        $("login-submit").focus();
      });
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    wakeLive();
    if (S.inbox.length) scheduleFlush();
    if (S.dirty.size) markDirty();
  });
  window.addEventListener("online", wakeLive);
  window.addEventListener("pageshow", (e) => { if (e.persisted) wakeLive(); });
  // A chart's size depends on its box; Chart.js follows resizes on its own.

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
    S.token = token;
    S.expiresAt = expires;
    S.refreshToken = refresh;
    startSession();
  } else {
    clearToken();
    showLogin({ notice: token ? "Session expired, please log in again." : "" });
  }
}

boot();

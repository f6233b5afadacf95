// Dashboard state and the reducers that apply events to it. No DOM here: reducers note what
// changed in S.dirty / S.newRows and render.js draws it.
//
// The numbers: GET /dashboard/stats is a snapshot as of event `as_of_event` (S.base). What
// is shown (S.stats) is that snapshot plus the events newer than it (S.pending), so a
// refetched snapshot can replace the base at any time without counting an event twice or
// dropping one.

import { DAY_MS, utcDay, within24h } from "./format.js";

export const RECENT_ORDERS = 10;
export const RECENT_INVOICES = 5;

const KEEP_RECENT_EVENTS = 200;
const KEEP_PAYMENT_TIMES = 5000;

export const S = {
  me: null,
  base: null,          // the last fetched stats, as the server sent them
  stats: null,         // what is shown: base + the events newer than base.as_of_event
  pending: [],         // events applied on top of base (id > base.as_of_event), id order
  recent: [],          // the last events, re-applied to refetched lists
  lastEventId: null,   // the newest event id seen: drop anything <= it, resume after it
  payments: [],
  invoices: [],
  paymentTimes: new Map(), // payment id -> {created_at, succeeded_at}: for refunds and day buckets
  dirty: new Set(),    // parts of the page to redraw
  newRows: new Set(),  // ids of rows to highlight
  loaded: false,
  fetchedAt: 0,        // when the numbers were last fetched
};

export function resetState() {
  Object.assign(S, {
    me: null, base: null, stats: null, pending: [], recent: [], lastEventId: null,
    payments: [], invoices: [], loaded: false, fetchedAt: 0,
  });
  S.paymentTimes.clear();
  S.dirty.clear();
  S.newRows.clear();
}

export function isAdmin() {
  return S.me?.role === "admin";
}

/** A fresh snapshot of the numbers becomes the base; pending events above it stay applied. */
export function setBase(stats) {
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

/** Fresh recent orders/invoices (list answers of the API, `{data: [...]}`). */
export function setLists(payments, invoices) {
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

/**
 * Applies a batch of new events (ids above S.lastEventId when they were received, in id
 * order) to the numbers and the lists.
 */
export function applyEvents(batch) {
  const asOf = S.base?.as_of_event ?? 0;
  for (const ev of batch) {
    if (ev.id > asOf) {
      applyToStats(S.stats, ev);
      S.pending.push(ev);
    }
    applyToLists(ev, true);
    S.recent.push(ev);
  }
  if (S.recent.length > KEEP_RECENT_EVENTS) S.recent.splice(0, S.recent.length - KEEP_RECENT_EVENTS);
  sortTrim();
}

/** The server's event log is behind what we saw (a reset database): start over from it. */
export function rewind(after) {
  S.lastEventId = after;
  S.pending = [];
  S.recent = [];
}

function rememberPayment(p) {
  if (!p || !p.id) return;
  const t = S.paymentTimes.get(p.id) || {};
  if (p.created_at) t.created_at = p.created_at;
  if (p.status === "succeeded" && p.updated_at && !t.succeeded_at) t.succeeded_at = p.updated_at;
  S.paymentTimes.set(p.id, t);
  if (S.paymentTimes.size > KEEP_PAYMENT_TIMES) S.paymentTimes.delete(S.paymentTimes.keys().next().value);
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

/** Applies one event to a stats object (mutates it). */
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

/** Applies one event to the recent orders/invoices lists; `fresh` rows get highlighted. */
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

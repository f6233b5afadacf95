// The feed: what happens to live events between the socket and the page.
//
//   1. GET /dashboard/stats gives the numbers as of event `as_of_event` (one snapshot).
//   2. The socket subscribes after the last event id seen, so every event it brings is a
//      change the numbers do not include yet. receive() drops ids already seen (delivery is
//      at least once) and queues the rest; they are applied once per animation frame, so a
//      burst of thousands costs one DOM/chart update per frame.
//   3. A throttled refetch (at most every RECONCILE_MS while events arrive) replaces the base
//      numbers; events newer than the new snapshot are re-applied on top (state.js), so
//      nothing is counted twice or dropped.
//
// hold() freezes the page while real-time updates are paused: nothing queued is applied and
// nothing is refetched until release().

import { api, Cancelled } from "./api.js";
import { session } from "./session.js";
import { RECENT_INVOICES, RECENT_ORDERS, S, applyEvents, rewind, setBase, setLists } from "./state.js";
import { markDirty } from "./render.js";
import { eventToasts } from "./toasts.js";

const RECONCILE_MS = 2500;
const MIN_RECONCILE_WAIT_MS = 1000;

let inbox = [];          // events received, not yet applied
let flushScheduled = false;
let held = false;
let reconcileTimer = null;
let reconcileRunning = false;
let reconcileAgain = false;
let reconcileOnRelease = false;
let lastReconcile = 0;

/** The numbers and the recent lists, fetched together. */
export async function fetchSnapshot() {
  const [stats, payments, invoices] = await Promise.all([
    api("/dashboard/stats"),
    api(`/payments?limit=${RECENT_ORDERS}`),
    api(`/invoices?limit=${RECENT_INVOICES}`),
  ]);
  return { stats, payments, invoices };
}

export function applySnapshot({ stats, payments, invoices }) {
  setBase(stats);
  S.fetchedAt = Date.now();
  if (S.lastEventId == null) S.lastEventId = stats.as_of_event ?? 0;
  setLists(payments, invoices);
  markDirty("stats", "charts", "orders", "invoices", "top", "asof");
}

/** One event from the socket. */
export function receive(ev) {
  if (!ev || typeof ev !== "object" || !Number.isSafeInteger(ev.id)) return;
  if (S.lastEventId != null && ev.id <= S.lastEventId) return; // at-least-once delivery
  S.lastEventId = ev.id;
  inbox.push(ev);
  scheduleFlush();
}

/** The socket subscribed after `after`; `refresh` asks for a refetch (after a gap). */
export function subscribed(after, refresh) {
  if (after != null && S.lastEventId != null && after < S.lastEventId) {
    // The server's log is behind what we saw (a reset database): start over from it.
    rewind(after);
    scheduleReconcile();
  }
  if (refresh) scheduleReconcile(); // what events cannot carry (e.g. new top customers)
}

function scheduleFlush() {
  if (flushScheduled || held) return;
  flushScheduled = true;
  // Animation frames stop in background tabs; a timer keeps the numbers moving there.
  if (document.hidden) setTimeout(flush, 250);
  else requestAnimationFrame(flush);
}

/** Apply what is queued now (if anything is waiting for a frame). */
export function kick() {
  if (inbox.length) scheduleFlush();
}

function flush() {
  flushScheduled = false;
  if (!S.base || held) return;
  const batch = inbox;
  inbox = [];
  if (!batch.length) return;
  applyEvents(batch);
  markDirty("stats", "charts", "top", "asof");
  eventToasts(batch);
  scheduleReconcile();
}

/** Pause: apply what was received up to now, then freeze the numbers and lists. */
export function hold() {
  flush();
  held = true;
  if (reconcileTimer) {
    clearTimeout(reconcileTimer);
    reconcileTimer = null;
    reconcileOnRelease = true;
  }
}

/** Resume: apply anything queued and catch up on the refetch put off while held. */
export function release() {
  held = false;
  kick();
  if (reconcileOnRelease) {
    reconcileOnRelease = false;
    scheduleReconcile();
  }
}

/** One refetch at most every RECONCILE_MS while events keep arriving (throttle, trailing). */
export function scheduleReconcile() {
  if (held) {
    reconcileOnRelease = true;
    return;
  }
  if (reconcileRunning) {
    reconcileAgain = true;
    return;
  }
  if (reconcileTimer) return;
  const wait = Math.max(RECONCILE_MS - (Date.now() - lastReconcile), MIN_RECONCILE_WAIT_MS);
  reconcileTimer = setTimeout(reconcile, wait);
}

async function reconcile() {
  reconcileTimer = null;
  if (!session.token || !S.base || held) return;
  const gen = session.gen;
  reconcileRunning = true;
  reconcileAgain = false;
  lastReconcile = Date.now();
  try {
    const snap = await fetchSnapshot();
    if (gen !== session.gen) return;
    if (held) {
      // Paused meanwhile: the page stays as it was; refetch on resume.
      reconcileOnRelease = true;
      return;
    }
    // If the snapshot is ahead of the stream, the events in between still arrive (toasts,
    // lists) but are not counted again: they are <= as_of_event.
    applySnapshot(snap);
  } catch (e) {
    if (e instanceof Cancelled || gen !== session.gen) return;
    console.warn("billwire: refresh failed", e);
    reconcileAgain = true; // try again later; the live numbers stand meanwhile
  } finally {
    if (gen === session.gen) {
      reconcileRunning = false;
      if (reconcileAgain) scheduleReconcile();
    }
  }
}

/** Forget everything of the session that ended (the pause stays as it is). */
export function reset() {
  inbox = [];
  clearTimeout(reconcileTimer);
  reconcileTimer = null;
  reconcileRunning = false;
  reconcileAgain = false;
  reconcileOnRelease = false;
}

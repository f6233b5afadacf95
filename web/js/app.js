// Billwire dashboard, entry module (plain ES modules, no build step):
//
//   format.js   money, counts, dates, status labels (pure)
//   dom.js      $, h (element builder), setText, setBusy
//   api.js      fetch wrapper: errors, timeout, one renewal + retry on 401
//   session.js  tokens in sessionStorage, silent renewal, session generation
//   login.js    the login view
//   state.js    dashboard state and the reducers applying events to it
//   live.js     the WebSocket: ticket, subscribe after the last id, pings, backoff
//   feed.js     events between socket and page: dedupe, per-frame batches, refetches, hold
//   realtime.js the real-time switch, remembered in localStorage
//   render.js   numbers, tables, header, badge;  charts.js  Chart.js;  toasts.js  toasts
//
// This module starts and ends sessions, loads the dashboard and decides what the real-time
// switch does: pausing closes the socket; resuming subscribes again after the last event id
// shown, so the server replays exactly the events of the pause from its log.

import { $, h, setBusy, setText } from "./dom.js";
import { api, ApiError, Cancelled } from "./api.js";
import { endSession, logoutOnServer, onSessionExpired, restoreSession, scheduleRenewal, session } from "./session.js";
import { initLogin, showLogin } from "./login.js";
import { S, resetState } from "./state.js";
import * as feed from "./feed.js";
import { LiveConnection } from "./live.js";
import { initRealtimeSwitch, realtimeOn } from "./realtime.js";
import { markDirty, renderLiveBadge, renderPending, renderShell } from "./render.js";
import { destroyCharts } from "./charts.js";
import { clearToasts, showToast } from "./toasts.js";
import { formatMoney, uuid } from "./format.js";

const CLOCK_MS = 30_000; // re-render "5 min ago" and the like

let clockTimer = null;
let refreshOnSubscribe = false; // resumed after a pause: refetch once subscribed

const live = new LiveConnection({
  ticket: () => api("/events/ticket", { method: "POST" }), // single use: one per connect
  cursor: () => S.lastEventId,
  onEvent: feed.receive,
  // An event too large for one WebSocket message arrives as a marker: fetch it by id.
  fetchEvent: async (id) => {
    const page = await api(`/events?after=${id - 1}&limit=1`);
    return page?.data?.find((e) => e.id === id) ?? null;
  },
  onSubscribed: (after, resumed) => {
    feed.subscribed(after, resumed || refreshOnSubscribe);
    refreshOnSubscribe = false;
  },
  onState: renderLiveBadge,
  isCancelled: (e) => e instanceof Cancelled,
});

// ---------------------------------------------------------------------------------------------
// Session

async function startSession() {
  const gen = session.gen;
  scheduleRenewal();
  $("login-view").hidden = true;
  $("boot").hidden = false;
  renderLiveBadge(realtimeOn() ? "connecting" : "paused", realtimeOn() ? "" : pausedDetail());
  let me;
  try {
    me = await api("/auth/me");
  } catch (e) {
    if (e instanceof Cancelled) return;
    endDashboard();
    showLogin({ error: e.message });
    return;
  }
  if (gen !== session.gen) return;
  S.me = me;
  renderShell();
  $("boot").hidden = true;
  $("app-view").hidden = false;
  $("main").focus({ preventScroll: true });
  clockTimer = setInterval(() => markDirty("orders", "invoices", "asof"), CLOCK_MS);
  await initialLoad(gen);
}

async function initialLoad(gen) {
  $("load-error").hidden = true;
  try {
    const snapshot = await feed.fetchSnapshot();
    if (gen !== session.gen) return;
    feed.applySnapshot(snapshot); // S.lastEventId = the snapshot's as_of_event
    S.loaded = true;
    if (realtimeOn()) live.start();
  } catch (e) {
    if (e instanceof Cancelled || gen !== session.gen) return;
    const box = $("load-error");
    box.replaceChildren(
      `Could not load the dashboard: ${e.message} `,
      h("button", { type: "button", class: "link-btn", onclick: () => initialLoad(session.gen) }, "Try again"),
    );
    box.hidden = false;
    setText("page-sub", "Not loaded");
  }
}

/** Ends the session and forgets everything the page knew of it. */
function endDashboard() {
  endSession();
  live.stop("logout");
  refreshOnSubscribe = false;
  renderLiveBadge("connecting");
  feed.reset();
  clearInterval(clockTimer);
  destroyCharts();
  clearToasts();
  resetState();
}

function logout() {
  logoutOnServer();
  endDashboard();
  showLogin();
}

onSessionExpired(() => {
  endDashboard();
  showLogin({ notice: "Session expired, please log in again." });
});

// ---------------------------------------------------------------------------------------------
// The real-time switch

function pausedDetail() {
  return "Real-time updates are paused; resume to catch up on what happened meanwhile";
}

/**
 * Paused: the socket is closed and the page stays as it is. The server keeps every event in
 * its log, so on resume the socket subscribes after the last id shown and gets exactly the
 * events of the pause (ids are deduplicated anyway); nothing is buffered in the page.
 */
function setRealtime(on) {
  if (!on) {
    feed.hold(); // apply what already arrived, then freeze
    live.stop("paused");
    refreshOnSubscribe = false;
    renderLiveBadge("paused", pausedDetail());
    return;
  }
  feed.release();
  if (S.loaded) {
    refreshOnSubscribe = true;
    live.start();
  } else {
    renderLiveBadge("connecting"); // initialLoad goes live when it is done
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
    if (!live.running || live.state !== "live") {
      // No live feed to show it: say so here, and refresh the numbers (on resume if paused).
      const detail = [plan.name, formatMoney(paid.amount, paid.currency)];
      if (!realtimeOn()) detail.push("shown when real-time updates resume");
      showToast({
        title: paid.status === "succeeded" ? "Order placed" : "Order placed, payment failed",
        detail: detail.join(" · "),
        kind: paid.status === "succeeded" ? "payment" : "error", icon: "✓",
      });
      feed.scheduleReconcile();
    }
  } catch (e) {
    if (e instanceof Cancelled) return;
    plansCache = null;
    showToast({ title: "Could not place the order", detail: e.message, kind: "error", icon: "!", error: true });
  } finally {
    setBusy(btn, false);
  }
}

// ---------------------------------------------------------------------------------------------
// Boot

function boot() {
  initLogin(startSession);
  $("logout-button").addEventListener("click", logout);
  $("place-order-button").addEventListener("click", placeTestOrder);
  if (!realtimeOn()) feed.hold();
  initRealtimeSwitch(setRealtime);

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    live.wake();
    feed.kick();
    renderPending();
  });
  window.addEventListener("online", () => live.wake());
  window.addEventListener("pageshow", (e) => { if (e.persisted) live.wake(); });
  // A chart's size depends on its box; Chart.js follows resizes on its own.

  const restored = restoreSession();
  if (restored === "restored") startSession();
  else showLogin({ notice: restored === "expired" ? "Session expired, please log in again." : "" });
}

boot();

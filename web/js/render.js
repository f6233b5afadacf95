// Rendering: the numbers, tables, header, live badge and real-time switch. Redraws are
// batched: markDirty(...parts) schedules one render per animation frame (a timer in
// background tabs, where frames stop).

import { $, h, setText } from "./dom.js";
import { formatClock, formatCount, formatDateTime, formatMoney, formatPercent, initials, statusLabel, titleCase } from "./format.js";
import { S, isAdmin } from "./state.js";
import { renderCharts } from "./charts.js";

const HIGHLIGHT_MS = 1500;

let renderScheduled = false;

export function markDirty(...parts) {
  for (const p of parts) S.dirty.add(p);
  if (renderScheduled) return;
  renderScheduled = true;
  if (document.hidden) setTimeout(render, 250);
  else requestAnimationFrame(render);
}

/** Redraw what was marked, if a tab came back with marks waiting. */
export function renderPending() {
  if (S.dirty.size) markDirty();
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
    }, HIGHLIGHT_MS);
  }
}

const LIVE_TEXT = { live: "Live", connecting: "Connecting…", disconnected: "Disconnected", paused: "Paused" };

/** The badge: "live" | "connecting" | "disconnected" | "paused". */
export function renderLiveBadge(state, detail = "") {
  const el = $("live-status");
  el.dataset.state = state;
  const text = LIVE_TEXT[state] || LIVE_TEXT.disconnected;
  setText("live-status-text", text);
  el.title = detail || text;
}

/** The real-time switch: on = live updates applied as they come. */
export function renderRealtimeSwitch(on) {
  const el = $("live-toggle");
  el.setAttribute("aria-checked", on ? "true" : "false");
  el.title = on ? "Pause real-time updates" : "Resume real-time updates";
}

export function renderShell() {
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
  const parts = [];
  if (S.lastEventId != null) parts.push(`Last event #${S.lastEventId}`);
  if (S.fetchedAt) parts.push(`numbers refreshed ${formatClock(S.fetchedAt)}`);
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

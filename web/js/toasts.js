// Toasts: one per event type, grouped during bursts; errors stay longer and use role=alert.

import { $, h } from "./dom.js";
import { formatMoney, statusLabel, titleCase } from "./format.js";

const TOAST_MS = 5000;
const MAX_TOASTS = 5;
// A toast of a type shown less than TOAST_GROUP_MS ago absorbs the next ones of that type, so
// a burst gives one toast per type with a count, not a flood (nor a flood of announcements).
const TOAST_GROUP_MS = 1500;

const TOASTS = {
  order_created: { title: "New order received!", kind: "order", icon: "+", many: (n) => `${n} new orders` },
  payment_received: { title: "Payment received!", kind: "payment", icon: "✓", many: (n) => `${n} payments` },
  invoice_created: { title: "Invoice created", kind: "invoice", icon: "#", many: (n) => `${n} new invoices` },
  order_updated: { title: "Order status updated!", kind: "update", icon: "↻", many: (n) => `${n} updates` },
};

const groupedToasts = new Map(); // type -> {node, count, at}

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

/** Toasts for a batch of events: one per type, counting the events of that type. */
export function eventToasts(batch) {
  const groups = new Map();
  for (const ev of batch) {
    const g = groups.get(ev.event);
    if (g) { g.count += 1; g.last = ev; } else groups.set(ev.event, { count: 1, last: ev });
  }
  for (const [type, g] of groups) eventToast(type, g.count, g.last);
}

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

export function showToast({ title, detail = "", kind = "info", icon = "i", type = "", error = false }) {
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

export function clearToasts() {
  groupedToasts.clear();
  $("toasts").replaceChildren();
}

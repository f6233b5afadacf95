// Formatting and small pure helpers. Money is integer minor units; it is only turned into a
// decimal string for Intl.NumberFormat (exact), never into a float for arithmetic.

export const DAY_MS = 86_400_000;

export const PAYMENT_STATUSES = {
  succeeded: { label: "Succeeded", color: "#16a34a" },
  requires_confirmation: { label: "Pending", color: "#f59e0b" },
  failed: { label: "Failed", color: "#dc2626" },
  refunded: { label: "Refunded", color: "#7c3aed" },
  canceled: { label: "Canceled", color: "#94a3b8" },
};
export const INVOICE_STATUSES = {
  draft: "Draft", open: "Open", paid: "Paid", void: "Void", uncollectible: "Uncollectible",
};

const formatters = new Map();

/** One cached Intl formatter per key (they are costly to build). */
export function nf(key, make) {
  let f = formatters.get(key);
  if (!f) {
    f = make();
    formatters.set(key, f);
  }
  return f;
}

export function safeCurrency(currency) {
  return typeof currency === "string" && /^[A-Za-z]{3}$/.test(currency) ? currency.toUpperCase() : "USD";
}

function fractionDigits(currency) {
  const c = safeCurrency(currency);
  return nf(`digits:${c}`, () => new Intl.NumberFormat("en", { style: "currency", currency: c }))
    .resolvedOptions().maximumFractionDigits;
}

/** 123456 minor units with 2 digits -> "1234.56"; exact for any safe integer. */
export function minorToDecimal(minor, digits) {
  const n = Math.trunc(Number(minor) || 0);
  const neg = n < 0;
  let s = String(Math.abs(n));
  if (digits > 0) {
    s = s.padStart(digits + 1, "0");
    s = `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  }
  return neg ? `-${s}` : s;
}

export function formatMoney(minor, currency, { compact = false } = {}) {
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
export function minorToMajorForChart(minor, currency) {
  return Number(minorToDecimal(minor, fractionDigits(currency)));
}

export function formatCount(n) {
  return nf("count", () => new Intl.NumberFormat()).format(Number(n) || 0);
}

export function formatPercent(ratio) {
  return nf("pct", () => new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 0 }))
    .format(ratio);
}

export function formatDateTime(iso) {
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

export function formatClock(ms) {
  return nf("clock", () => new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" }))
    .format(new Date(ms));
}

export function formatDayLabel(isoDate) {
  // "2026-11-01" is a UTC calendar day; format it as such.
  const d = new Date(`${isoDate}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return isoDate;
  return nf("day", () => new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" }))
    .format(d);
}

/** The UTC calendar day ("2026-11-01") of an ISO time, or of now. */
export function utcDay(iso) {
  const d = iso ? new Date(iso) : new Date();
  return Number.isNaN(d.getTime()) ? new Date().toISOString().slice(0, 10) : d.toISOString().slice(0, 10);
}

export function within24h(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? true : Date.now() - t < DAY_MS;
}

export function titleCase(s) {
  return String(s || "").replace(/_/g, " ").replace(/^\w/, (c) => c.toUpperCase());
}

export function statusLabel(status, kind) {
  if (kind === "invoice") return INVOICE_STATUSES[status] || titleCase(status);
  return PAYMENT_STATUSES[status]?.label || titleCase(status);
}

export function initials(name, email) {
  const src = (name || email || "?").trim();
  const parts = src.split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : src.slice(0, 2);
  return letters.toUpperCase();
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

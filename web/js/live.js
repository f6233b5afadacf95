// The live connection: a single-use ticket, the WebSocket, `{"action":"subscribe","after":N}`
// with the last event id seen, pings, and reconnects with jittered exponential backoff.
// It knows nothing about the page: events and state changes go to the handlers given.
//
// Protocol: the server answers `{"type":"subscribed","after":N}`, then sends every event
// after N as `{"type":"event",...}` or `{"type":"events","items":[...]}` (at least once:
// the receiver drops ids it has seen). `{"action":"ping"}` is answered with `{"type":"pong"}`.
// An event too large for one message comes as `{"type":"oversized","id":N,"event":"..."}`:
// it is fetched by id through `fetchEvent` and handed on like any other.

// Keeps the socket open: API Gateway closes a WebSocket after 10 minutes without traffic, and
// NATs and proxies on the way may drop idle TCP sooner. Each ping is a $default invocation,
// a database write and two billed messages (README, "Cost"), so not more often than this.
const PING_MS = 240_000;
const PONG_TIMEOUT_MS = 10_000;
const WAKE_PONG_TIMEOUT_MS = 5000;
const SUBSCRIBE_TIMEOUT_MS = 10_000;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 30_000;

/**
 * The wait before reconnect attempt `attempt` (0-based): exponential, capped, and jittered
 * over its upper half so that many dashboards dropped at once do not come back at once.
 */
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export class LiveConnection {
  /**
   * @param {object} o
   * @param {() => Promise<{ticket?: string, url?: string}>} o.ticket  POST /events/ticket
   * @param {() => number|null} o.cursor  the last event id seen (subscribe after it)
   * @param {(ev: object) => void} o.onEvent
   * @param {(id: number) => Promise<object|null>} [o.fetchEvent]  GET /events for an oversized one
   * @param {(after: number|null, resumed: boolean) => void} o.onSubscribed
   * @param {(state: "connecting"|"live"|"disconnected", detail: string) => void} o.onState
   * @param {(e: unknown) => boolean} [o.isCancelled]  errors that end the attempt quietly
   */
  constructor({ ticket, cursor, onEvent, fetchEvent = async () => null, onSubscribed, onState, isCancelled = () => false }) {
    Object.assign(this, { ticket, cursor, onEvent, fetchEvent, onSubscribed, onStateChange: onState, isCancelled });
    this.ws = null;
    this.stopped = true;
    this.attempt = 0;
    this.everLive = false;   // subscribed at least once since start()
    this.connecting = false; // a ticket request is in flight
    this.seq = 0;            // identifies the current connect attempt
    this.state = "stopped"; // then "connecting" | "live" | "disconnected"
    this.retryTimer = this.pingTimer = this.pongTimer = this.subscribeTimer = null;
  }

  get running() {
    return !this.stopped;
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    this.everLive = false;
    this.setState("connecting", "Connecting to real-time updates…");
    this.connect();
  }

  /** Closes the socket and cancels any attempt in flight. Says nothing: the caller does. */
  stop(reason = "stopped") {
    this.stopped = true;
    this.clearTimers();
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) detachAndClose(ws, 1000, reason);
    this.connecting = false;
    this.seq += 1;
    this.state = "stopped";
  }

  /** Reconnect now (tab visible again, network back); probe an open socket with a ping. */
  wake() {
    if (this.stopped) return;
    if (this.ws) {
      if (this.ws.readyState === WebSocket.OPEN && !this.pongTimer) {
        const ws = this.ws;
        send(ws, { action: "ping" });
        this.pongTimer = setTimeout(() => this.drop(ws, "No answer to ping"), WAKE_PONG_TIMEOUT_MS);
      }
      return;
    }
    if (!this.connecting) {
      this.attempt = 0;
      this.connect();
    }
  }

  setState(state, detail = "") {
    this.state = state;
    this.onStateChange(state, detail);
  }

  clearTimers() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.subscribeTimer);
    this.pingTimer = this.pongTimer = this.subscribeTimer = null;
  }

  async connect() {
    if (this.stopped || this.ws || this.connecting) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connecting = true;
    const seq = ++this.seq;
    if (!this.everLive) this.setState("connecting", "Connecting to real-time updates…");
    let ticket;
    try {
      ticket = await this.ticket(); // single use: one per connect
    } catch (e) {
      if (seq !== this.seq) return; // a newer attempt (or a stop) took over
      this.connecting = false;
      if (this.isCancelled(e)) return;
      this.lost(`Could not get a connection ticket: ${e.message}`);
      return;
    }
    if (seq !== this.seq) return;
    this.connecting = false;
    if (this.stopped) return;
    let url = typeof ticket?.url === "string" && /^wss?:\/\//.test(ticket.url) ? ticket.url : null;
    if (!url) {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      url = `${scheme}://${location.host}/ws?ticket=${encodeURIComponent(ticket?.ticket ?? "")}`;
    }
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this.lost(`Could not open the connection: ${e.message}`);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      send(ws, { action: "subscribe", after: this.cursor() });
      this.subscribeTimer = setTimeout(() => this.drop(ws, "No answer to subscribe"), SUBSCRIBE_TIMEOUT_MS);
    };
    ws.onmessage = (m) => this.message(ws, m);
    ws.onerror = () => { /* a close event follows */ };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.lost(e.reason ? `Connection closed: ${e.reason}` : "Connection closed");
    };
  }

  drop(ws, why) {
    if (this.ws !== ws) return;
    this.ws = null;
    detachAndClose(ws, 4000, "client timeout");
    this.lost(why);
  }

  lost(why) {
    this.clearTimers();
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.setState("disconnected", `${why}. Reconnecting in ${Math.max(1, Math.round(delay / 1000))} s…`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  message(ws, m) {
    if (this.ws !== ws) return;
    let msg;
    try { msg = JSON.parse(m.data); } catch { return; }
    if (!msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "subscribed": {
        clearTimeout(this.subscribeTimer);
        this.subscribeTimer = null;
        const resumed = this.everLive;
        this.everLive = true;
        this.attempt = 0;
        this.setState("live", "Receiving real-time updates");
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => {
          send(ws, { action: "ping" });
          clearTimeout(this.pongTimer);
          this.pongTimer = setTimeout(() => this.drop(ws, "No answer to ping"), PONG_TIMEOUT_MS);
        }, PING_MS);
        this.onSubscribed(Number.isSafeInteger(msg.after) ? msg.after : null, resumed);
        break;
      }
      case "event":
        this.onEvent(msg);
        break;
      case "events":
        if (Array.isArray(msg.items)) for (const ev of msg.items) this.onEvent(ev);
        break;
      case "oversized":
        if (Number.isSafeInteger(msg.id)) {
          this.fetchEvent(msg.id)
            .then((ev) => { if (ev && this.ws === ws) this.onEvent(ev); })
            .catch((e) => console.warn("billwire: could not fetch oversized event", msg.id, e));
        }
        break;
      case "pong":
        clearTimeout(this.pongTimer);
        this.pongTimer = null;
        break;
      case "error":
        console.warn("billwire: live error", msg.code, msg.message);
        if (msg.code === "not_connected") this.drop(ws, "The server forgot this connection");
        break;
      default:
        break;
    }
  }
}

function send(ws, msg) {
  try {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  } catch { /* the close handler takes over */ }
}

function detachAndClose(ws, code, reason) {
  ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
  try { ws.close(code, reason); } catch { /* already closed */ }
}

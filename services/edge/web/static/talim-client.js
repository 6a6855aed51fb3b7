// talim-client.js — browser/Node client for the Talim Realtime native JSON
// WebSocket protocol (client protocol v1). ES module, no build step, no
// runtime dependencies. Types: talim-client.d.ts.
//
//   import { TalimClient } from "./talim-client.js";
//   const client = new TalimClient({ url: "wss://host/ws", getToken: async () => jwt });
//   client.on("chat-message", ({ message }) => render(message));
//   await client.connect();
//   await client.joinRoom("room-123");
//   await client.sendMessage("room-123", "Hello!");

/** @typedef {"connecting"|"connected"|"disconnected"|"error"} TalimStatus */
/** @typedef {"connection"|"chat"|"notification"|"reconnect"|"presence"} DebugCategory */

/**
 * @typedef {Object} ChatMessage
 * @property {string} id
 * @property {string} roomId
 * @property {number} seq
 * @property {string} senderId
 * @property {string} [senderName]
 * @property {string} type
 * @property {string} content
 * @property {string} [clientMsgId]
 * @property {string} createdAt
 * @property {string|null} [editedAt]
 * @property {boolean} [deleted]
 */

/**
 * @typedef {Object} ReconnectOptions
 * @property {number} [initialMs=500]
 * @property {number} [maxMs=15000]
 * @property {number} [factor=2]
 * @property {number} [maxAttempts=Infinity]
 */

/**
 * @typedef {Object} TalimClientOptions
 * @property {string} url  ws(s)://host/ws (http(s):// is converted; a bare origin gets /ws)
 * @property {string} [token]  static JWT
 * @property {() => (string|Promise<string>)} [getToken]  called on every (re)connect and before `exp`
 * @property {Record<string,string>} [query]  extra query parameters (dev mode: `{userId}`)
 * @property {any} [WebSocket]  WebSocket constructor (default globalThis.WebSocket; in Node pass `ws`)
 * @property {ReconnectOptions|false} [reconnect]
 * @property {number} [stableAfterMs=10000]  backoff resets after a connection stayed up this long
 * @property {boolean|DebugCategory[]} [debug=false]
 * @property {number} [commandTimeoutMs=10000]
 * @property {number} [outboxLimit=500]
 * @property {number} [refreshLeadMs=60000]  refresh the token this long before `exp` (at most half its remaining life)
 * @property {{log: Function, warn?: Function, error?: Function}} [logger=console]
 * @property {() => number} [random=Math.random]  jitter source (tests)
 */

const DEBUG_PREFIX = {
  connection: "🔌",
  chat: "📨",
  notification: "📡",
  reconnect: "🔄",
  presence: "👥",
};

/** Close codes after which the client never reconnects by itself. */
const NO_RECONNECT_CODES = new Set([1008]);
const TOKEN_EXPIRED_CODE = 4001;
const MAX_HISTORY_LIMIT = 200;
const SEEN_IDS_LIMIT = 5000;

/** Error carried by rejected command promises. */
export class TalimError extends Error {
  /**
   * @param {string} code
   * @param {string} [message]
   * @param {{retryAfterMs?: number, data?: any, event?: string}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = "TalimError";
    /** @type {string} */
    this.code = code;
    /** @type {number|undefined} */
    this.retryAfterMs = extra.retryAfterMs;
    /** @type {any} */
    this.data = extra.data;
    /** @type {string|undefined} */
    this.event = extra.event;
  }
}

/**
 * Decode a JWT payload without verifying it. Returns null when it is not a JWT.
 * @param {string} token
 * @returns {Record<string, any>|null}
 */
export function decodeJwtPayload(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length < 2) return null;
  try {
    let b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    let json;
    if (typeof atob === "function") {
      const bin = atob(b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      json = new TextDecoder().decode(bytes);
    } else {
      json = /** @type {any} */ (globalThis).Buffer.from(b64, "base64").toString("utf8");
    }
    const payload = JSON.parse(json);
    return payload && typeof payload === "object" ? payload : null;
  } catch {
    return null;
  }
}

/**
 * Full-jitter exponential backoff: random(0, min(maxMs, initialMs * factor^attempt)).
 * @param {number} attempt  0 for the first retry
 * @param {{initialMs?: number, maxMs?: number, factor?: number}} [opts]
 * @param {() => number} [random]
 */
export function computeBackoff(attempt, opts = {}, random = Math.random) {
  const initialMs = opts.initialMs ?? 500;
  const maxMs = opts.maxMs ?? 15000;
  const factor = opts.factor ?? 2;
  const cap = Math.min(maxMs, initialMs * Math.pow(factor, Math.max(0, attempt)));
  return Math.floor(random() * cap);
}

/** RFC 4122 v4 id; crypto.randomUUID is missing in insecure browser contexts. */
export function uuid() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Normalise a user-supplied endpoint to a ws(s) URL.
 * @param {string} url
 */
export function toWebSocketUrl(url) {
  let u = String(url);
  if (/^http(s?):\/\//i.test(u)) u = u.replace(/^http/i, "ws");
  if (/^wss?:\/\/[^/]+\/?$/i.test(u)) u = u.replace(/\/?$/, "/ws");
  return u;
}

/**
 * @template T
 * @returns {{promise: Promise<T>, resolve: (v: T) => void, reject: (e: any) => void}}
 */
function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // @ts-ignore
  return { promise, resolve, reject };
}

/**
 * Per-room resume state.
 * @typedef {Object} RoomState
 * @property {string} roomId
 * @property {boolean} wanted       the app asked to be in this room
 * @property {number|undefined} limit
 * @property {number|null} lastSeq  highest contiguous seq delivered to the app (null: unknown yet)
 * @property {number} targetSeq     highest seq known to exist
 * @property {Map<number, ChatMessage>} pending  out-of-order messages waiting for a gap fill
 * @property {null|{mode: "latest"|"since", gen: number}} awaiting  waiting for chat-room-history
 * @property {boolean} filling
 * @property {Array<{resolve: Function, reject: Function}>} joinWaiters
 * @property {number} historyGen
 * @property {any} lastHistory     the chat-room-history answering the current join
 * @property {any} [historyWaiter]
 */

export class TalimClient {
  /** @param {TalimClientOptions} options */
  constructor(options) {
    if (!options || !options.url) throw new TypeError("TalimClient: `url` is required");
    this.url = toWebSocketUrl(options.url);
    this.token = options.token;
    this.getToken = options.getToken;
    this.query = options.query || {};
    this.WebSocketImpl = options.WebSocket || globalThis.WebSocket;
    /** @type {false | Required<ReconnectOptions>} */
    this.reconnectOptions =
      options.reconnect === false
        ? false
        : { initialMs: 500, maxMs: 15000, factor: 2, maxAttempts: Infinity, ...(options.reconnect || {}) };
    this.stableAfterMs = options.stableAfterMs ?? 10000;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 10000;
    this.outboxLimit = options.outboxLimit ?? 500;
    this.refreshLeadMs = options.refreshLeadMs ?? 60000;
    this.logger = options.logger || console;
    this.random = options.random || Math.random;
    const dbg = options.debug;
    /** @type {Set<string>} */
    this._debug = new Set(dbg === true ? Object.keys(DEBUG_PREFIX) : Array.isArray(dbg) ? dbg : []);

    /** @type {TalimStatus} */
    this._status = "disconnected";
    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
    /** @type {any} the current WebSocket (tests may terminate it) */
    this._ws = null;
    this._wsGen = 0;
    this._nextId = 1;
    /** @type {Map<number, {event: string, resolve: Function, reject: Function, timer: any, outbox?: any}>} */
    this._pending = new Map();
    this._attempt = 0;
    this._wanted = false; // connect() was called and disconnect() was not
    this._reconnectTimer = null;
    this._stableTimer = null;
    this._refreshTimer = null;
    this._currentToken = undefined;
    this._lastCloseCode = undefined;
    /** @type {Map<string, RoomState>} */
    this._rooms = new Map();
    /** @type {Set<string>} */
    this._seenIds = new Set();
    /** @type {Array<any>} queued/in-flight sends */
    this._outbox = [];
    this._ready = false; // rejoined after connect: outbox may flush
    /** @type {Set<string>} */
    this._presenceSubs = new Set();
    this._desiredStatus = null;
    this._connectWaiters = [];
    /** @type {any} data of the last `connected` event */
    this.session = null;
  }

  // ---------------------------------------------------------------- events

  /** @returns {TalimStatus} */
  get status() {
    return this._status;
  }

  get isConnected() {
    return this._status === "connected";
  }

  /**
   * Subscribe to an event. Returns the unsubscribe function.
   * Server events receive the envelope's `data` (e.g. `chat-message` → `{message}`)
   * and a meta object; `status` receives `(status, detail)`; `*` receives `(event, data)`.
   * @param {string} event
   * @param {Function} handler
   * @returns {() => void}
   */
  on(event, handler) {
    let set = this._handlers.get(event);
    if (!set) this._handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => this.off(event, handler);
  }

  /** @param {string} event @param {Function} handler */
  off(event, handler) {
    const set = this._handlers.get(event);
    if (set) set.delete(handler);
  }

  /**
   * @param {string} event
   * @param {Function} handler
   * @returns {() => void}
   */
  once(event, handler) {
    const off = this.on(event, (...args) => {
      off();
      handler(...args);
    });
    return off;
  }

  /** @param {string} event @param {...any} args */
  _emit(event, ...args) {
    const set = this._handlers.get(event);
    if (set) {
      for (const fn of [...set]) {
        try {
          fn(...args);
        } catch (err) {
          (this.logger.error || this.logger.log).call(this.logger, `talim: "${event}" handler threw`, err);
        }
      }
    }
    if (event !== "*" && event !== "status") {
      const all = this._handlers.get("*");
      if (all) for (const fn of [...all]) {
        try {
          fn(event, ...args);
        } catch (err) {
          (this.logger.error || this.logger.log).call(this.logger, "talim: \"*\" handler threw", err);
        }
      }
    }
  }

  /** @param {DebugCategory} cat @param {...any} args */
  _log(cat, ...args) {
    if (!this._debug.has(cat)) return;
    this.logger.log(`${DEBUG_PREFIX[cat] || "•"} [talim:${cat}]`, ...args);
  }

  /** @param {TalimStatus} status @param {any} [detail] */
  _setStatus(status, detail = {}) {
    if (this._status === status && !detail.force) return;
    this._status = status;
    this._log("connection", "status", status, detail);
    this._emit("status", status, detail);
  }

  // ------------------------------------------------------------ connection

  /**
   * Start connecting (and keep reconnecting). Resolves once the server's
   * `connected` event arrived; rejects when the client gives up (error status)
   * or disconnect() is called first. A rejection nobody awaits is not reported.
   * @returns {Promise<any>}
   */
  connect() {
    const d = deferred();
    d.promise.catch(() => {});
    if (this._status === "connected") {
      d.resolve(this.session);
      return d.promise;
    }
    this._connectWaiters.push(d);
    if (this._wanted && this._reconnectTimer) {
      // waiting for a backoff timer: try right now (e.g. a "Retry" button)
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
      this._open();
    } else if (!this._wanted || this._status === "error") {
      this._wanted = true;
      this._attempt = 0;
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
      if (!this._ws) this._open();
    }
    return d.promise;
  }

  /**
   * Close the connection and stop reconnecting. Pending commands reject with
   * `disconnected`; queued sends too unless `{dropOutbox: false}`.
   * @param {{dropOutbox?: boolean}} [opts]
   */
  disconnect(opts = {}) {
    this._wanted = false;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    this._clearSessionTimers();
    const ws = this._ws;
    this._detach();
    if (ws) {
      try {
        ws.close(1000, "client disconnect");
      } catch {
        /* ignore */
      }
    }
    this._failPending(new TalimError("disconnected", "client disconnected"), opts.dropOutbox !== false);
    for (const room of this._rooms.values()) this._rejectJoinWaiters(room, new TalimError("disconnected", "client disconnected"));
    this._settleConnectWaiters(new TalimError("disconnected", "client disconnected"));
    this._setStatus("disconnected", { reason: "client" });
  }

  /**
   * Replace the static token (e.g. after a login refresh). When connected,
   * it is sent at once with `auth-refresh`.
   * @param {string} token
   */
  setToken(token) {
    this.token = token;
    if (this._status === "connected" && token && token !== this._currentToken) {
      this._sendAuthRefresh(token);
    }
  }

  async _resolveToken() {
    if (this._nextToken) {
      const t = this._nextToken;
      this._nextToken = undefined;
      return t;
    }
    if (typeof this.getToken === "function") return await this.getToken();
    return this.token;
  }

  async _open() {
    const gen = ++this._wsGen;
    this._setStatus("connecting", { attempt: this._attempt });
    let token;
    try {
      token = await this._resolveToken();
    } catch (err) {
      if (gen !== this._wsGen || !this._wanted) return;
      this._log("connection", "getToken failed", err);
      this._setStatus("disconnected", { reason: "token", error: err });
      this._scheduleReconnect();
      return;
    }
    if (gen !== this._wsGen || !this._wanted) return;
    const Impl = this.WebSocketImpl;
    if (!Impl) {
      this._wanted = false;
      const err = new TalimError("unsupported", "no WebSocket implementation: pass the `WebSocket` option");
      this._settleConnectWaiters(err);
      this._setStatus("error", { reason: "unsupported", error: err });
      return;
    }
    this._currentToken = token;
    const url = new URL(this.url);
    if (token) url.searchParams.set("token", token);
    for (const [k, v] of Object.entries(this.query)) if (v != null) url.searchParams.set(k, String(v));
    this._log("connection", "connecting to", url.origin + url.pathname, `(attempt ${this._attempt})`);
    let ws;
    try {
      ws = new Impl(url.toString());
    } catch (err) {
      this._log("connection", "WebSocket constructor failed", err);
      this._setStatus("disconnected", { reason: "open", error: err });
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this._log("connection", "socket open, waiting for `connected`");
    };
    ws.onmessage = (ev) => {
      if (this._ws !== ws) return;
      this._onFrame(ev.data);
    };
    ws.onerror = (ev) => {
      if (this._ws !== ws) return;
      this._log("connection", "socket error", ev && (ev.message || ev.type));
    };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._onClose(ev ? ev.code : 1006, ev ? ev.reason : "");
    };
  }

  _detach() {
    const ws = this._ws;
    this._ws = null;
    this._ready = false;
    this._wsGen++;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    }
  }

  _clearSessionTimers() {
    clearTimeout(this._stableTimer);
    clearTimeout(this._refreshTimer);
    this._stableTimer = this._refreshTimer = null;
  }

  /** @param {number} code @param {string} reason */
  async _onClose(code, reason) {
    this._log("connection", "closed", code, reason || "");
    this._lastCloseCode = code;
    this._detach();
    this._clearSessionTimers();
    this._failPending(new TalimError("disconnected", `connection closed (${code})`), false);
    this._emit("close", { code, reason });
    if (!this._wanted) {
      this._setStatus("disconnected", { code, reason });
      return;
    }
    if (NO_RECONNECT_CODES.has(code)) {
      return this._giveUp({ code, reason }, new TalimError("closed", `closed by server (${code}): ${reason || "policy violation"}`));
    }
    if (code === TOKEN_EXPIRED_CODE) {
      // Only come back with a token that is new and not already expired.
      let fresh;
      if (typeof this.getToken === "function") {
        try {
          fresh = await this.getToken();
        } catch {
          fresh = undefined;
        }
      }
      if (!this._wanted) return;
      const exp = fresh ? decodeJwtPayload(fresh)?.exp : undefined;
      const usable = fresh && fresh !== this._currentToken && (exp == null || exp * 1000 > Date.now());
      if (!usable) {
        return this._giveUp({ code, reason }, new TalimError("unauthorized", "token expired or revoked"));
      }
      this._log("reconnect", "4001: reconnecting with a fresh token");
      this._setStatus("disconnected", { code, reason });
      this._nextToken = fresh; // used by the next attempt instead of calling getToken again
      this._scheduleReconnect();
      return;
    }
    this._setStatus("disconnected", { code, reason });
    this._scheduleReconnect();
  }

  _giveUp(detail, err) {
    this._wanted = false;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    for (const room of this._rooms.values()) this._rejectJoinWaiters(room, err);
    this._settleConnectWaiters(err);
    this._setStatus("error", { ...detail, error: err });
  }

  _scheduleReconnect() {
    const ro = this.reconnectOptions;
    if (!ro || this._attempt >= ro.maxAttempts) {
      return this._giveUp({ reason: "reconnect-exhausted" }, new TalimError("disconnected", "reconnect attempts exhausted"));
    }
    const delay = computeBackoff(this._attempt, ro, this.random);
    this._attempt++;
    this._log("reconnect", `reconnecting in ${delay} ms (attempt ${this._attempt})`);
    this._emit("reconnecting", { attempt: this._attempt, delayMs: delay });
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      if (this._wanted && !this._ws) this._open();
    }, delay);
    this._nextRetryAt = Date.now() + delay;
  }

  /** @param {any} [err] */
  _settleConnectWaiters(err) {
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) err ? w.reject(err) : w.resolve(this.session);
  }

  // ---------------------------------------------------------------- frames

  /** @param {any} raw */
  _onFrame(raw) {
    let msg;
    try {
      msg = JSON.parse(typeof raw === "string" ? raw : String(raw));
    } catch {
      this._log("connection", "ignoring non-JSON frame");
      return;
    }
    if (!msg || typeof msg.event !== "string") return;
    const { event, data, id } = msg;
    if ((event === "ack" || event === "error") && id != null && this._pending.has(Number(id))) {
      const p = this._pending.get(Number(id));
      this._pending.delete(Number(id));
      clearTimeout(p.timer);
      if (event === "ack") p.resolve(data ?? {});
      else p.reject(new TalimError(data?.code || "internal", data?.message, { retryAfterMs: data?.retryAfterMs, data, event: p.event }));
      return;
    }
    switch (event) {
      case "connected":
        return this._onConnected(data || {});
      case "chat-message":
        return this._onChatMessage(data?.message);
      case "chat-room-history":
        return this._onHistory(data || {});
      case "notification":
        this._log("notification", "notification", data?.notification?.id, data?.notification?.title);
        return this._emit(event, data, {});
      case "notification-read":
        this._log("notification", "notification-read", data);
        return this._emit(event, data, {});
      case "presence":
        this._log("presence", "presence", data?.userId, data?.status);
        return this._emit(event, data, {});
      case "chat-message-updated":
      case "message-read":
      case "typing":
      case "room-updated":
        this._log("chat", event, data?.roomId);
        return this._emit(event, data, {});
      case "room-membership":
        this._log("chat", event, data);
        if (data?.change === "removed") this._forgetRoom(data.roomId);
        return this._emit(event, data, {});
      case "error":
        this._log("connection", "server error", data);
        return this._emit(event, data, {});
      default:
        return this._emit(event, data, {});
    }
  }

  /** @param {any} data */
  async _onConnected(data) {
    this.session = data;
    const gen = this._wsGen;
    this._log("connection", "connected as", data.userId, data.connectionId);
    clearTimeout(this._stableTimer);
    this._stableTimer = setTimeout(() => {
      this._attempt = 0;
      this._log("reconnect", "connection stable: backoff reset");
    }, this.stableAfterMs);
    this._scheduleRefresh(this._currentToken);
    const resumed = this._lastCloseCode !== undefined;
    this._setStatus("connected", { session: data, resumed });
    this._emit("connected", data, { resumed });
    this._settleConnectWaiters();
    // Resume: rejoin rooms, re-subscribe presence, restore status; then flush the outbox.
    const jobs = [];
    for (const room of this._rooms.values()) {
      if (room.wanted) jobs.push(this._sendJoin(room).catch((err) => this._onRejoinFailed(room, err)));
    }
    if (this._presenceSubs.size) {
      jobs.push(
        this.request("subscribe-presence", { userIds: [...this._presenceSubs] })
          .then((ack) => this._emit("presence-snapshot", ack, { resumed: true }))
          .catch(() => {}),
      );
    }
    if (this._desiredStatus) jobs.push(this.request("set-status", { status: this._desiredStatus }).catch(() => {}));
    await Promise.allSettled(jobs);
    if (gen !== this._wsGen) return;
    this._ready = true;
    this._flushOutbox();
  }

  _onRejoinFailed(room, err) {
    this._log("chat", `(re)join of ${room.roomId} failed:`, err.code);
    if (err.code === "disconnected") return; // tried again after the next connect
    this._rejectJoinWaiters(room, err);
    if (err.code === "forbidden" || err.code === "not_found" || room.lastSeq == null) {
      room.wanted = false;
      if (this._rooms.get(room.roomId) === room) this._rooms.delete(room.roomId);
    }
    this._emit("room-error", { roomId: room.roomId, code: err.code, message: err.message }, {});
  }

  // -------------------------------------------------------------- commands

  /**
   * Send a command with an id and resolve with the ack's data; reject with a
   * TalimError (server `error`, `timeout`, or `disconnected`).
   * @param {string} event
   * @param {any} [data]
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<any>}
   */
  request(event, data = {}, opts = {}) {
    return this._request(event, data, opts);
  }

  _request(event, data, opts = {}, outboxEntry) {
    const ws = this._ws;
    if (!ws || this._status !== "connected") {
      return Promise.reject(new TalimError("disconnected", `not connected (${event})`, { event }));
    }
    const id = this._nextId++;
    const d = deferred();
    const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
    const timer = timeoutMs > 0
      ? setTimeout(() => {
          if (!this._pending.has(id)) return;
          this._pending.delete(id);
          d.reject(new TalimError("timeout", `${event}: no answer within ${timeoutMs} ms`, { event }));
        }, timeoutMs)
      : null;
    this._pending.set(id, { event, resolve: d.resolve, reject: d.reject, timer, outbox: outboxEntry });
    try {
      ws.send(JSON.stringify({ event, data, id }));
    } catch (err) {
      this._pending.delete(id);
      clearTimeout(timer);
      return Promise.reject(new TalimError("disconnected", `send failed: ${err && err.message}`, { event }));
    }
    return d.promise;
  }

  /**
   * Fire-and-forget command (no id; failures arrive as `error` events).
   * @param {string} event @param {any} [data]
   * @returns {boolean} whether it was written to a socket
   */
  send(event, data = {}) {
    if (!this._ws || this._status !== "connected") return false;
    try {
      this._ws.send(JSON.stringify({ event, data }));
      return true;
    } catch {
      return false;
    }
  }

  /** @param {TalimError} err @param {boolean} dropOutbox */
  _failPending(err, dropOutbox) {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      if (p.outbox && !dropOutbox) {
        p.outbox.state = "queued"; // re-sent with the same clientMsgId after reconnect
      } else {
        p.reject(err);
      }
    }
    if (dropOutbox) {
      const entries = this._outbox;
      this._outbox = [];
      for (const e of entries) e.reject(new TalimError(err.code, err.message, { event: "send-chat-message" }));
    }
  }

  // ----------------------------------------------------------------- token

  /** @param {string|undefined} token */
  _scheduleRefresh(token) {
    clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
    if (typeof this.getToken !== "function" || !token) return;
    const exp = decodeJwtPayload(token)?.exp;
    if (typeof exp !== "number") return;
    const remaining = exp * 1000 - Date.now();
    // Already expired: the server closes with 4001 and we reconnect with a fresh token.
    if (remaining <= 0) return;
    const lead = Math.min(this.refreshLeadMs, remaining / 2);
    const delay = Math.max(0, remaining - lead);
    this._log("connection", `token refresh in ${Math.round(delay / 1000)} s`);
    // Ask again (halving the time left) when getToken fails or has nothing newer yet;
    // give up below a second: the 4001 close at exp is handled like any expiry.
    const retry = () => {
      if (this._status === "connected" && this._currentToken === token && exp * 1000 - Date.now() > 1000) this._scheduleRefresh(token);
    };
    this._refreshTimer = setTimeout(async () => {
      this._refreshTimer = null;
      let fresh;
      try {
        fresh = await this.getToken();
      } catch (err) {
        this._log("connection", "token refresh: getToken failed", err);
        return retry();
      }
      if (this._status !== "connected" || this._currentToken !== token) return;
      if (!fresh || fresh === token) {
        this._log("connection", "token refresh: getToken returned no newer token");
        return retry();
      }
      this._sendAuthRefresh(fresh);
    }, delay);
  }

  /** @param {string} token */
  _sendAuthRefresh(token) {
    this._currentToken = token;
    this._log("connection", "sending auth-refresh");
    this._request("auth-refresh", { token })
      .then(() => this._emit("token-refreshed", {}, {}))
      .catch((err) => this._log("connection", "auth-refresh failed", err.code));
    this._scheduleRefresh(token);
  }

  // ------------------------------------------------------------------ chat

  /** @param {string} roomId @returns {RoomState} */
  _room(roomId) {
    let room = this._rooms.get(roomId);
    if (!room) {
      room = {
        roomId,
        wanted: false,
        limit: undefined,
        lastSeq: null,
        targetSeq: 0,
        pending: new Map(),
        awaiting: null,
        filling: false,
        joinWaiters: [],
        historyGen: 0,
        lastHistory: null,
      };
      this._rooms.set(roomId, room);
    }
    return room;
  }

  _rejectJoinWaiters(room, err) {
    const w = room.joinWaiters;
    room.joinWaiters = [];
    for (const x of w) x.reject(err);
  }

  _forgetRoom(roomId) {
    const room = this._rooms.get(roomId);
    if (!room) return;
    this._rejectJoinWaiters(room, new TalimError("forbidden", `removed from ${roomId}`));
    this._rooms.delete(roomId);
  }

  /**
   * Join a room (membership is checked by the server; `open` rooms add you).
   * Resolves with the ack data plus the initial `messages`/`hasMore`. When not
   * connected the join happens (and the promise resolves) after connecting.
   * The room is re-joined with `sinceSeq` after every reconnect.
   * @param {string} roomId
   * @param {{limit?: number}} [opts]
   */
  joinRoom(roomId, opts = {}) {
    const room = this._room(roomId);
    room.wanted = true;
    if (opts.limit != null) room.limit = opts.limit;
    if (this._status === "connected") {
      return this._sendJoin(room).catch((err) => {
        if (err.code !== "disconnected" && (err.code === "forbidden" || err.code === "not_found" || room.lastSeq == null)) {
          room.wanted = false;
          if (this._rooms.get(roomId) === room) this._rooms.delete(roomId);
        }
        throw err;
      });
    }
    const d = deferred();
    room.joinWaiters.push(d);
    return d.promise;
  }

  /** @param {RoomState} room */
  async _sendJoin(room) {
    const since = room.lastSeq != null;
    const data = since ? { roomId: room.roomId, sinceSeq: room.lastSeq } : { roomId: room.roomId };
    if (!since && room.limit != null) data.limit = room.limit;
    const gen = ++room.historyGen;
    room.awaiting = { mode: since ? "since" : "latest", gen };
    room.lastHistory = null;
    const hist = deferred();
    room.historyWaiter = hist;
    this._log("chat", `join ${room.roomId}`, since ? `sinceSeq=${room.lastSeq}` : `limit=${data.limit ?? "default"}`);
    let ack;
    try {
      ack = await this._request("join-chat-room", data);
    } catch (err) {
      if (room.awaiting && room.awaiting.gen === gen) room.awaiting = null;
      throw err;
    }
    // PROTOCOL.md: the ack carries lastSeq; a server that leaves out zero values
    // (talim's chat service omits it while the room is empty) means 0.
    if (ack && typeof ack.lastSeq !== "number") ack = { ...ack, lastSeq: 0 };
    if (since && typeof ack.lastSeq === "number" && room.lastSeq != null && ack.lastSeq < room.lastSeq) {
      // The store holds fewer messages than we saw (it was reset): start over from its view.
      this._log("chat", `${room.roomId}: server lastSeq ${ack.lastSeq} < ours ${room.lastSeq}, resetting`);
      room.lastSeq = ack.lastSeq;
      room.targetSeq = ack.lastSeq;
      room.pending.clear();
      this._emit("room-reset", { roomId: room.roomId, lastSeq: ack.lastSeq }, {});
    }
    if (typeof ack.lastSeq === "number") room.targetSeq = Math.max(room.targetSeq, ack.lastSeq);
    // Wait for the chat-room-history push (it may already have arrived).
    let history = room.lastHistory;
    if (!history) {
      const t = setTimeout(() => hist.resolve(null), this.commandTimeoutMs);
      history = await hist.promise;
      clearTimeout(t);
    }
    if (!history && room.awaiting && room.awaiting.gen === gen) {
      // No push: fetch it ourselves.
      room.awaiting = null;
      if (since) {
        room.targetSeq = Math.max(room.targetSeq, ack.lastSeq || 0);
        this._fillGap(room);
      } else {
        const res = await this._request("get-chat-room-history", { roomId: room.roomId, limit: Math.min(room.limit || 50, MAX_HISTORY_LIMIT) });
        history = { roomId: room.roomId, messages: res.messages || [], hasMore: !!res.hasMore };
        this._applyLatestHistory(room, history);
      }
    }
    if (room.lastSeq == null) room.lastSeq = ack.lastSeq ?? 0;
    if (room.lastSeq < room.targetSeq) this._fillGap(room);
    const result = { ...ack, messages: history && history.mode !== "since" ? history.messages : [], hasMore: history ? !!history.hasMore : false };
    const waiters = room.joinWaiters;
    room.joinWaiters = [];
    for (const w of waiters) w.resolve(result);
    return result;
  }

  /** @param {any} data */
  _onHistory(data) {
    const room = this._rooms.get(data.roomId);
    const messages = Array.isArray(data.messages) ? data.messages : [];
    if (!room || !room.awaiting) {
      this._emit("chat-room-history", data, {});
      return;
    }
    const { mode } = room.awaiting;
    room.awaiting = null;
    this._log("chat", `history ${data.roomId}: ${messages.length} message(s) (${mode})`);
    if (mode === "latest") {
      this._applyLatestHistory(room, data);
    } else {
      for (const m of messages) this._ingest(room, m, true);
      if (data.hasMore && messages.length) {
        room.targetSeq = Math.max(room.targetSeq, messages[messages.length - 1].seq + 1);
      }
      if (room.lastSeq < room.targetSeq) this._fillGap(room);
    }
    room.lastHistory = { ...data, mode };
    if (room.historyWaiter) room.historyWaiter.resolve(room.lastHistory);
  }

  _applyLatestHistory(room, data) {
    const messages = (data.messages || []).slice().sort((a, b) => a.seq - b.seq);
    for (const m of messages) this._remember(m.id);
    const last = messages.length ? messages[messages.length - 1].seq : 0;
    room.lastSeq = Math.max(room.lastSeq ?? 0, last);
    room.targetSeq = Math.max(room.targetSeq, room.lastSeq);
    this._emit("chat-room-history", { ...data, messages }, {});
    this._drain(room);
  }

  _remember(id) {
    if (!id) return;
    this._seenIds.add(id);
    if (this._seenIds.size > SEEN_IDS_LIMIT) {
      const first = this._seenIds.values().next().value;
      this._seenIds.delete(first);
    }
  }

  /** @param {ChatMessage} message */
  _onChatMessage(message) {
    if (!message) return;
    const room = this._rooms.get(message.roomId);
    if (!room || typeof message.seq !== "number") {
      if (message.id && this._seenIds.has(message.id)) return;
      this._remember(message.id);
      this._log("chat", "message", message.roomId, message.seq);
      this._emit("chat-message", { message }, { replayed: false });
      return;
    }
    this._ingest(room, message, false);
  }

  /**
   * Feed a message into the room's ordered, deduplicated stream.
   * @param {RoomState} room @param {ChatMessage} m @param {boolean} replayed
   */
  _ingest(room, m, replayed) {
    if (!m || typeof m.seq !== "number") return;
    room.targetSeq = Math.max(room.targetSeq, m.seq);
    if (room.lastSeq == null) {
      // join in progress: hold until the initial history tells us where we are
      room.pending.set(m.seq, m);
      return;
    }
    if (m.seq <= room.lastSeq || (m.id && this._seenIds.has(m.id))) {
      this._log("chat", `duplicate ${m.roomId}#${m.seq} dropped`);
      return;
    }
    if (m.seq === room.lastSeq + 1) {
      this._deliver(room, m, replayed);
      this._drain(room);
      return;
    }
    room.pending.set(m.seq, m);
    this._log("chat", `gap in ${room.roomId}: have ${room.lastSeq}, got ${m.seq}`);
    this._fillGap(room);
  }

  _deliver(room, m, replayed) {
    room.lastSeq = m.seq;
    room.pending.delete(m.seq);
    if (m.id && this._seenIds.has(m.id)) return;
    this._remember(m.id);
    this._log("chat", `message ${m.roomId}#${m.seq}`, replayed ? "(replayed)" : "");
    this._emit("chat-message", { message: m }, { replayed });
  }

  _drain(room) {
    if (room.lastSeq == null) return;
    for (const seq of [...room.pending.keys()]) if (seq <= room.lastSeq) room.pending.delete(seq);
    let next;
    while ((next = room.pending.get(room.lastSeq + 1))) this._deliver(room, next, false);
    if (room.pending.size && !room.filling) this._fillGap(room);
  }

  /** Fetch the missing range with get-chat-room-history {afterSeq}. */
  async _fillGap(room) {
    if (room.filling || room.lastSeq == null || this._status !== "connected") return;
    room.filling = true;
    try {
      let guard = 0;
      while (this._rooms.get(room.roomId) === room && room.lastSeq < room.targetSeq && guard++ < 100) {
        const before = room.lastSeq;
        const upTo = room.pending.size ? Math.min(...room.pending.keys()) - 1 : room.targetSeq;
        const limit = Math.max(1, Math.min(MAX_HISTORY_LIMIT, upTo - before || MAX_HISTORY_LIMIT));
        this._log("chat", `fetching ${room.roomId} after ${before} (limit ${limit})`);
        const res = await this._request("get-chat-room-history", { roomId: room.roomId, afterSeq: before, limit });
        const msgs = (res.messages || []).slice().sort((a, b) => a.seq - b.seq);
        for (const m of msgs) {
          room.targetSeq = Math.max(room.targetSeq, m.seq);
          if (m.seq > room.lastSeq) room.pending.set(m.seq, m);
        }
        let next;
        while ((next = room.pending.get(room.lastSeq + 1))) this._deliver(room, next, true);
        if (room.lastSeq === before) {
          // The store does not have the missing seqs (should not happen): skip ahead
          // rather than stall, delivering what we hold in order.
          if (!room.pending.size) break;
          const min = Math.min(...room.pending.keys());
          this._log("chat", `seqs ${before + 1}..${min - 1} of ${room.roomId} unavailable; skipping`);
          room.lastSeq = min - 1;
          while ((next = room.pending.get(room.lastSeq + 1))) this._deliver(room, next, false);
        }
        if (!res.hasMore && !room.pending.size) break;
      }
    } catch (err) {
      this._log("chat", `gap fill for ${room.roomId} failed:`, err.code);
      // Retried on the next message or after reconnect (rejoin with sinceSeq).
    } finally {
      room.filling = false;
    }
  }

  /**
   * Stop live events of a room on this connection and forget its resume state.
   * @param {string} roomId
   */
  leaveRoom(roomId) {
    const room = this._rooms.get(roomId);
    if (room) {
      this._rejectJoinWaiters(room, new TalimError("cancelled", "left the room"));
      this._rooms.delete(roomId);
    }
    if (this._status !== "connected") return Promise.resolve({ roomId });
    return this._request("leave-chat-room", { roomId });
  }

  /** Rooms the client is in (re-joined after reconnects), with their last contiguous seq. */
  get joinedRooms() {
    return [...this._rooms.values()].filter((r) => r.wanted).map((r) => ({ roomId: r.roomId, lastSeq: r.lastSeq }));
  }

  /**
   * Send a chat message through the outbox: while disconnected it is queued and
   * flushed in order after reconnect + rejoin; a send whose socket dropped before
   * its ack is re-sent with the same clientMsgId. Resolves with the stored message.
   * @param {string} roomId
   * @param {string} content
   * @param {{type?: string, clientMsgId?: string}} [opts]
   * @returns {Promise<ChatMessage>}
   */
  sendMessage(roomId, content, opts = {}) {
    if (this._outbox.length >= this.outboxLimit) {
      return Promise.reject(new TalimError("outbox_full", `outbox holds ${this._outbox.length} messages`, { event: "send-chat-message" }));
    }
    const d = deferred();
    const entry = {
      data: { roomId, content, type: opts.type || "text", clientMsgId: opts.clientMsgId || uuid() },
      state: "queued",
      resolve: d.resolve,
      reject: d.reject,
    };
    // Written at once when connected, re-joined and nothing older waits; otherwise it
    // waits its turn (see _flushOutbox).
    const waiting = this._outbox.some((e) => e.state === "queued");
    this._outbox.push(entry);
    this._log("chat", `send ${roomId} (${entry.data.clientMsgId})`, this._ready && !waiting ? "" : "queued");
    if (this._ready && !waiting) this._writeOutboxEntry(entry);
    else this._flushOutbox();
    return d.promise;
  }

  /** Messages waiting in the outbox (queued or awaiting their ack). */
  get outbox() {
    return this._outbox.map((e) => ({ ...e.data, state: e.state }));
  }

  /**
   * Write the oldest waiting send once nothing is in flight. After a reconnect the
   * waiting sends (including those whose socket dropped before the ack) go one at a
   * time, each after the previous ack, with their original clientMsgId: the server
   * handles commands concurrently, so pipelining them could store them out of order.
   */
  _flushOutbox() {
    if (!this._ready) return;
    if (this._outbox.some((e) => e.state === "inflight")) return;
    const next = this._outbox.find((e) => e.state === "queued");
    if (next) this._writeOutboxEntry(next);
  }

  _writeOutboxEntry(entry) {
    entry.state = "inflight";
    this._request("send-chat-message", entry.data, {}, entry).then(
      (ack) => {
        this._removeFromOutbox(entry);
        const m = ack && ack.message;
        if (m) {
          const room = this._rooms.get(m.roomId);
          if (room && room.lastSeq != null && room.wanted) this._ingest(room, m, false);
        }
        entry.resolve(m);
        this._flushOutbox();
      },
      (err) => {
        if (err.code === "disconnected" && entry.state === "queued") return; // requeued by _failPending
        if (err.code === "disconnected") {
          entry.state = "queued"; // not written to a socket: keep it
          return;
        }
        this._removeFromOutbox(entry);
        entry.reject(err);
        this._flushOutbox();
      },
    );
  }

  _removeFromOutbox(entry) {
    const i = this._outbox.indexOf(entry);
    if (i >= 0) this._outbox.splice(i, 1);
  }

  /**
   * @param {string} roomId
   * @param {{beforeSeq?: number, afterSeq?: number, limit?: number}} [opts]
   */
  history(roomId, opts = {}) {
    return this._request("get-chat-room-history", { roomId, ...opts });
  }

  /**
   * @param {string} roomId
   * @param {number|string} seqOrMessageId  a seq (number) or a message id (string)
   */
  markRead(roomId, seqOrMessageId) {
    const data = typeof seqOrMessageId === "number" ? { roomId, seq: seqOrMessageId } : { roomId, messageId: seqOrMessageId };
    return this._request("mark-message-read", data);
  }

  /** @param {string} roomId @param {boolean} isTyping */
  typing(roomId, isTyping) {
    return this._request("typing", { roomId, isTyping: !!isTyping });
  }

  /** @param {string} roomId @param {string} messageId @param {string} content */
  async editMessage(roomId, messageId, content) {
    const ack = await this._request("edit-chat-message", { roomId, messageId, content });
    return ack.message;
  }

  /** @param {string} roomId @param {string} messageId */
  async deleteMessage(roomId, messageId) {
    const ack = await this._request("delete-chat-message", { roomId, messageId });
    return ack.message;
  }

  async listRooms() {
    const ack = await this._request("list-rooms", {});
    return ack.rooms || [];
  }

  /** @param {string} userId */
  async openDirectRoom(userId) {
    const ack = await this._request("open-direct-room", { userId });
    return ack.room;
  }

  // --------------------------------------------------------- notifications

  /** @param {{unreadOnly?: boolean, before?: string, limit?: number}} [opts] */
  listNotifications(opts = {}) {
    return this._request("list-notifications", opts);
  }

  /** @param {string[]|{ids?: string[], all?: boolean}} idsOrAll */
  markNotificationsRead(idsOrAll) {
    const data = Array.isArray(idsOrAll) ? { ids: idsOrAll } : idsOrAll && idsOrAll.all ? { all: true } : { ids: (idsOrAll && idsOrAll.ids) || [] };
    return this._request("mark-notification-read", data);
  }

  /** @param {string} id */
  ackNotification(id) {
    return this._request("ack-notification", { id });
  }

  // -------------------------------------------------------------- presence

  /**
   * Subscribe to presence changes; re-subscribed after reconnects.
   * @param {string[]} userIds
   * @returns {Promise<{presence: Array<{userId: string, status: string, lastSeenAt?: string}>}>}
   */
  subscribePresence(userIds) {
    for (const u of userIds) this._presenceSubs.add(u);
    this._log("presence", "subscribe", userIds);
    return this._request("subscribe-presence", { userIds });
  }

  /** @param {string[]} userIds */
  unsubscribePresence(userIds) {
    for (const u of userIds) this._presenceSubs.delete(u);
    if (this._status !== "connected") return Promise.resolve({});
    return this._request("unsubscribe-presence", { userIds });
  }

  /** @param {"online"|"away"|"busy"|"invisible"} status */
  setStatus(status) {
    this._desiredStatus = status === "online" ? null : status;
    return this._request("set-status", { status });
  }

  // ------------------------------------------------------------ shorthands

  /** @param {(message: ChatMessage, meta: {replayed: boolean}) => void} fn */
  onChatMessage(fn) {
    return this.on("chat-message", (data, meta) => fn(data.message, meta));
  }

  /** @param {(notification: any) => void} fn */
  onNotification(fn) {
    return this.on("notification", (data) => fn(data.notification));
  }
}

export default TalimClient;

// The connection: open, reconnect with backoff by the close-code table, the pre-flight
// that makes refused upgrades visible, frames, commands with ids, token refresh.
// Rooms, the outbox and the API are in client.ts (like pkg/client: conn.go, token.go).
import { Emitter } from "./events.js";
import { TalimError, closeRule, handshakeRule, isTerminal } from "./errors.js";
import { computeBackoff, deferred, toWebSocketUrl, tokenExp } from "./util.js";
export class Connection extends Emitter {
    url;
    token;
    getToken;
    query;
    WebSocketImpl;
    reconnectOptions;
    stableAfterMs;
    commandTimeoutMs;
    refreshLeadMs;
    random;
    fetchImpl;
    _status = "disconnected";
    /** The current socket (tests may terminate it). */
    ws = null;
    wsGen = 0;
    opened = false;
    nextId = 1;
    pending = new Map();
    attempt = 0;
    wanted = false;
    reconnectTimer = null;
    stableTimer = null;
    refreshTimer = null;
    currentToken;
    nextToken;
    lastCloseCode;
    connectWaiters = [];
    _nextRetryAt = null;
    _lastError = null;
    /** Data of the last `connected` event. */
    session = null;
    constructor(options) {
        if (!options || !options.url)
            throw new TypeError("TalimClient: `url` is required");
        super(options.logger, options.debug);
        this.url = toWebSocketUrl(options.url);
        this.token = options.token;
        this.getToken = options.getToken;
        this.query = options.query || {};
        this.WebSocketImpl = (options.WebSocket || globalThis.WebSocket);
        this.reconnectOptions =
            options.reconnect === false
                ? false
                : { initialMs: 500, maxMs: 15000, factor: 2, maxAttempts: Infinity, ...(options.reconnect || {}) };
        this.stableAfterMs = options.stableAfterMs ?? 10000;
        this.commandTimeoutMs = options.commandTimeoutMs ?? 10000;
        this.refreshLeadMs = options.refreshLeadMs ?? 60000;
        this.random = options.random || Math.random;
        const f = options.fetch === false ? undefined : options.fetch || globalThis.fetch;
        this.fetchImpl = f ? f.bind(globalThis) : undefined;
    }
    get status() {
        return this._status;
    }
    get isConnected() {
        return this._status === "connected";
    }
    /** When the next reconnect attempt starts (epoch ms), while one is scheduled. */
    get nextRetryAt() {
        return this.reconnectTimer ? this._nextRetryAt : null;
    }
    /** The error that put the client in the `error` status (null otherwise). */
    get lastError() {
        return this._lastError;
    }
    setConnStatus(status, detail = {}) {
        if (this._status === status && !detail.force)
            return;
        this._status = status;
        if (status !== "error")
            this._lastError = null;
        else if (detail.error)
            this._lastError = detail.error;
        this.log("connection", "status", status, detail);
        this.emit("status", status, detail);
    }
    // ------------------------------------------------------------ connection
    /**
     * Start connecting (and keep reconnecting). Resolves on the server's `connected`
     * event; rejects when the client gives up or disconnect() is called first. A
     * rejection nobody awaits is not reported.
     */
    connect() {
        const d = deferred();
        d.promise.catch(() => { });
        if (this._status === "connected") {
            d.resolve(this.session);
            return d.promise;
        }
        this.connectWaiters.push(d);
        if (this.wanted && this.reconnectTimer) {
            // waiting for a backoff timer: try right now (a "Retry" button)
            clearTimeout(this.reconnectTimer);
            this.reconnectTimer = null;
            void this.open();
        }
        else if (!this.wanted || this._status === "error") {
            this.wanted = true;
            this.attempt = 0;
            if (this.reconnectTimer)
                clearTimeout(this.reconnectTimer);
            this.reconnectTimer = null;
            if (!this.ws)
                void this.open();
        }
        return d.promise;
    }
    /**
     * Reconnect now: from `error` (with a fresh getToken), while waiting for a backoff
     * timer, or on a live connection (closed and opened again; rooms resume).
     */
    reconnect() {
        this.log("reconnect", "reconnect requested");
        const ws = this.ws;
        if (ws && this.wanted) {
            this.detach();
            this.clearSessionTimers();
            try {
                ws.close(1000, "client reconnect");
            }
            catch {
                /* ignore */
            }
            this.lastCloseCode = 1000;
            this.connectionLost(new TalimError("disconnected", "client reconnect"), false);
            this.attempt = 0;
            const p = this.connect();
            void this.open();
            return p;
        }
        return this.connect();
    }
    /**
     * Close the connection and stop reconnecting. Pending commands reject with
     * `disconnected`; queued sends too unless `{dropOutbox: false}`.
     */
    disconnect(opts = {}) {
        this.wanted = false;
        if (this.reconnectTimer)
            clearTimeout(this.reconnectTimer);
        this.reconnectTimer = null;
        this.clearSessionTimers();
        const ws = this.ws;
        this.detach();
        if (ws) {
            try {
                ws.close(1000, "client disconnect");
            }
            catch {
                /* ignore */
            }
        }
        const err = new TalimError("disconnected", "client disconnected");
        this.connectionLost(err, opts.dropOutbox !== false);
        this.giveUpWaiters(err);
        this.settleConnectWaiters(err);
        this.setConnStatus("disconnected", { reason: "client" });
    }
    /** Replace the static token; sent with `auth-refresh` when connected. */
    setToken(token) {
        this.token = token;
        if (this._status === "connected" && token && token !== this.currentToken)
            this.sendAuthRefresh(token);
    }
    async resolveToken() {
        if (this.nextToken) {
            const t = this.nextToken;
            this.nextToken = undefined;
            return t;
        }
        if (typeof this.getToken === "function")
            return await this.getToken();
        return this.token;
    }
    socketURL(token) {
        const url = new URL(this.url);
        if (token)
            url.searchParams.set("token", token);
        for (const [k, v] of Object.entries(this.query))
            if (v != null)
                url.searchParams.set(k, String(v));
        return url;
    }
    async open() {
        const gen = ++this.wsGen;
        this.setConnStatus("connecting", { attempt: this.attempt });
        let token;
        try {
            token = await this.resolveToken();
        }
        catch (err) {
            if (gen !== this.wsGen || !this.wanted)
                return;
            this.log("connection", "getToken failed", err);
            this.setConnStatus("disconnected", { reason: "token", error: new TalimError("unauthorized", `getToken failed: ${String(err)}`) });
            this.scheduleReconnect();
            return;
        }
        if (gen !== this.wsGen || !this.wanted)
            return;
        const Impl = this.WebSocketImpl;
        if (!Impl) {
            this.wanted = false;
            const err = new TalimError("unsupported", "no WebSocket implementation: pass the `WebSocket` option");
            this.settleConnectWaiters(err);
            this.setConnStatus("error", { reason: "unsupported", error: err });
            return;
        }
        this.currentToken = token;
        const url = this.socketURL(token);
        this.log("connection", "connecting to", url.origin + url.pathname, `(attempt ${this.attempt})`);
        let ws;
        try {
            ws = new Impl(url.toString());
        }
        catch (err) {
            this.log("connection", "WebSocket constructor failed", err);
            this.setConnStatus("disconnected", { reason: "open" });
            this.scheduleReconnect();
            return;
        }
        this.ws = ws;
        this.opened = false;
        ws.onopen = () => {
            if (this.ws !== ws)
                return;
            this.opened = true;
            this.log("connection", "socket open, waiting for `connected`");
        };
        ws.onmessage = (ev) => {
            if (this.ws !== ws)
                return;
            this.onFrame(ev.data);
        };
        ws.onerror = (ev) => {
            if (this.ws !== ws)
                return;
            const e = ev;
            this.log("connection", "socket error", e && (e.message || e.type));
        };
        ws.onclose = (ev) => {
            if (this.ws !== ws)
                return;
            const opened = this.opened;
            void this.onClose(ev ? ev.code : 1006, ev ? ev.reason : "", opened ? null : url);
        };
    }
    detach() {
        const ws = this.ws;
        this.ws = null;
        this.wsGen++;
        this.sessionEnded();
        if (ws)
            ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    }
    clearSessionTimers() {
        if (this.stableTimer)
            clearTimeout(this.stableTimer);
        if (this.refreshTimer)
            clearTimeout(this.refreshTimer);
        this.stableTimer = this.refreshTimer = null;
    }
    /**
     * Ask the edge why a socket closed before it opened: the same URL without the
     * upgrade answers the refusal as JSON (docs/protocol.md, Connecting). null when
     * the check is off, the network is down or the answer is not a refusal.
     */
    async preflight(url) {
        if (!this.fetchImpl)
            return null;
        const httpURL = new URL(url.toString());
        httpURL.protocol = httpURL.protocol === "wss:" ? "https:" : "http:";
        try {
            const res = await this.fetchImpl(httpURL.toString(), { method: "GET", cache: "no-store", credentials: "omit" });
            if (res.status < 400)
                return null;
            let code = "";
            let message = res.statusText || `HTTP ${res.status}`;
            try {
                const body = (await res.json());
                if (body && body.error) {
                    code = body.error.code || "";
                    message = body.error.message || message;
                }
            }
            catch {
                /* not JSON */
            }
            return { status: res.status, code, message };
        }
        catch {
            return null;
        }
    }
    async onClose(code, reason, unopenedURL) {
        this.log("connection", "closed", code, reason || "");
        this.lastCloseCode = code;
        const refusedToken = this.currentToken;
        this.detach();
        this.clearSessionTimers();
        this.connectionLost(new TalimError("disconnected", `connection closed (${code})`), false);
        this.emit("close", { code, reason });
        if (!this.wanted) {
            this.setConnStatus("disconnected", { code, reason });
            return;
        }
        const gen = this.wsGen;
        const refreshable = typeof this.getToken === "function";
        if (unopenedURL && code === 1006) {
            const refusal = await this.preflight(unopenedURL);
            if (gen !== this.wsGen || !this.wanted)
                return;
            if (refusal) {
                this.log("connection", `upgrade refused: HTTP ${refusal.status} ${refusal.code}: ${refusal.message}`);
                const rule = handshakeRule(refusal.status);
                const err = new TalimError(refusal.code || (refusal.status === 401 ? "unauthorized" : "closed"), refusal.message);
                const detail = { httpStatus: refusal.status, reason: refusal.message };
                if (isTerminal(rule, refreshable))
                    return this.giveUp(detail, err);
                if (rule === "new-token")
                    return this.retryWithNewToken(refusedToken, detail, err, true);
            }
        }
        const rule = closeRule(code);
        if (isTerminal(rule, refreshable)) {
            const err = code === 4001
                ? new TalimError("unauthorized", `token expired or revoked (${code})`)
                : new TalimError("closed", `closed by server (${code}): ${reason || "retrying cannot help"}`);
            return this.giveUp({ code, reason }, err);
        }
        if (rule === "new-token")
            return this.retryWithNewToken(refusedToken, { code, reason }, new TalimError("unauthorized", "token expired or revoked"), false);
        this.setConnStatus("disconnected", { code, reason });
        this.scheduleReconnect();
    }
    /**
     * The token was refused: call getToken again and come back only with a token that is
     * new and not expired; otherwise stop in `error` (🔴) until reconnect().
     */
    async retryWithNewToken(refused, detail, err, showRefusal) {
        // A refused upgrade shows 🔴 with the edge's reason while getToken runs; a 4001 at the
        // token's exp is routine (disconnected, then connected again).
        this.setConnStatus(showRefusal ? "error" : "disconnected", { ...detail, error: err });
        let fresh;
        try {
            fresh = this.getToken ? await this.getToken() : undefined;
        }
        catch {
            fresh = undefined;
        }
        if (!this.wanted)
            return;
        const exp = tokenExp(fresh);
        const usable = fresh && fresh !== refused && (exp == null || exp * 1000 > Date.now());
        if (!usable)
            return this.giveUp(detail, err);
        this.log("reconnect", "token refused: reconnecting with a fresh token");
        this.nextToken = fresh;
        this.setConnStatus("disconnected", detail);
        this.scheduleReconnect();
    }
    giveUp(detail, err) {
        this.wanted = false;
        if (this.reconnectTimer)
            clearTimeout(this.reconnectTimer);
        this.reconnectTimer = null;
        this.giveUpWaiters(err);
        this.settleConnectWaiters(err);
        this.setConnStatus("error", { ...detail, error: err });
    }
    scheduleReconnect() {
        const ro = this.reconnectOptions;
        if (!ro || this.attempt >= ro.maxAttempts) {
            return this.giveUp({ reason: "reconnect-exhausted" }, new TalimError("disconnected", "reconnect attempts exhausted"));
        }
        const delay = computeBackoff(this.attempt, ro, this.random);
        this.attempt++;
        this.log("reconnect", `reconnecting in ${delay} ms (attempt ${this.attempt})`);
        if (this.reconnectTimer)
            clearTimeout(this.reconnectTimer);
        this._nextRetryAt = Date.now() + delay;
        this.reconnectTimer = setTimeout(() => {
            this.reconnectTimer = null;
            if (this.wanted && !this.ws)
                void this.open();
        }, delay);
        this.emit("reconnecting", { attempt: this.attempt, delayMs: delay });
    }
    settleConnectWaiters(err) {
        const waiters = this.connectWaiters;
        this.connectWaiters = [];
        for (const w of waiters) {
            if (err)
                w.reject(err);
            else
                w.resolve(this.session);
        }
    }
    // ---------------------------------------------------------------- frames
    onFrame(raw) {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        let msg;
        try {
            msg = JSON.parse(typeof raw === "string" ? raw : String(raw));
        }
        catch {
            this.log("connection", "ignoring non-JSON frame");
            return;
        }
        if (!msg || typeof msg.event !== "string")
            return;
        const { event, data, id } = msg;
        if ((event === "ack" || event === "error") && id != null && this.pending.has(Number(id))) {
            const p = this.pending.get(Number(id));
            this.pending.delete(Number(id));
            if (p.timer)
                clearTimeout(p.timer);
            if (event === "ack")
                p.resolve(data ?? {});
            else
                p.reject(new TalimError(data?.code || "internal", data?.message, { retryAfterMs: data?.retryAfterMs, data, event: p.event }));
            return;
        }
        if (event === "connected") {
            void this.onConnected(data || {});
            return;
        }
        this.onServerEvent(event, data);
    }
    async onConnected(data) {
        this.session = data;
        const gen = this.wsGen;
        this.log("connection", "connected as", data.userId, data.connectionId);
        if (this.stableTimer)
            clearTimeout(this.stableTimer);
        this.stableTimer = setTimeout(() => {
            this.attempt = 0;
            this.log("reconnect", "connection stable: backoff reset");
        }, this.stableAfterMs);
        this.scheduleRefresh(this.currentToken);
        const resumed = this.lastCloseCode !== undefined;
        this.setConnStatus("connected", { session: data, resumed });
        this.emit("connected", data, { resumed });
        this.settleConnectWaiters();
        await this.resume(gen);
    }
    // -------------------------------------------------------------- commands
    /**
     * Send a command with an id and resolve with the ack's data; reject with a
     * TalimError (server `error`, `timeout`, or `disconnected`).
     */
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    request(event, data = {}, opts = {}) {
        return this.command(event, data, opts);
    }
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    command(event, data, opts = {}, requeue) {
        const ws = this.ws;
        if (!ws || this._status !== "connected") {
            return Promise.reject(new TalimError("disconnected", `not connected (${event})`, { event }));
        }
        const id = this.nextId++;
        const d = deferred();
        const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs;
        const timer = timeoutMs > 0
            ? setTimeout(() => {
                if (!this.pending.has(id))
                    return;
                this.pending.delete(id);
                d.reject(new TalimError("timeout", `${event}: no answer within ${timeoutMs} ms`, { event }));
            }, timeoutMs)
            : null;
        this.pending.set(id, { event, resolve: d.resolve, reject: d.reject, timer, requeue });
        try {
            ws.send(JSON.stringify({ event, data, id }));
        }
        catch (err) {
            this.pending.delete(id);
            if (timer)
                clearTimeout(timer);
            return Promise.reject(new TalimError("disconnected", `send failed: ${err?.message}`, { event }));
        }
        return d.promise;
    }
    /** Fire-and-forget command (no id; failures arrive as `error` events). */
    send(event, data = {}) {
        if (!this.ws || this._status !== "connected")
            return false;
        try {
            this.ws.send(JSON.stringify({ event, data }));
            return true;
        }
        catch {
            return false;
        }
    }
    /** Reject (or requeue) the commands waiting for an answer. */
    failPending(err, dropOutbox) {
        const pending = [...this.pending.values()];
        this.pending.clear();
        for (const p of pending) {
            if (p.timer)
                clearTimeout(p.timer);
            if (p.requeue && !dropOutbox)
                p.requeue();
            else
                p.reject(err);
        }
    }
    // ----------------------------------------------------------------- token
    scheduleRefresh(token) {
        if (this.refreshTimer)
            clearTimeout(this.refreshTimer);
        this.refreshTimer = null;
        const getToken = this.getToken;
        if (typeof getToken !== "function" || !token)
            return;
        const exp = tokenExp(token);
        if (exp === undefined)
            return;
        const remaining = exp * 1000 - Date.now();
        // Already expired: the server closes with 4001 and we reconnect with a fresh token.
        if (remaining <= 0)
            return;
        const lead = Math.min(this.refreshLeadMs, remaining / 2);
        const delay = Math.max(0, remaining - lead);
        this.log("connection", `token refresh in ${Math.round(delay / 1000)} s`);
        // Ask again (halving the time left) when getToken fails or has nothing newer yet;
        // give up below a second: the 4001 close at exp is handled like any expiry.
        const retry = () => {
            if (this._status === "connected" && this.currentToken === token && exp * 1000 - Date.now() > 1000)
                this.scheduleRefresh(token);
        };
        this.refreshTimer = setTimeout(async () => {
            this.refreshTimer = null;
            let fresh;
            try {
                fresh = await getToken();
            }
            catch (err) {
                this.log("connection", "token refresh: getToken failed", err);
                return retry();
            }
            if (this._status !== "connected" || this.currentToken !== token)
                return;
            if (!fresh || fresh === token) {
                this.log("connection", "token refresh: getToken returned no newer token");
                return retry();
            }
            this.sendAuthRefresh(fresh);
        }, delay);
    }
    sendAuthRefresh(token) {
        this.currentToken = token;
        this.log("connection", "sending auth-refresh");
        this.command("auth-refresh", { token })
            .then(() => this.emit("token-refreshed", {}, {}))
            .catch((err) => this.log("connection", "auth-refresh failed", err.code));
        this.scheduleRefresh(token);
    }
}

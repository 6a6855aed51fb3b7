// A small in-memory stand-in for the edge that speaks client protocol v1
// (shared PROTOCOL.md) — used by the unit tests and, run directly, as a
// dev server for the demo page without the Go stack:
//
//   node tools/fake-edge.mjs [port]     → http://127.0.0.1:8090/ (the React demo at /kit/)
//
// It serves ../static at / (/ redirects to /kit/), GET /dev/tokens (unsigned demo JWTs for t1, s1, s2)
// and the WebSocket endpoint /ws. Tokens are decoded, never verified: this is
// test scaffolding, not a server.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { WebSocket, WebSocketServer } from "ws";

const STATIC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "static");
const MIME = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".ts": "text/plain; charset=utf-8", ".json": "application/json" };

export function decodeClaims(token) {
  try {
    return JSON.parse(Buffer.from(String(token).split(".")[1], "base64url").toString("utf8"));
  } catch {
    return null;
  }
}

/** Unsigned JWT (alg HS256 header, bogus signature). */
export function makeToken(sub, expInSec = 3600, extra = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + expInSec, ...extra })}.sig`;
}

export const DEMO_USERS = [
  { userId: "t1", name: "Teacher One", roles: ["teacher"] },
  { userId: "s1", name: "Student One", roles: ["student"] },
  { userId: "s2", name: "Student Two", roles: ["student"] },
];

export class FakeEdge {
  /** @param {{seed?: boolean, serveStatic?: boolean}} [opts] */
  constructor(opts = {}) {
    /** roomId -> {roomId, name, type, members: Map<userId, {role, lastReadSeq}>, messages, byClientMsgId, forbidden?} */
    this.rooms = new Map();
    this.conns = new Set();
    /** every inbound command: {conn, event, data, id} */
    this.frames = [];
    this.connections = 0; // total accepted
    this.dropLive = new Set(); // seqs whose live delivery is skipped (at-most-once)
    this.swallowSends = 0; // store the next N sends without acking them
    this.historyFirst = true; // chat-room-history before the join ack
    this.extraHistoryDupes = 0; // resend this many already-known messages in sinceSeq history
    this.rateLimited = new Set(); // events answered with rate_limited
    this.onConnect = null; // (conn) => void
    this.nextId = 1;
    this.notifications = new Map(); // userId -> [notification]
    this.status = new Map(); // userId -> chosen status
    this.opts = opts;
    if (opts.seed) this.seed();
  }

  seed() {
    const r = (roomId, name, type, members) => {
      const room = this.room(roomId, { name, type });
      for (const [u, role] of members) room.members.set(u, { role, lastReadSeq: 0 });
      return room;
    };
    r("room-123", "Room 123", "group", [["t1", "owner"]]).open = true;
    r("class-7a", "Class 7A", "class", [["t1", "teacher"], ["s1", "member"], ["s2", "member"]]);
    r("announcements", "Announcements", "announcement", [["t1", "owner"], ["s1", "readonly"], ["s2", "readonly"]]);
    this.post("class-7a", "Welcome to class 7A! Homework is on page 42.", "t1", "Teacher One");
    this.post("announcements", "School closes at noon on Friday.", "t1", "Teacher One");
    this.notify("s1", { category: "assignment", title: "New assignment", body: "Math: exercises 1–10" });
  }

  async start(port = 0) {
    this.http = http.createServer((req, res) => this._http(req, res));
    this.wss = new WebSocketServer({ noServer: true });
    this.http.on("upgrade", (req, socket, head) => {
      const u = new URL(req.url, "http://x");
      if (u.pathname !== "/ws") return socket.destroy();
      const token = u.searchParams.get("token");
      const claims = token ? decodeClaims(token) : null;
      if (!claims || !claims.sub || (claims.exp && claims.exp * 1000 < Date.now())) {
        socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\r\n{"error":{"code":"unauthorized","message":"invalid token"}}');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this._accept(ws, token, claims));
    });
    await new Promise((r) => this.http.listen(port, "127.0.0.1", r));
    const p = this.http.address().port;
    this.origin = `http://127.0.0.1:${p}`;
    this.url = `ws://127.0.0.1:${p}/ws`;
    return this;
  }

  async stop() {
    for (const c of this.conns) c.ws.terminate();
    await new Promise((r) => this.http.close(r));
  }

  _http(req, res) {
    const u = new URL(req.url, "http://x");
    if (u.pathname === "/dev/tokens") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ users: DEMO_USERS.map((x) => ({ ...x, token: makeToken(x.userId, 3600, { name: x.name, roles: x.roles }) })) }));
      return;
    }
    if (!this.opts.serveStatic) {
      res.statusCode = 404;
      return res.end("not found");
    }
    if (u.pathname === "/") {
      // Like the edge: the demo page is the React demo at /kit/ (query kept).
      res.writeHead(302, { location: "/kit/" + u.search });
      return res.end();
    }
    const name = u.pathname.endsWith("/") ? u.pathname.slice(1) + "index.html" : u.pathname.slice(1);
    const file = path.join(STATIC_DIR, path.normalize(name));
    if (!file.startsWith(STATIC_DIR) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.statusCode = 404;
      return res.end("not found");
    }
    res.setHeader("content-type", MIME[path.extname(file)] || "application/octet-stream");
    fs.createReadStream(file).pipe(res);
  }

  room(roomId, init = {}) {
    let r = this.rooms.get(roomId);
    if (!r) this.rooms.set(roomId, (r = { roomId, name: init.name || roomId, type: init.type || "group", members: new Map(), messages: [], byClientMsgId: new Map() }));
    return r;
  }

  _accept(ws, token, claims) {
    const conn = { ws, userId: claims.sub, name: claims.name || claims.sub, token, joined: new Set(), watching: new Set(), id: `c_${++this.connections}` };
    const wasOnline = this._online(conn.userId);
    this.conns.add(conn);
    ws.on("close", () => {
      this.conns.delete(conn);
      if (!this._online(conn.userId)) this._presenceChanged(conn.userId);
    });
    ws.on("message", (raw) => {
      let msg;
      try {
        msg = JSON.parse(String(raw));
      } catch {
        return this.fail(conn, undefined, "bad_request", "malformed JSON");
      }
      this.frames.push({ conn, ...msg });
      this._handle(conn, msg);
    });
    this.send(conn, "connected", { userId: conn.userId, connectionId: conn.id, serverTime: new Date().toISOString(), pingIntervalMs: 25000 });
    if (!wasOnline) this._presenceChanged(conn.userId);
    if (this.onConnect) this.onConnect(conn);
  }

  _online(userId) {
    for (const c of this.conns) if (c.userId === userId) return true;
    return false;
  }

  _presenceOf(userId) {
    if (!this._online(userId)) return "offline";
    const s = this.status.get(userId) || "online";
    return s === "invisible" ? "offline" : s;
  }

  _presenceChanged(userId) {
    const data = { userId, status: this._presenceOf(userId), lastSeenAt: new Date().toISOString() };
    for (const c of this.conns) if (c.watching.has(userId)) this.send(c, "presence", data);
  }

  send(conn, event, data, id) {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ws.send(JSON.stringify(id === undefined ? { event, data } : { event, id, data }));
  }

  ack(conn, id, data) {
    if (id !== undefined) this.send(conn, "ack", data, id);
  }

  fail(conn, id, code, message = code, extra = {}) {
    this.send(conn, "error", { code, message, ...extra }, id);
  }

  /** Store a message as if `senderId` posted it and deliver it live. */
  post(roomId, content, senderId = "other", senderName = senderId, extra = {}) {
    const r = this.room(roomId);
    const m = {
      id: `m_${this.nextId++}`,
      roomId,
      seq: r.messages.length + 1,
      senderId,
      senderName,
      type: "text",
      content,
      clientMsgId: `srv-${this.nextId}`,
      createdAt: new Date().toISOString(),
      editedAt: null,
      deleted: false,
      ...extra,
    };
    r.messages.push(m);
    for (const c of this.conns) {
      if (c.joined.has(roomId)) {
        if (!this.dropLive.has(m.seq)) this.send(c, "chat-message", { message: m });
      } else if (r.members.has(c.userId)) {
        this.send(c, "room-updated", { roomId, lastSeq: m.seq, lastMessage: m });
      }
    }
    return m;
  }

  notify(userId, n) {
    const note = { id: `n_${this.nextId++}`, category: "general", title: "", body: "", data: {}, priority: "normal", requireAck: false, createdAt: new Date().toISOString(), readAt: null, ackedAt: null, expiresAt: null, ...n };
    if (!this.notifications.has(userId)) this.notifications.set(userId, []);
    this.notifications.get(userId).unshift(note);
    for (const c of this.conns) if (c.userId === userId) this.send(c, "notification", { notification: note });
    return note;
  }

  _unreadNotes(userId) {
    return (this.notifications.get(userId) || []).filter((n) => !n.readAt).length;
  }

  _canSee(conn, r) {
    if (r.forbidden) return false;
    if (!this.opts.seed) return true; // test mode: every room is open
    return r.members.has(conn.userId) || !!r.open;
  }

  _handle(conn, { event, data = {}, id }) {
    if (this.rateLimited.has(event)) return this.fail(conn, id, "rate_limited", "slow down", { retryAfterMs: 750 });
    const r = data && data.roomId ? this.rooms.get(data.roomId) || (this.opts.seed ? null : this.room(data.roomId)) : null;
    const needRoom = () => {
      if (!r) {
        this.fail(conn, id, "not_found", "no such room");
        return false;
      }
      if (!this._canSee(conn, r)) {
        this.fail(conn, id, "forbidden", "not a member");
        return false;
      }
      return true;
    };
    switch (event) {
      case "join-chat-room": {
        if (!needRoom()) return;
        if (!r.members.has(conn.userId)) r.members.set(conn.userId, { role: "member", lastReadSeq: 0 });
        conn.joined.add(data.roomId);
        let messages;
        if (data.sinceSeq != null) {
          const from = Math.max(0, data.sinceSeq - this.extraHistoryDupes);
          messages = r.messages.filter((m) => m.seq > from);
        } else {
          messages = r.messages.slice(-(data.limit ?? 50));
        }
        const lastSeq = r.messages.length;
        const mem = r.members.get(conn.userId);
        const hist = () => this.send(conn, "chat-room-history", { roomId: data.roomId, messages, hasMore: data.sinceSeq == null && messages.length > 0 && messages[0].seq > 1 });
        const ack = () => this.ack(conn, id, { roomId: data.roomId, lastSeq, lastReadSeq: mem.lastReadSeq, unread: lastSeq - mem.lastReadSeq });
        if (this.historyFirst) (hist(), ack());
        else (ack(), hist());
        return;
      }
      case "leave-chat-room":
        conn.joined.delete(data.roomId);
        return this.ack(conn, id, { roomId: data.roomId });
      case "send-chat-message": {
        if (!needRoom()) return;
        const role = (r.members.get(conn.userId) || {}).role;
        if (r.type === "announcement" && role !== "owner" && role !== "teacher") return this.fail(conn, id, "forbidden", "read-only room");
        if (!data.clientMsgId) return this.fail(conn, id, "bad_request", "clientMsgId required");
        if (!String(data.content || "").trim()) return this.fail(conn, id, "bad_request", "empty message");
        let m = r.byClientMsgId.get(`${conn.userId}/${data.clientMsgId}`);
        if (!m) {
          m = this.post(data.roomId, String(data.content).trim(), conn.userId, conn.name, { clientMsgId: data.clientMsgId, type: data.type || "text" });
          r.byClientMsgId.set(`${conn.userId}/${data.clientMsgId}`, m);
        }
        if (this.swallowSends > 0) {
          this.swallowSends--;
          return; // stored, but the ack is "lost"
        }
        return this.ack(conn, id, { message: m });
      }
      case "get-chat-room-history": {
        if (!needRoom()) return;
        const limit = Math.min(data.limit ?? 50, 200);
        let msgs;
        if (data.afterSeq != null) msgs = r.messages.filter((m) => m.seq > data.afterSeq).slice(0, limit);
        else if (data.beforeSeq != null) msgs = r.messages.filter((m) => m.seq < data.beforeSeq).slice(-limit);
        else msgs = r.messages.slice(-limit);
        const hasMore = data.afterSeq != null ? msgs.length > 0 && msgs[msgs.length - 1].seq < r.messages.length : msgs.length > 0 && msgs[0].seq > 1;
        return this.ack(conn, id, { roomId: data.roomId, messages: msgs, hasMore });
      }
      case "mark-message-read": {
        if (!needRoom()) return;
        const mem = r.members.get(conn.userId) || { role: "member", lastReadSeq: 0 };
        r.members.set(conn.userId, mem);
        const seq = data.seq ?? (r.messages.find((m) => m.id === data.messageId) || {}).seq ?? 0;
        mem.lastReadSeq = Math.max(mem.lastReadSeq, seq);
        for (const c of this.conns) if (c.joined.has(r.roomId)) this.send(c, "message-read", { roomId: r.roomId, userId: conn.userId, seq: mem.lastReadSeq, readAt: new Date().toISOString() });
        return this.ack(conn, id, { roomId: r.roomId, lastReadSeq: mem.lastReadSeq, unread: r.messages.length - mem.lastReadSeq });
      }
      case "typing":
        if (!needRoom()) return;
        for (const c of this.conns) if (c !== conn && c.userId !== conn.userId && c.joined.has(r.roomId)) this.send(c, "typing", { roomId: r.roomId, userId: conn.userId, isTyping: !!data.isTyping });
        return this.ack(conn, id, {});
      case "edit-chat-message":
      case "delete-chat-message": {
        if (!needRoom()) return;
        const m = r.messages.find((x) => x.id === data.messageId);
        if (!m) return this.fail(conn, id, "not_found", "no such message");
        if (m.senderId !== conn.userId) return this.fail(conn, id, "forbidden", "not your message");
        if (event === "edit-chat-message") {
          m.content = String(data.content || "").trim();
          m.editedAt = new Date().toISOString();
        } else {
          m.deleted = true;
          m.content = "";
        }
        for (const c of this.conns) if (c.joined.has(r.roomId)) this.send(c, "chat-message-updated", { message: m });
        return this.ack(conn, id, { message: m });
      }
      case "list-rooms": {
        const rooms = [...this.rooms.values()]
          .filter((x) => x.members.has(conn.userId) || !this.opts.seed)
          .map((x) => {
            const mem = x.members.get(conn.userId) || { role: "member", lastReadSeq: 0 };
            return { roomId: x.roomId, name: x.name, type: x.type, role: mem.role, lastSeq: x.messages.length, lastReadSeq: mem.lastReadSeq, unread: x.messages.length - mem.lastReadSeq, lastMessage: x.messages[x.messages.length - 1] || null };
          });
        return this.ack(conn, id, { rooms });
      }
      case "open-direct-room": {
        const ids = [conn.userId, data.userId].sort();
        const roomId = `dm-${ids.join("-")}`;
        const room = this.room(roomId, { name: `${ids[0]} ↔ ${ids[1]}`, type: "direct" });
        for (const u of ids) if (!room.members.has(u)) room.members.set(u, { role: "member", lastReadSeq: 0 });
        return this.ack(conn, id, { room: { roomId, name: room.name, type: "direct" } });
      }
      case "list-notifications": {
        let list = this.notifications.get(conn.userId) || [];
        if (data.unreadOnly) list = list.filter((n) => !n.readAt);
        const limit = data.limit ?? 50;
        return this.ack(conn, id, { notifications: list.slice(0, limit), hasMore: list.length > limit, unread: this._unreadNotes(conn.userId) });
      }
      case "mark-notification-read": {
        const now = new Date().toISOString();
        for (const n of this.notifications.get(conn.userId) || []) if (data.all || (data.ids || []).includes(n.id)) n.readAt = n.readAt || now;
        const unread = this._unreadNotes(conn.userId);
        for (const c of this.conns) if (c !== conn && c.userId === conn.userId) this.send(c, "notification-read", data.all ? { all: true, unread } : { ids: data.ids, unread });
        return this.ack(conn, id, { unread });
      }
      case "ack-notification": {
        const n = (this.notifications.get(conn.userId) || []).find((x) => x.id === data.id);
        if (!n) return this.fail(conn, id, "not_found", "no such notification");
        n.ackedAt = n.ackedAt || new Date().toISOString();
        return this.ack(conn, id, { id: n.id, ackedAt: n.ackedAt });
      }
      case "auth-refresh": {
        const claims = decodeClaims(data.token || "");
        if (!claims || claims.sub !== conn.userId) return this.fail(conn, id, "unauthorized", "bad token");
        conn.token = data.token;
        return this.ack(conn, id, {});
      }
      case "subscribe-presence":
        for (const u of data.userIds || []) conn.watching.add(u);
        return this.ack(conn, id, { presence: (data.userIds || []).map((userId) => ({ userId, status: this._presenceOf(userId), lastSeenAt: null })) });
      case "unsubscribe-presence":
        for (const u of data.userIds || []) conn.watching.delete(u);
        return this.ack(conn, id, {});
      case "set-status":
        this.status.set(conn.userId, data.status);
        this._presenceChanged(conn.userId);
        return this.ack(conn, id, { status: data.status });
      case "slow":
        return; // never answered (timeout tests)
      default:
        return this.fail(conn, id, "unknown_event", `unknown event ${event}`);
    }
  }

  framesOf(event) {
    return this.frames.filter((f) => f.event === event);
  }

  closeAll(code, reason = "") {
    for (const c of this.conns) c.ws.close(code, reason);
  }

  terminateAll() {
    for (const c of this.conns) c.ws.terminate();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const port = Number(process.argv[2] || 8090);
  const edge = await new FakeEdge({ seed: true, serveStatic: true }).start(port);
  console.log(`fake edge: ${edge.origin}/  (ws ${edge.url}, tokens ${edge.origin}/dev/tokens)`);
  // a little life in the demo
  let n = 0;
  setInterval(() => {
    n++;
    if (n % 4 === 0) edge.notify(DEMO_USERS[1 + (n % 2)].userId, { category: "reminder", title: "Reminder", body: `Quiz tomorrow (#${n})` });
    if (n % 3 === 0) edge.post("class-7a", `Automated hint #${n}`, "svc:lms", "LMS", { type: "system" });
  }, 15000).unref?.();
}

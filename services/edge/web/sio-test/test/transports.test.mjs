// Socket.IO transports (docs/socketio.md): the real socket.io-client with its default
// options (HTTP long-polling, then the upgrade to WebSocket), polling only, WebSocket
// only, a polling session that never upgrades, and a session request the edge does
// not know (another edge's, or a stale one), from which the client recovers with a
// fresh handshake. Run by scripts/siotest.sh against a real `talim dev`.
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import http from "node:http";
import { io } from "socket.io-client";

const BASE = process.env.TALIM_E2E_URL;
const skip = BASE ? false : "set TALIM_E2E_URL (e.g. http://127.0.0.1:8080) to run against a real stack";
const TALIM = process.env.TALIM_E2E_TALIM || "talim";
const GRPC = process.env.TALIM_E2E_GRPC || process.env.TALIM_GRPC_ADDR || "";
const ROOM = "room-123";
const MARK = `sio-tr-${process.pid.toString(36)}-${Date.now().toString(36)}`; // base 36: a long digit run reads as a phone number to the content rules
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(pred, { timeout = 10000, interval = 20, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function tokenOf(userId) {
  const res = await fetch(new URL("/dev/tokens", BASE));
  assert.equal(res.status, 200, "GET /dev/tokens (is the edge in development mode?)");
  const u = (await res.json()).users.find((x) => x.userId === userId);
  assert.ok(u, `no demo user ${userId}`);
  return u.token;
}

function run(args) {
  return new Promise((resolve, reject) => {
    execFile(TALIM, args, { env: process.env, timeout: 20000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${TALIM} ${args[0]}: ${err.message}\n${stderr}`));
      else resolve(String(stdout).trim());
    });
  });
}

const sockets = [];
function track(s) {
  sockets.push(s);
  return s;
}
after(() => {
  for (const s of sockets) s.disconnect();
});

function once(socket, event, timeout = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeout} ms`)), timeout);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

async function connected(socket) {
  if (!socket.connected) await once(socket, "connect");
  return socket;
}

/** Chat both ways and a notification over socket s (user s1), with t1 as the peer. */
async function chatAndNotify(s, label) {
  const t1 = await connected(track(io(BASE, { auth: { token: await tokenOf("t1") }, transports: ["websocket"] })));
  const join = await s.timeout(5000).emitWithAck("join-chat-room", { roomId: ROOM, limit: 1 });
  assert.equal(join.error, undefined, JSON.stringify(join));
  assert.equal(join.roomId, ROOM);
  assert.equal((await t1.timeout(5000).emitWithAck("join-chat-room", { roomId: ROOM, limit: 1 })).roomId, ROOM);
  const got = [];
  s.on("chat-message", ({ message }) => got.push(message));
  // Received: a message from t1.
  const fromT1 = await t1.timeout(5000).emitWithAck("send-chat-message", { roomId: ROOM, content: `${MARK} ${label} from t1`, clientMsgId: `${MARK}-${label}-t1` });
  assert.equal(fromT1.error, undefined, JSON.stringify(fromT1));
  await waitFor(() => got.some((m) => m.id === fromT1.message.id), { what: `${label}: t1's chat-message` });
  // Sent: with an ack (emitWithAck with a timeout) ...
  const mine = await s.timeout(5000).emitWithAck("send-chat-message", { roomId: ROOM, content: `${MARK} ${label} from s1`, clientMsgId: `${MARK}-${label}-s1` });
  assert.equal(mine.error, undefined, JSON.stringify(mine));
  assert.equal(mine.message.senderId, "s1");
  await waitFor(() => got.some((m) => m.id === mine.message.id), { what: `${label}: own chat-message` });
  // ... and as a volatile emit without ack, which the edge accepts like any other.
  const tGot = [];
  t1.on("chat-message", ({ message }) => tGot.push(message));
  s.volatile.emit("send-chat-message", { roomId: ROOM, content: `${MARK} ${label} volatile`, clientMsgId: `${MARK}-${label}-v` });
  await waitFor(() => tGot.some((m) => m.content === `${MARK} ${label} volatile`), { what: `${label}: volatile emit delivered` });
  // A notification created through the gRPC API.
  if (process.env.TALIM_DATA_DIR) {
    const note = once(s, "notification", 15000);
    const title = `${MARK} ${label} notice`;
    const args = ["notify", "--to", "s1", "--title", title, "--body", label];
    if (GRPC) args.push("--addr", GRPC);
    await run(args);
    const [{ notification }] = await note;
    assert.equal(notification.title, title);
  }
  t1.disconnect();
}

describe("socket.io-client transports", { skip }, () => {
  test("default options: connects over polling, upgrades to websocket, chats and gets notifications", async () => {
    // Exactly what the migration guide asks of a frontend: the URL and the token.
    const s = track(io(BASE, { auth: { token: await tokenOf("s1") } }));
    const transports = [];
    s.io.on("open", () => transports.push(s.io.engine.transport.name));
    const upgraded = new Promise((resolve) => s.io.engine?.once?.("upgrade", resolve) ?? resolve());
    const [greeting] = await once(s, "connected");
    await connected(s);
    assert.equal(greeting.userId, "s1");
    assert.equal(s.id, greeting.connectionId);
    assert.deepEqual(transports, ["polling"], "the first transport of the default options is polling");
    await waitFor(() => s.io.engine.transport.name === "websocket", { what: "the upgrade to websocket" });
    await upgraded;
    assert.equal(s.id, greeting.connectionId, "the upgrade keeps the same socket");
    await chatAndNotify(s, "default");
    assert.equal(s.io.engine.transport.name, "websocket");
  });

  test('transports: ["polling"] only: a session that never upgrades chats and gets notifications', async () => {
    const s = track(io(BASE, { auth: { token: await tokenOf("s1") }, transports: ["polling"] }));
    await connected(s);
    assert.equal(s.io.engine.transport.name, "polling");
    await chatAndNotify(s, "polling");
    assert.equal(s.io.engine.transport.name, "polling", "never upgraded");
    // The ping/pong of Engine.IO runs over polling too: the session outlives a ping.
    const ping = once(s.io.engine, "ping", 40000);
    await ping;
    assert.ok(s.connected);
  });

  test('transports: ["websocket"]', async () => {
    const s = track(io(BASE, { auth: { token: await tokenOf("s1") }, transports: ["websocket"] }));
    await connected(s);
    assert.equal(s.io.engine.transport.name, "websocket");
    await chatAndNotify(s, "websocket");
  });

  test("a poll for a session this edge does not hold: the client makes a fresh handshake", async () => {
    // A proxy in front of the edge forwards every request, except that it swaps the
    // sid of one GET for a session of another edge, as a load balancer without
    // affinity would. The edge answers 400 naming the problem; socket.io-client sees a
    // transport error and reconnects with a new handshake.
    const target = new URL(BASE);
    let swapped = null;
    let body400 = null;
    let polls = 0;
    const proxy = http.createServer((req, res) => {
      const u = new URL(req.url, BASE);
      if (req.method === "GET" && u.searchParams.get("sid") && ++polls === 3 && !swapped) {
        swapped = u.searchParams.get("sid");
        u.searchParams.set("sid", `edge-elsewhere~${swapped.slice(swapped.lastIndexOf("~") + 1)}`);
      }
      const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: u.pathname + u.search, headers: req.headers }, (r) => {
        if (r.statusCode === 400 && swapped && body400 === null) {
          const chunks = [];
          r.on("data", (c) => chunks.push(c));
          r.on("end", () => {
            body400 = Buffer.concat(chunks).toString();
            res.writeHead(400, r.headers);
            res.end(body400);
          });
          return;
        }
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
      up.on("error", () => res.destroy());
    });
    await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${proxy.address().port}`;
      const s = track(io(url, { auth: { token: await tokenOf("s2") }, transports: ["polling"], reconnectionDelay: 100, reconnectionDelayMax: 500 }));
      await connected(s);
      const first = s.id;
      const reasons = [];
      s.on("disconnect", (r) => reasons.push(r));
      // Events keep the polls going until the proxy swapped one.
      await waitFor(async () => {
        if (s.connected) await s.timeout(2000).emitWithAck("ping", {}).catch(() => {});
        return body400 !== null;
      }, { timeout: 20000, what: "the swapped poll" });
      assert.match(body400, /unknown session id|held by edge/, body400);
      await waitFor(() => s.connected && s.id !== first, { timeout: 15000, what: "the reconnect with a fresh handshake" });
      assert.ok(reasons.includes("transport error"), `disconnect reasons ${reasons}`);
      const pong = await s.timeout(5000).emitWithAck("ping", {});
      assert.equal(pong.error, undefined, JSON.stringify(pong));
      s.disconnect();
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  });

  test("polling refusals are readable cross-origin: CORS with credentials for the page's origin", async () => {
    const origin = new URL(BASE).origin;
    const res = await fetch(new URL("/socket.io/?EIO=4&transport=polling", BASE), { headers: { Origin: origin } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), origin);
    assert.equal(res.headers.get("access-control-allow-credentials"), "true");
    const open = JSON.parse((await res.text()).slice(1));
    assert.deepEqual(open.upgrades, ["websocket"]);
    const bad = await fetch(new URL("/socket.io/?EIO=4&transport=polling", BASE), { headers: { Origin: "https://evil.example" } });
    assert.equal(bad.status, 403);
  });
});

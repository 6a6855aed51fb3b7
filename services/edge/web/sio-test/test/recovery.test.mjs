// Socket.IO connection state recovery (docs/socketio.md, "Connection state recovery")
// with the real socket.io-client against a real stack: the transport drops, messages
// are sent meanwhile, the client reconnects on its own and gets socket.recovered,
// the missed chat-message events once each in order, and its room back.
// scripts/siotest.sh runs this file (see socketio.test.mjs for running it by hand).
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";

const BASE = process.env.TALIM_E2E_URL;
const skip = BASE ? false : "set TALIM_E2E_URL (e.g. http://127.0.0.1:8080) to run against a real stack";
const ROOM = "room-123";
const MARK = `sio-rec-${process.pid}-${Date.now()}`;
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

const sockets = [];
function open(opts) {
  const s = io(BASE, { forceNew: true, ...opts });
  sockets.push(s);
  return s;
}

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

after(() => {
  for (const s of sockets) s.disconnect();
});

for (const [label, transports] of [["websocket", ["websocket"]], ["default options (polling, then upgrade)", undefined]]) {
  describe(`connection state recovery, ${label}`, { skip }, () => {
    test("a dropped transport recovers: socket.recovered, missed messages once in order, room joined again", async () => {
      const mark = `${MARK}-${transports ? "ws" : "default"}`;
      const opts = transports ? { transports } : {};
      const s1 = await connected(open({ ...opts, auth: { token: await tokenOf("s1") }, reconnectionDelay: 300, reconnectionDelayMax: 300 }));
      const t1 = await connected(open({ transports: ["websocket"], reconnection: false, auth: { token: await tokenOf("t1") } }));
      assert.equal(s1.recovered, false, "a first connection is not recovered");
      if (!transports) await waitFor(() => s1.io.engine.transport.name === "websocket", { what: "upgrade to websocket" });

      const joined = await s1.emitWithAck("join-chat-room", { roomId: ROOM, limit: 1 });
      assert.equal(joined.roomId, ROOM, JSON.stringify(joined));
      const got = [];
      s1.on("chat-message", ({ message }, offset) => {
        if (String(message.content).startsWith(mark)) got.push({ content: message.content, seq: message.seq, offset });
      });
      const send = async (n) => {
        const r = await t1.emitWithAck("send-chat-message", { roomId: ROOM, content: `${mark} ${n}`, clientMsgId: `${mark}-${n}` });
        assert.equal(r.error, undefined, JSON.stringify(r));
        return r.message;
      };
      const first = await send(0);
      await waitFor(() => got.length === 1, { what: "the live message before the drop" });
      assert.equal(got[0].offset, `${first.seq}:${ROOM}`, "chat-message carries its recovery offset");

      const gone = once(s1, "disconnect");
      s1.io.engine.close(); // the transport drops (as in socket.io's own recovery tests); the Manager reconnects by itself
      const [reason] = await gone;
      assert.equal(reason, "forced close");
      const missed = [await send(1), await send(2), await send(3)];
      await once(s1, "connect");
      assert.equal(s1.recovered, true, "socket.recovered after reconnecting within the window");

      await waitFor(() => got.length >= 4, { what: "the missed messages" });
      const later = await send(4);
      await waitFor(() => got.length >= 5, { what: "a live message after recovery (room joined again)" });
      await s1.emitWithAck("ping", {}); // anything still queued arrives before this ack
      assert.deepEqual(got.map((m) => m.seq), [first.seq, ...missed.map((m) => m.seq), later.seq], "each message once, in order");
      assert.deepEqual(got.map((m) => m.content), [0, 1, 2, 3, 4].map((n) => `${mark} ${n}`));
    });
  });
}

describe("connection state recovery refusals", { skip }, () => {
  test("socket.disconnect() then connect() is a fresh session", async () => {
    const s = await connected(open({ transports: ["websocket"], auth: { token: await tokenOf("s2") } }));
    s.disconnect();
    s.connect();
    await once(s, "connect");
    assert.equal(s.recovered, false);
  });
});

// Socket.IO v4 compatibility (PROTOCOL.md §8): the real socket.io-client against a
// real stack's edge at /socket.io/. scripts/siotest.sh starts `talim dev` on spare
// ports and runs this file; by hand, against a running `talim dev`:
//   TALIM_E2E_URL=http://127.0.0.1:8080 TALIM_DATA_DIR=../../../../data TALIM_E2E_TALIM=../../../../bin/talim \
//     TALIM_E2E_GRPC=127.0.0.1:9090 node --test test/
// Needs development mode (GET /dev/tokens) with the demo users t1 (teacher), s1, s2 and
// the seeded rooms room-123 (open) and announcements. Safe to run again against the same
// stack: messages carry a per-run marker.
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { io } from "socket.io-client";

const BASE = process.env.TALIM_E2E_URL;
const skip = BASE ? false : "set TALIM_E2E_URL (e.g. http://127.0.0.1:8080) to run against a real stack";
const TALIM = process.env.TALIM_E2E_TALIM || "talim";
const GRPC = process.env.TALIM_E2E_GRPC || process.env.TALIM_GRPC_ADDR || "";
const ROOM = "room-123";
const MARK = `sio-${process.pid.toString(36)}-${Date.now().toString(36)}`; // base 36: a long digit run reads as a phone number to the content rules
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(pred, { timeout = 10000, interval = 20, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The demo users from GET /dev/tokens (fresh 24 h tokens on every call). */
async function devUsers() {
  const res = await fetch(new URL("/dev/tokens", BASE));
  assert.equal(res.status, 200, "GET /dev/tokens (is the edge in development mode?)");
  const body = await res.json();
  return Object.fromEntries(body.users.map((u) => [u.userId, u]));
}

async function tokenOf(userId) {
  const u = (await devUsers())[userId];
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

let talimWorks;
async function needTalim(t) {
  if (talimWorks === undefined) talimWorks = await run(["version"]).then(() => Boolean(process.env.TALIM_DATA_DIR), () => false);
  if (!talimWorks) t.skip("needs the talim binary (TALIM_E2E_TALIM) and TALIM_DATA_DIR of the running stack");
  return talimWorks;
}

const sockets = [];
/** A socket.io-client socket exactly as a migrated frontend opens it. */
function open(opts = {}) {
  const s = io(BASE, { transports: ["websocket"], reconnection: false, ...opts });
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

function marked(list) {
  return list.filter((m) => String(m.content).startsWith(MARK));
}

after(() => {
  for (const s of sockets) s.disconnect();
});

describe("socket.io-client v4 compatibility", { skip }, () => {
  test("connects with auth: {token} and gets the native greeting as an event", async () => {
    const s = open({ auth: { token: await tokenOf("s1") } });
    const [greeting] = await once(s, "connected");
    await connected(s);
    assert.equal(greeting.userId, "s1");
    assert.equal(s.id, greeting.connectionId, "socket.id is the edge's connection id");
    assert.equal(typeof greeting.pingIntervalMs, "number");
  });

  test("is refused without a token: connect_error with the reason", async () => {
    const s = open({ auth: {} });
    const [err] = await once(s, "connect_error");
    assert.match(err.message, /^unauthorized: missing token/);
    const bad = open({ auth: { token: "not-a-jwt" } });
    const [err2] = await once(bad, "connect_error");
    assert.equal(err2.message, "unauthorized: invalid token");
    assert.equal(bad.connected, false);
  });

  test("join with an ack callback, then send and receive chat-message", async () => {
    const s1 = await connected(open({ auth: { token: await tokenOf("s1") } }));
    const t1 = await connected(open({ auth: { token: await tokenOf("t1") } }));
    // A message first, so that the room has a lastSeq whatever the stack's state.
    const seed = await t1.emitWithAck("send-chat-message", { roomId: ROOM, content: `${MARK} seed`, clientMsgId: `${MARK}-seed` });
    assert.equal(seed.error, undefined, JSON.stringify(seed));
    const history = once(s1, "chat-room-history");
    // The classic callback style of the original frontend.
    const ack = await new Promise((resolve) => s1.emit("join-chat-room", { roomId: ROOM, limit: 5 }, resolve));
    assert.equal(ack.roomId, ROOM);
    assert.ok(ack.lastSeq >= seed.message.seq, JSON.stringify(ack));
    assert.equal(typeof ack.unread, "number");
    const [h] = await history;
    assert.equal(h.roomId, ROOM);
    assert.ok(h.messages.some((m) => m.id === seed.message.id), "history holds the seed message");
    assert.ok((await t1.emitWithAck("join-chat-room", { roomId: ROOM })).lastSeq >= 0);

    const gotS1 = [];
    const gotT1 = [];
    s1.on("chat-message", ({ message }) => gotS1.push(message));
    t1.on("chat-message", ({ message }) => gotT1.push(message));
    const content = `${MARK} hello from socket.io`;
    const sent = await s1.emitWithAck("send-chat-message", { roomId: ROOM, content, clientMsgId: `${MARK}-1` });
    assert.equal(sent.error, undefined, JSON.stringify(sent));
    assert.equal(sent.message.content, content);
    assert.equal(sent.message.senderId, "s1");
    assert.ok(sent.message.seq > ack.lastSeq);
    await waitFor(() => marked(gotS1).length === 1 && marked(gotT1).length === 1, { what: "chat-message on both sockets" });
    assert.equal(marked(gotT1)[0].id, sent.message.id);
    // Retrying with the same clientMsgId returns the original message.
    const again = await s1.emitWithAck("send-chat-message", { roomId: ROOM, content, clientMsgId: `${MARK}-1` });
    assert.equal(again.message.id, sent.message.id);
  });

  test("error ack for a forbidden room; error event without an ack", async () => {
    const s1 = await connected(open({ auth: { token: await tokenOf("s1") } }));
    const res = await s1.emitWithAck("send-chat-message", { roomId: "announcements", content: `${MARK} nope`, clientMsgId: `${MARK}-x` });
    assert.equal(res.error?.code, "forbidden", JSON.stringify(res));
    assert.equal(typeof res.error.message, "string");
    const bad = await s1.emitWithAck("join-chat-room", {});
    assert.equal(bad.error?.code, "bad_request");
    const errEvent = once(s1, "error");
    s1.emit("no-such-event", {});
    const [e] = await errEvent;
    assert.equal(e.code, "unknown_event");
  });

  test("receives a notification created through the gRPC API (talim notify)", async (t) => {
    if (!(await needTalim(t))) return;
    const s1 = await connected(open({ auth: { token: await tokenOf("s1") } }));
    const got = once(s1, "notification", 15000);
    const title = `${MARK} notice`;
    const args = ["notify", "--to", "s1", "--title", title, "--body", "from the socket.io test"];
    if (GRPC) args.push("--addr", GRPC);
    await run(args);
    const [{ notification }] = await got;
    assert.equal(notification.title, title);
    assert.equal(notification.body, "from the socket.io test");
  });

  for (const transports of [["websocket"], ["polling"]]) test(`server-side close (token expiry, 4001) on ${transports}: reconnects with a fresh token and resumes with sinceSeq`, async (t) => {
    if (!(await needTalim(t))) return;
    const u = (await devUsers()).s2;
    // The first token expires in 3 s: the edge then closes the socket (4001), which
    // socket.io-client sees as a transport close and reconnects; the auth callback
    // hands out a fresh token for every later attempt.
    const short = await run(["token", "--user", "s2", "--name", u.name, "--ttl", "3s"]);
    let authCalls = 0;
    const auth = (cb) => {
      authCalls++;
      if (authCalls === 1) cb({ token: short });
      else tokenOf("s2").then((token) => cb({ token }));
    };
    const s2 = open({ auth, transports, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 });
    const seen = new Map(); // seq → message (live and replayed)
    let lastSeq = 0;
    const keep = (m) => {
      if (m.roomId !== ROOM) return;
      seen.set(m.seq, m);
      lastSeq = Math.max(lastSeq, m.seq);
    };
    s2.on("chat-message", ({ message }) => keep(message));
    s2.on("chat-room-history", ({ messages }) => messages.forEach(keep));
    const reasons = [];
    s2.on("disconnect", (reason) => reasons.push(reason));
    let joins = 0;
    // The resume logic of a migrated frontend: (re-)join on every connect, with
    // sinceSeq once we hold messages.
    s2.on("connect", async () => {
      const req = lastSeq > 0 ? { roomId: ROOM, sinceSeq: lastSeq } : { roomId: ROOM, limit: 1 };
      const ack = await s2.emitWithAck("join-chat-room", req);
      assert.equal(ack.error, undefined, JSON.stringify(ack));
      if (lastSeq === 0) lastSeq = ack.lastSeq;
      joins++;
    });
    await waitFor(() => joins === 1, { what: "first join" });
    const firstSocketId = s2.id;

    // Another client keeps sending while s2 is closed and reconnects.
    const t1 = await connected(open({ auth: { token: await tokenOf("t1") } }));
    const sentSeqs = [];
    let sending = true;
    const sender = (async () => {
      for (let i = 0; sending; i++) {
        const r = await t1.emitWithAck("send-chat-message", { roomId: ROOM, content: `${MARK} resume ${i}`, clientMsgId: `${MARK}-${transports}-r${i}` });
        assert.equal(r.error, undefined, JSON.stringify(r));
        sentSeqs.push(r.message.seq);
        await sleep(100);
      }
    })();
    await waitFor(() => joins >= 2, { timeout: 15000, what: "the reconnect and second join" });
    await sleep(500); // a few more messages after the resume
    sending = false;
    await sender;
    await waitFor(() => sentSeqs.every((q) => seen.has(q)), { timeout: 5000, what: "every sent message" }).catch(() => {});

    assert.ok(reasons.includes("transport close"), `disconnect reasons ${reasons}: a server close must not be "io server disconnect"`);
    assert.notEqual(s2.id, firstSocketId, "a new connection");
    assert.ok(authCalls >= 2, "the auth callback gave a fresh token");
    const missing = sentSeqs.filter((q) => !seen.has(q));
    assert.deepEqual(missing, [], `messages lost across the reconnect: seqs ${missing}`);
    const first = Math.min(...sentSeqs);
    for (let q = first; q <= Math.max(...sentSeqs); q++) assert.ok(seen.has(q), `gap at seq ${q}`);
  });

  test("other namespaces get connect_error", async () => {
    const token = await tokenOf("s1");
    const s = io(`${BASE}/admin`, { transports: ["websocket"], reconnection: false, auth: { token } });
    sockets.push(s);
    const [err] = await once(s, "connect_error");
    assert.equal(err.message, "Invalid namespace");
  });
});

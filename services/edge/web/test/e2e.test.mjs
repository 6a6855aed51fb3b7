// End-to-end tests of talim-client.js against a real stack (`talim dev`).
// scripts/jstest.sh (make jstest) starts one and runs these; by hand:
//   TALIM_E2E_URL=http://127.0.0.1:8080 TALIM_DATA_DIR=../../../data TALIM_E2E_TALIM=../../../bin/talim \
//     node --test test/e2e.test.mjs
// Needs the edge in development mode (GET /dev/tokens) with the demo users t1 (teacher),
// s1, s2 and the seeded rooms room-123 (open), class-7a, announcements. The tests that
// need short-lived tokens or notifications run the talim binary (TALIM_E2E_TALIM, else
// `talim` on PATH: `talim token`, `talim notify`) with TALIM_DATA_DIR pointing at the
// stack's data directory (for its secrets) and TALIM_GRPC_ADDR at its gRPC listener.
//
// Every test is safe to run again against the same stack: messages carry a per-run marker.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { WebSocket } from "ws";
import { TalimClient, TalimError, computeBackoff, decodeJwtPayload } from "../static/talim-client.js";

const BASE = process.env.TALIM_E2E_URL;
const skip = BASE ? false : "set TALIM_E2E_URL (e.g. http://127.0.0.1:8080) to run against a real stack";
const TALIM = process.env.TALIM_E2E_TALIM || "talim";
const ROOM = "room-123";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const silent = { log() {}, warn() {}, error() {} };

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
  const users = await devUsers();
  assert.ok(users[userId], `no demo user ${userId}`);
  return users[userId].token;
}

function run(args) {
  return new Promise((resolve, reject) => {
    execFile(TALIM, args, { env: process.env, timeout: 20000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${TALIM} ${args[0]}: ${err.message}\n${stderr}`));
      else resolve(String(stdout).trim());
    });
  });
}

/** A token signed by `talim token` with the stack's secret, valid for ttl (e.g. "3s"). */
async function shortToken(userId, ttl) {
  const u = (await devUsers())[userId];
  return run(["token", "--user", userId, "--name", u.name, "--roles", u.roles.join(","), "--ttl", ttl]);
}

let talimWorks;
async function needTalim(t) {
  if (talimWorks === undefined) talimWorks = await run(["version"]).then(() => Boolean(process.env.TALIM_DATA_DIR), () => false);
  if (!talimWorks) t.skip(`needs the talim binary (TALIM_E2E_TALIM) and TALIM_DATA_DIR of the running stack`);
  return talimWorks;
}

const clients = [];
function makeClient(userId, opts = {}) {
  const c = new TalimClient({
    url: BASE,
    getToken: () => tokenOf(userId),
    WebSocket,
    logger: process.env.TALIM_E2E_DEBUG ? console : silent,
    debug: process.env.TALIM_E2E_DEBUG ? true : false,
    ...opts,
  });
  clients.push(c);
  return c;
}

/** Collect the room's messages whose content carries this run's marker. */
function collect(client, marker, roomId = ROOM) {
  const got = [];
  client.onChatMessage((m, meta) => {
    if (m.roomId === roomId && String(m.content).startsWith(marker)) got.push({ ...m, replayed: meta.replayed });
  });
  return got;
}

function assertNoGapNoDup(list, label) {
  const ids = list.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, `${label}: duplicate message ids`);
  const seqs = list.map((m) => m.seq);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `${label}: out of order ${seqs[i - 1]} → ${seqs[i]}`);
}

/** A raw socket for protocol conformance checks (no client logic in between). */
async function rawSocket(token) {
  const ws = new WebSocket(`${BASE.replace(/^http/, "ws")}/ws?token=${encodeURIComponent(token)}`);
  const frames = [];
  const waiters = new Set();
  ws.on("message", (d) => {
    const f = JSON.parse(String(d));
    frames.push(f);
    for (const w of waiters) w();
  });
  await new Promise((res, rej) => {
    ws.once("open", res);
    ws.once("error", rej);
  });
  let id = 0;
  return {
    ws,
    frames,
    async request(event, data) {
      const myId = ++id;
      ws.send(JSON.stringify({ event, id: myId, data }));
      await waitFor(() => frames.some((f) => f.id === myId), { timeout: 5000, what: `answer to ${event}` });
      return frames.find((f) => f.id === myId);
    },
    close: () => ws.close(),
  };
}

describe("e2e against a running stack", { skip }, () => {
  const marker = `e2e-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}:`;
  let a; // teacher t1
  let b; // student s1

  before(async () => {
    a = makeClient("t1");
    b = makeClient("s1", { reconnect: { initialMs: 400, maxMs: 800, factor: 2 }, random: () => 0.99 });
    await Promise.all([a.connect(), b.connect()]);
  });

  after(() => {
    for (const c of clients) c.disconnect();
  });

  test("two clients chat in room-123; acks resolve with the stored message", async () => {
    const gotA = collect(a, marker);
    const gotB = collect(b, marker);
    const [ja, jb] = await Promise.all([a.joinRoom(ROOM), b.joinRoom(ROOM)]);
    assert.equal(ja.roomId, ROOM);
    assert.equal(typeof jb.lastSeq, "number");
    const m = await a.sendMessage(ROOM, `${marker} hello from t1`);
    assert.equal(m.roomId, ROOM);
    assert.equal(m.senderId, "t1");
    assert.equal(m.senderName, "Ms. Amina Yusuf", "senderName comes from the token");
    assert.ok(m.seq >= 1 && m.clientMsgId);
    await waitFor(() => gotB.some((x) => x.id === m.id), { what: "B receives A's message" });
    const r = await b.sendMessage(ROOM, `${marker} hi from s1`);
    await waitFor(() => gotA.some((x) => x.id === r.id), { what: "A receives B's message" });
    assert.ok(r.seq > m.seq);
    // the sender sees its own message once (ack + live event deduplicated)
    await waitFor(() => gotA.some((x) => x.id === m.id), { what: "A sees its own message" });
    assert.equal(gotA.filter((x) => x.id === m.id).length, 1);
  });

  // Reconnect with backoff against the real edge: the first three attempts present a
  // token the edge refuses (HTTP 401 before the upgrade, a failed WebSocket for the
  // client; the pre-flight GET tells the client why, and it asks getToken for another),
  // the fourth a valid one. With random() = 0.99 the full-jitter delays are
  // deterministic: 0.99 · min(maxMs, initialMs · 2^n).
  test("reconnect with backoff: refused attempts back off exponentially, then connect; the backoff resets once stable", async () => {
    const ro = { initialMs: 100, maxMs: 1000, factor: 2 };
    let calls = 0;
    const good = await tokenOf("s2");
    const c = makeClient("s2", {
      reconnect: ro,
      random: () => 0.99,
      stableAfterMs: 300,
      getToken: async () => (++calls <= 3 ? `not-a-jwt-${calls}` : good),
    });
    const log = [];
    c.on("reconnecting", (r) => log.push({ kind: "reconnecting", at: Date.now(), ...r }));
    c.on("status", (s) => log.push({ kind: s, at: Date.now() }));
    c.on("close", (e) => log.push({ kind: "close", at: Date.now(), code: e.code }));
    const t0 = Date.now();
    await c.connect();
    assert.equal(c.status, "connected");
    const rec = log.filter((e) => e.kind === "reconnecting");
    assert.deepEqual(rec.map((r) => r.attempt), [1, 2, 3]);
    assert.deepEqual(rec.map((r) => r.delayMs), [0, 1, 2].map((n) => computeBackoff(n, ro, () => 0.99)));
    assert.deepEqual(rec.map((r) => r.delayMs), [99, 198, 396]);
    // each attempt waited its delay: from one "connecting" to the next at least delayMs.
    // (Not from the "reconnecting" event: Node schedules timers from the event loop's
    // cached clock, so under load a timer can fire a few ms "early" measured that way.)
    const connecting = log.filter((e) => e.kind === "connecting");
    assert.equal(connecting.length, 4);
    for (const [i, r] of rec.entries()) {
      const gap = connecting[i + 1].at - connecting[i].at;
      assert.ok(gap >= r.delayMs, `attempt ${r.attempt} came ${gap} ms after the previous one, < ${r.delayMs}: ${JSON.stringify(log.map((e) => [e.kind, e.at - t0, e.delayMs ?? e.code ?? ""]))}`);
    }
    assert.ok(Date.now() - t0 >= 99 + 198 + 396 - 5);
    assert.deepEqual(log.filter((e) => e.kind === "close").map((e) => e.code), [1006, 1006, 1006], "refused upgrades look like 1006");

    // Stable for stableAfterMs: the attempt counter is back to 0 (a network drop).
    const session = c.session.connectionId;
    await sleep(450); // > stableAfterMs: the behaviour under test is time-based
    log.length = 0;
    c.ws.terminate();
    await waitFor(() => c.status === "connected" && c.session.connectionId !== session, { what: "reconnect after a network drop" });
    assert.deepEqual(log.filter((e) => e.kind === "reconnecting").map((e) => [e.attempt, e.delayMs]), [[1, 99]], "backoff reset after a stable connection");

    // A real server-side close that retrying cannot fix (docs/protocol.md, Close codes):
    // a frame over the edge's 64 KiB inbound limit is answered with close 1009, and the
    // client stops in error instead of sending it again.
    log.length = 0;
    c.ws.send(JSON.stringify({ event: "ping", data: { pad: "x".repeat(70 * 1024) } }));
    await waitFor(() => c.status === "error", { what: "error after 1009" });
    assert.deepEqual(log.filter((e) => e.kind === "close").map((e) => e.code), [1009]);
    assert.deepEqual(log.filter((e) => e.kind === "reconnecting"), [], "no reconnect after 1009");
    c.disconnect();
  });

  // Resume after a real server-side close: s1's token lives 3 s and its token provider
  // has nothing newer until the connection is gone, so the edge closes the socket with
  // 4001 at exp; the client then gets a fresh token from getToken, reconnects after its
  // backoff and re-joins with sinceSeq while t1 keeps sending.
  test("server closes the socket (4001 token expiry): reconnect with a fresh token, resume without gaps or duplicates", async (t) => {
    if (!(await needTalim(t))) return;
    const short = await shortToken("s1", "3s");
    let closed4001 = false;
    const tokens = [];
    const c = makeClient("s1", {
      reconnect: { initialMs: 400, maxMs: 800, factor: 2 },
      random: () => 0.99,
      getToken: async () => {
        const tok = closed4001 ? await tokenOf("s1") : short;
        tokens.push(tok === short ? "short" : "fresh");
        return tok;
      },
    });
    const closes = [];
    c.on("close", (e) => {
      closes.push(e.code);
      if (e.code === 4001) closed4001 = true;
    });
    const got = collect(c, marker);
    await c.connect();
    const first = c.session.connectionId;
    await c.joinRoom(ROOM);
    const expMs = decodeJwtPayload(short).exp * 1000;
    const sent = [];
    // t1 sends every 150 ms from now until well after the expiry
    while (Date.now() < expMs + 1500) {
      sent.push(await a.sendMessage(ROOM, `${marker} resume ${sent.length}`));
      await sleep(150);
    }
    await waitFor(() => c.status === "connected" && c.session.connectionId !== first, { what: "s1 reconnects" });
    await waitFor(() => sent.every((s) => got.some((x) => x.id === s.id)), { what: "s1 has every message t1 sent" });
    assert.deepEqual(closes, [4001], "the edge closed the connection with 4001 at exp");
    assert.equal(tokens[0], "short");
    assert.equal(tokens[tokens.length - 1], "fresh", "reconnected with the fresh token");
    await sleep(300); // a duplicate would show up by now
    const mine = got.filter((x) => x.content.includes(" resume "));
    assertNoGapNoDup(mine, "s1");
    assert.deepEqual(mine.map((x) => x.id), sent.map((s) => s.id), "every message once, in order");
    assert.ok(mine.some((x) => x.replayed), "messages sent while s1 was offline came back with the resume");
    const seqs = mine.map((x) => x.seq);
    assert.equal(seqs[seqs.length - 1] - seqs[0], seqs.length - 1, "t1's seqs are contiguous in s1's view");
    c.disconnect();
  });

  test("auth-refresh via getToken keeps the connection open past the first token's expiry", async (t) => {
    if (!(await needTalim(t))) return;
    let n = 0;
    const c = makeClient("s2", { getToken: async () => (n++, shortToken("s2", "3s")) });
    const closes = [];
    const refreshed = [];
    c.on("close", (e) => closes.push(e.code));
    c.on("token-refreshed", () => refreshed.push(Date.now()));
    await c.connect();
    const first = c.session.connectionId;
    const exp = decodeJwtPayload(c.currentToken).exp * 1000;
    await waitFor(() => Date.now() > exp + 1000, { timeout: 6000, what: "past the first token's exp" });
    assert.deepEqual(closes, [], "no close");
    assert.equal(c.status, "connected");
    assert.equal(c.session.connectionId, first, "same connection");
    assert.ok(refreshed.length >= 1, "auth-refresh acknowledged");
    assert.ok(n >= 2);
    await c.request("ping");
    c.disconnect();
  });

  // Network loss on the client side (the socket is destroyed without a close frame,
  // as when a phone drops off Wi-Fi) while t1 keeps sending.
  test("network drop: B reconnects and resumes with no gap and no duplicate while A keeps sending", async () => {
    const gotB = collect(b, marker);
    await b.joinRoom(ROOM);
    const sent = [];
    const sender = (async () => {
      for (let i = 0; i < 12; i++) {
        sent.push(await a.sendMessage(ROOM, `${marker} burst ${i}`));
        await sleep(60);
      }
    })();
    await sleep(150);
    const before = b.session.connectionId;
    b.ws.terminate(); // abrupt network loss, no close frame
    await sender;
    await waitFor(() => b.status === "connected" && b.session.connectionId !== before, { what: "B reconnects" });
    await waitFor(() => sent.every((s) => gotB.some((x) => x.id === s.id)), { what: "B has every burst message" });
    await sleep(300);
    const burst = gotB.filter((x) => x.content.includes(" burst "));
    assertNoGapNoDup(burst, "B");
    assert.deepEqual(burst.map((x) => x.id), sent.map((s) => s.id));
    const all = b.joinedRooms.find((r) => r.roomId === ROOM);
    assert.ok(all.lastSeq >= burst[burst.length - 1].seq);
  });

  test("outbox: messages sent while offline arrive exactly once, in order, with their clientMsgId", async () => {
    const gotA = collect(a, marker);
    await a.joinRoom(ROOM);
    await b.joinRoom(ROOM);
    // one send right before the drop (its ack may be lost, so it is re-sent with the
    // same clientMsgId), three while offline
    const first = b.sendMessage(ROOM, `${marker} outbox 0`, { clientMsgId: `${marker}-ob0`.slice(0, 64) });
    b.ws.terminate();
    await waitFor(() => b.status !== "connected", { what: "B offline" });
    const queued = [1, 2, 3].map((i) => b.sendMessage(ROOM, `${marker} outbox ${i}`));
    assert.equal(b.outbox.length, 4);
    const ids = b.outbox.map((e) => e.clientMsgId);
    const msgs = await Promise.all([first, ...queued]);
    assert.deepEqual(msgs.map((m) => m.content), [0, 1, 2, 3].map((i) => `${marker} outbox ${i}`));
    for (let i = 1; i < msgs.length; i++) assert.ok(msgs[i].seq > msgs[i - 1].seq, "flushed in order");
    assert.deepEqual(msgs.map((m) => m.clientMsgId), ids, "clientMsgIds kept");
    assert.equal(b.outbox.length, 0);
    await waitFor(() => msgs.every((m) => gotA.some((x) => x.id === m.id)), { what: "A receives the outbox messages" });
    await sleep(300);
    const outboxAtA = gotA.filter((x) => x.content.includes(" outbox "));
    assert.equal(outboxAtA.length, 4, "each outbox message exactly once");
    assertNoGapNoDup(outboxAtA, "A");
    // the store has each exactly once too
    const page = await a.history(ROOM, { afterSeq: msgs[0].seq - 1, limit: 50 });
    assert.equal(page.messages.filter((x) => x.content.startsWith(`${marker} outbox `)).length, 4, "stored once each");
  });

  test("ack and error promises: forbidden, not_found, bad_request, unknown_event", async () => {
    // students are plain members of the announcement room and cannot post
    await assert.rejects(b.sendMessage("announcements", `${marker} should fail`), (e) => e instanceof TalimError && e.code === "forbidden");
    assert.equal(b.outbox.length, 0, "a refused send leaves the outbox");
    await assert.rejects(b.joinRoom(`no-such-room-${Date.now()}`), (e) => e instanceof TalimError && e.code === "not_found");
    await assert.rejects(a.sendMessage(ROOM, "   "), (e) => e instanceof TalimError && e.code === "bad_request");
    await assert.rejects(a.request("no-such-event", {}), (e) => e instanceof TalimError && e.code === "unknown_event");
    // editing someone else's message
    const m = await a.sendMessage(ROOM, `${marker} not yours`);
    await assert.rejects(b.editMessage(ROOM, m.id, "mine now"), (e) => e instanceof TalimError && e.code === "forbidden");
    const edited = await a.editMessage(ROOM, m.id, `${marker} edited`);
    assert.equal(edited.content, `${marker} edited`);
    assert.ok(edited.editedAt);
    const rooms = await a.listRooms();
    assert.ok(Array.isArray(rooms) && rooms.some((r) => r.roomId === ROOM));
    // the client keeps working after errors
    assert.deepEqual(await a.request("ping"), {});
  });

  test("a notification sent with `talim notify` reaches the recipient", async (t) => {
    if (!(await needTalim(t))) return;
    const got = [];
    const off = b.onNotification((n) => got.push(n));
    const title = `${marker} notice`;
    const out = await run(["notify", "--to", "s1", "--title", title, "--body", "from the e2e test"]);
    assert.match(out, /1 recipients/);
    await waitFor(() => got.some((n) => n.title === title), { what: "notification event" });
    off();
    const list = await b.listNotifications({ limit: 5 });
    assert.ok(list.notifications.some((n) => n.title === title));
    const n = list.notifications.find((x) => x.title === title);
    const r = await b.markNotificationsRead([n.id]);
    assert.equal(typeof r.unread, "number");
  });
});

// Raw frames against PROTOCOL.md where the real backend once deviated (fixed since).
describe("protocol conformance (raw frames)", { skip }, () => {
  test("join-chat-room ack carries lastSeq even when the room is empty", { todo: "the default safeguarding policy refuses a student a direct room with a user chat never saw (docs/protocol.md \"Safeguarding\"); needs another way to an empty room" }, async () => {
    const s = await rawSocket(await tokenOf("s2"));
    try {
      const room = await s.request("open-direct-room", { userId: `nobody-${Date.now()}` });
      assert.equal(room.event, "ack", JSON.stringify(room));
      const ack = await s.request("join-chat-room", { roomId: room.data.room.roomId });
      assert.equal(ack.event, "ack");
      assert.equal(ack.data.lastSeq, 0, `ack data ${JSON.stringify(ack.data)}`);
    } finally {
      s.close();
    }
  });

  test("auth-refresh with another user's token is refused with unauthorized", { todo: "the edge answers forbidden (services/edge/commands.go authRefresh)" }, async () => {
    const s = await rawSocket(await tokenOf("s2"));
    try {
      const r = await s.request("auth-refresh", { token: await tokenOf("t1") });
      assert.equal(r.event, "error");
      assert.equal(r.data.code, "unauthorized", `got ${JSON.stringify(r.data)}`);
    } finally {
      s.close();
    }
  });
});

// End-to-end tests of talim-client.js against a running stack (`talim dev`).
// Skipped unless TALIM_E2E_URL is set, e.g.
//   TALIM_E2E_URL=http://127.0.0.1:8080 node --test test/e2e.test.mjs
// Needs the edge in development mode (GET /dev/tokens) with the demo users
// t1 (teacher), s1, s2 and the seeded rooms room-123 (open), class-7a, announcements.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";
import { TalimClient, TalimError } from "../static/talim-client.js";

const BASE = process.env.TALIM_E2E_URL;
const skip = BASE ? false : "set TALIM_E2E_URL (e.g. http://127.0.0.1:8080) to run against a real stack";
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

let users = {};
async function tokenOf(userId) {
  const res = await fetch(new URL("/dev/tokens", BASE));
  assert.equal(res.status, 200, "GET /dev/tokens (is the edge in development mode?)");
  const body = await res.json();
  users = Object.fromEntries(body.users.map((u) => [u.userId, u]));
  assert.ok(users[userId], `no demo user ${userId}`);
  return users[userId].token;
}

const clients = [];
function makeClient(userId, opts = {}) {
  const c = new TalimClient({
    url: BASE,
    getToken: () => tokenOf(userId),
    WebSocket,
    logger: silent,
    debug: process.env.TALIM_E2E_DEBUG ? true : false,
    ...opts,
  });
  clients.push(c);
  return c;
}

/** Collect the room's messages whose content carries this run's marker. */
function collect(client, marker) {
  const got = [];
  client.onChatMessage((m) => {
    if (m.roomId === ROOM && String(m.content).startsWith(marker)) got.push(m);
  });
  return got;
}

function assertNoGapNoDup(list, label) {
  const ids = list.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, `${label}: duplicate message ids`);
  const seqs = list.map((m) => m.seq);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `${label}: out of order ${seqs[i - 1]} → ${seqs[i]}`);
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
    assert.ok(m.seq >= 1 && m.clientMsgId);
    await waitFor(() => gotB.some((x) => x.id === m.id), { what: "B receives A's message" });
    const r = await b.sendMessage(ROOM, `${marker} hi from s1`);
    await waitFor(() => gotA.some((x) => x.id === r.id), { what: "A receives B's message" });
    assert.ok(r.seq > m.seq);
  });

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
    b._ws.terminate(); // abrupt network loss, no close frame
    await sender;
    await waitFor(() => b.status === "connected" && b.session.connectionId !== before, { what: "B reconnects" });
    await waitFor(() => sent.every((s) => gotB.some((x) => x.id === s.id)), { what: "B has every burst message" });
    await sleep(300);
    const burst = gotB.filter((x) => x.content.includes(" burst "));
    assertNoGapNoDup(burst, "B");
    assert.deepEqual(burst.map((x) => x.id), sent.map((s) => s.id));
    // contiguous: the room's seqs from the first to the last burst message have no hole in B's view
    const seqs = gotB.map((x) => x.seq).sort((x, y) => x - y);
    const all = b.joinedRooms.find((r) => r.roomId === ROOM);
    assert.ok(all.lastSeq >= seqs[seqs.length - 1]);
  });

  test("outbox: messages sent while offline arrive exactly once, with their clientMsgId", async () => {
    const gotA = collect(a, marker);
    await a.joinRoom(ROOM);
    await b.joinRoom(ROOM);
    // one send right before the drop (its ack may be lost), three while offline
    const first = b.sendMessage(ROOM, `${marker} outbox 0`, { clientMsgId: `${marker}-ob0`.slice(0, 64) });
    b._ws.terminate();
    await waitFor(() => b.status !== "connected", { what: "B offline" });
    const queued = [1, 2, 3].map((i) => b.sendMessage(ROOM, `${marker} outbox ${i}`));
    assert.ok(b.outbox.length >= 3);
    const ids = b.outbox.map((e) => e.clientMsgId);
    const msgs = await Promise.all([first, ...queued]);
    assert.deepEqual(msgs.map((m) => m.content), [0, 1, 2, 3].map((i) => `${marker} outbox ${i}`));
    for (let i = 1; i < msgs.length; i++) assert.ok(msgs[i].seq > msgs[i - 1].seq, "flushed in order");
    for (const id of ids) assert.ok(msgs.some((m) => m.clientMsgId === id), `clientMsgId ${id} kept`);
    await waitFor(() => msgs.every((m) => gotA.some((x) => x.id === m.id)), { what: "A receives the outbox messages" });
    await sleep(300);
    const outboxAtA = gotA.filter((x) => x.content.includes(" outbox "));
    assert.equal(outboxAtA.length, 4, "each outbox message exactly once");
    assertNoGapNoDup(outboxAtA, "A");
  });

  test("errors reject with TalimError codes", async () => {
    await assert.rejects(b.joinRoom(`no-such-room-${Date.now()}`), (e) => e instanceof TalimError && ["forbidden", "not_found"].includes(e.code));
    // students cannot post in the announcement room
    await assert.rejects(b.sendMessage("announcements", `${marker} should fail`), (e) => e instanceof TalimError && ["forbidden", "not_found"].includes(e.code));
    await assert.rejects(a.sendMessage(ROOM, "   "), (e) => e instanceof TalimError && e.code === "bad_request");
    await assert.rejects(a.request("no-such-event", {}), (e) => e instanceof TalimError && e.code === "unknown_event");
    const rooms = await a.listRooms();
    assert.ok(Array.isArray(rooms) && rooms.some((r) => r.roomId === ROOM));
  });
});

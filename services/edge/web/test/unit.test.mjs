// Unit tests for static/talim-client.js against an in-process fake edge
// (tools/fake-edge.mjs, built on the `ws` package) that speaks client protocol v1.
// No real stack needed.
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";
import { FakeEdge, makeToken } from "../tools/fake-edge.mjs";
import { TalimClient, TalimError, computeBackoff, decodeJwtPayload, toWebSocketUrl } from "../static/talim-client.js";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const silent = { log() {}, warn() {}, error() {} };

async function waitFor(pred, { timeout = 3000, interval = 5, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A reconnect delay of ~150 ms: a deterministic offline window. */
const SLOW_RECONNECT = { reconnect: { initialMs: 150, maxMs: 300, factor: 2 }, random: () => 0.99 };
const nextEvent = (client, event) => new Promise((resolve) => client.once(event, resolve));

const clients = [];
const servers = [];
async function setup(opts = {}, serverSetup) {
  const server = await new FakeEdge().start();
  servers.push(server);
  if (serverSetup) serverSetup(server);
  const client = new TalimClient({
    url: server.url,
    token: makeToken("u1"),
    WebSocket,
    reconnect: { initialMs: 20, maxMs: 200, factor: 2 },
    logger: silent,
    commandTimeoutMs: 2000,
    ...opts,
  });
  clients.push(client);
  return { server, client };
}

after(async () => {
  for (const c of clients) c.disconnect();
  for (const s of servers) await s.stop().catch(() => {});
});

function collect(client) {
  const got = [];
  client.onChatMessage((m, meta) => got.push({ seq: m.seq, id: m.id, content: m.content, replayed: meta.replayed }));
  return got;
}

describe("helpers", () => {
  test("computeBackoff uses full jitter within [0, min(max, initial*factor^attempt))", () => {
    const o = { initialMs: 500, maxMs: 15000, factor: 2 };
    for (let attempt = 0; attempt < 12; attempt++) {
      const cap = Math.min(15000, 500 * 2 ** attempt);
      assert.equal(computeBackoff(attempt, o, () => 0), 0);
      const hi = computeBackoff(attempt, o, () => 0.999999);
      assert.ok(hi <= cap && hi >= cap - 1, `attempt ${attempt}: ${hi} vs cap ${cap}`);
      for (let i = 0; i < 50; i++) {
        const d = computeBackoff(attempt, o);
        assert.ok(d >= 0 && d <= cap, `attempt ${attempt}: ${d} out of [0, ${cap}]`);
      }
    }
    assert.equal(computeBackoff(3, {}, () => 0.5), 2000); // defaults 500/15000/2
  });

  test("decodeJwtPayload and toWebSocketUrl", () => {
    const t = makeToken("t1", 60, { name: "Teacher Ünal", roles: ["teacher"] });
    const p = decodeJwtPayload(t);
    assert.equal(p.sub, "t1");
    assert.equal(p.name, "Teacher Ünal");
    assert.equal(decodeJwtPayload("nope"), null);
    assert.equal(toWebSocketUrl("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
    assert.equal(toWebSocketUrl("https://x.example/ws"), "wss://x.example/ws");
    assert.equal(toWebSocketUrl("ws://h/ws"), "ws://h/ws");
  });
});

describe("connection and reconnect", () => {
  test("connects, reports status transitions and the connected session", async () => {
    const { client } = await setup();
    const statuses = [];
    client.on("status", (s) => statuses.push(s));
    assert.equal(client.status, "disconnected");
    const session = await client.connect();
    assert.equal(session.userId, "u1");
    assert.equal(client.status, "connected");
    assert.deepEqual(statuses, ["connecting", "connected"]);
    client.disconnect();
    assert.equal(client.status, "disconnected");
  });

  test("reconnect delays stay within the full-jitter bounds and reset after a stable connection", async () => {
    const delays = [];
    const { server, client } = await setup({
      reconnect: { initialMs: 10, maxMs: 80, factor: 2 },
      stableAfterMs: 500,
      random: () => 0.999999,
    });
    client.on("reconnecting", (r) => delays.push(r));
    // Every new connection is dropped right away (network failure) for the first 6.
    let drops = 6;
    server.onConnect = (conn) => {
      if (drops-- > 0) setTimeout(() => conn.ws.terminate(), 1);
    };
    await client.connect();
    await waitFor(() => delays.length >= 6 && client.status === "connected", { what: "6 reconnects" });
    delays.slice(0, 6).forEach((d, i) => {
      const cap = Math.min(80, 10 * 2 ** i);
      assert.equal(d.attempt, i + 1);
      assert.ok(d.delayMs >= 0 && d.delayMs <= cap, `delay ${i}: ${d.delayMs} > ${cap}`);
      assert.ok(d.delayMs >= cap - 1, "random() near 1 gives the cap");
    });
    // Unstable connection: the attempt counter keeps growing.
    server.terminateAll();
    await waitFor(() => delays.length >= 7);
    assert.equal(delays[6].attempt, 7);
    await waitFor(() => client.status === "connected");
    // Stay up longer than stableAfterMs: backoff resets to the first step.
    await sleep(700);
    server.terminateAll();
    await waitFor(() => delays.length >= 8);
    assert.equal(delays[7].attempt, 1);
    assert.ok(delays[7].delayMs <= 10);
    await waitFor(() => client.status === "connected");
  });

  test("reconnects on 1001, 1006, 1011, 1012 and 4008", async () => {
    const { server, client } = await setup();
    await client.connect();
    for (const code of [1001, 1011, 1012, 4008]) {
      const before = server.connections;
      server.closeAll(code, "test");
      await waitFor(() => server.connections > before && client.status === "connected", { what: `reconnect after ${code}` });
    }
    const before = server.connections;
    server.terminateAll(); // 1006
    await waitFor(() => server.connections > before && client.status === "connected", { what: "reconnect after 1006" });
  });

  test("no reconnect after 1008", async () => {
    const { server, client } = await setup();
    await client.connect();
    const p = client.request("slow", {});
    server.closeAll(1008, "policy");
    await assert.rejects(p, (e) => e instanceof TalimError && e.code === "disconnected");
    await waitFor(() => client.status === "error");
    await sleep(300);
    assert.equal(server.connections, 1);
    assert.equal(client.status, "error");
    // An explicit connect() (the Retry button) tries again.
    await client.connect();
    assert.equal(server.connections, 2);
  });

  test("no reconnect after 4001 with a static token or without a fresh token", async () => {
    const { server, client } = await setup();
    await client.connect();
    server.closeAll(4001, "token expired");
    await waitFor(() => client.status === "error");
    await sleep(250);
    assert.equal(server.connections, 1);

    const same = makeToken("u2");
    const { server: s2, client: c2 } = await setup({ token: undefined, getToken: async () => same });
    await c2.connect();
    s2.closeAll(4001, "token expired");
    await waitFor(() => c2.status === "error");
    await sleep(250);
    assert.equal(s2.connections, 1, "getToken returned the same token: no reconnect");
  });

  test("reconnects after 4001 when getToken hands out a fresh token", async () => {
    let n = 0;
    const { server, client } = await setup({ token: undefined, getToken: async () => makeToken("u3", 3600, { n: ++n }) });
    await client.connect();
    server.closeAll(4001, "token expired");
    await waitFor(() => server.connections === 2 && client.status === "connected", { what: "reconnect with fresh token" });
    const tokens = [...server.conns].map((c) => decodeJwtPayload(c.token).n);
    assert.deepEqual(tokens, [2], "the fresh token fetched after 4001 is the one used");
  });

  test("disconnect() stops reconnecting and rejects pending commands", async () => {
    const { server, client } = await setup();
    await client.connect();
    const p = client.request("slow", {});
    client.disconnect();
    await assert.rejects(p, { code: "disconnected" });
    await sleep(200);
    assert.equal(server.connections, 1);
    assert.equal(client.status, "disconnected");
  });
});

describe("commands", () => {
  test("ack resolves with data; error rejects with TalimError code/message/retryAfterMs; timeout", async () => {
    const { server, client } = await setup({ commandTimeoutMs: 100 });
    server.room("r1");
    server.room("secret").forbidden = true;
    server.rateLimited.add("typing");
    await client.connect();
    const rooms = await client.listRooms();
    assert.deepEqual(rooms.map((r) => r.roomId).sort(), ["r1", "secret"]);
    await assert.rejects(client.joinRoom("secret"), (e) => e instanceof TalimError && e.code === "forbidden" && e.message === "not a member");
    await assert.rejects(client.typing("r1", true), (e) => e.code === "rate_limited" && e.retryAfterMs === 750);
    await assert.rejects(client.request("nope", {}), { code: "unknown_event" });
    await assert.rejects(client.request("slow", {}), { code: "timeout" });
    // ids are increasing integers, each answered once
    const ids = server.frames.map((f) => f.id);
    assert.ok(ids.every((id, i) => Number.isInteger(id) && (i === 0 || id > ids[i - 1])));
    // the forbidden room is not remembered for resume
    assert.deepEqual(client.joinedRooms, []);
  });

  test("requests while disconnected reject with `disconnected`", async () => {
    const { client } = await setup();
    await assert.rejects(client.listRooms(), { code: "disconnected" });
  });
});

describe("chat resume", () => {
  for (const historyFirst of [true, false]) {
    test(`re-joins with sinceSeq after reconnect, dedupes and keeps order (history ${historyFirst ? "before" : "after"} ack)`, async () => {
      const { server, client } = await setup(SLOW_RECONNECT, (s) => (s.historyFirst = historyFirst));
      for (let i = 1; i <= 3; i++) server.post("room-123", `old ${i}`);
      const got = collect(client);
      const histories = [];
      client.on("chat-room-history", (d) => histories.push(d));
      await client.connect();
      const joined = await client.joinRoom("room-123", { limit: 20 });
      assert.equal(joined.lastSeq, 3);
      assert.deepEqual(joined.messages.map((m) => m.seq), [1, 2, 3]);
      assert.equal(histories.length, 1);
      server.post("room-123", "live 4");
      await waitFor(() => got.length === 1);
      assert.equal(client.joinedRooms[0].lastSeq, 4);

      // network drop; other users keep posting meanwhile
      const closed = nextEvent(client, "close");
      server.terminateAll();
      await closed;
      server.post("room-123", "missed 5");
      server.post("room-123", "missed 6");
      server.extraHistoryDupes = 2; // the server (or a race) re-sends 3 and 4 too
      await waitFor(() => got.length === 3, { what: "resumed messages" });
      const joins = server.framesOf("join-chat-room");
      assert.equal(joins.length, 2);
      assert.deepEqual(joins[0].data, { roomId: "room-123", limit: 20 });
      assert.deepEqual(joins[1].data, { roomId: "room-123", sinceSeq: 4 });
      // a duplicate live delivery of an old message is ignored
      const conn = [...server.conns][0];
      server.send(conn, "chat-message", { message: server.room("room-123").messages[4] });
      server.post("room-123", "live 7");
      await waitFor(() => got.length === 4);
      await sleep(30);
      assert.deepEqual(got.map((g) => g.seq), [4, 5, 6, 7]);
      assert.equal(new Set(got.map((g) => g.id)).size, got.length);
      assert.deepEqual(got.map((g) => g.replayed), [false, true, true, false]);
      assert.equal(histories.length, 1, "resume does not re-emit the initial history");
    });
  }

  test("a gap in live seqs is filled with get-chat-room-history {afterSeq} before later messages", async () => {
    const { server, client } = await setup();
    server.post("r", "one");
    const got = collect(client);
    await client.connect();
    await client.joinRoom("r");
    server.dropLive.add(2).add(3); // at-most-once delivery lost two messages
    server.post("r", "two");
    server.post("r", "three");
    server.post("r", "four");
    server.post("r", "five");
    await waitFor(() => got.length === 4, { what: "gap fill" });
    await sleep(30);
    assert.deepEqual(got.map((g) => g.seq), [2, 3, 4, 5]);
    assert.deepEqual(got.map((g) => g.content), ["two", "three", "four", "five"]);
    const fills = server.framesOf("get-chat-room-history");
    assert.equal(fills.length, 1);
    assert.equal(fills[0].data.afterSeq, 1);
    assert.equal(fills[0].data.roomId, "r");
  });

  test("live messages arriving before the join's history are held and not duplicated", async () => {
    const { server, client } = await setup({}, (s) => (s.historyFirst = false));
    server.post("r", "a");
    const got = collect(client);
    await client.connect();
    // deliver a live message before the join is answered
    server.onConnect = null;
    const origHandle = server._handle.bind(server);
    server._handle = (conn, msg) => {
      if (msg.event === "join-chat-room") {
        conn.joined.add("r");
        server.post("r", "b");
      }
      origHandle(conn, msg);
    };
    const joined = await client.joinRoom("r");
    // history holds a and b (b stored before history was built), live b came first
    assert.deepEqual(joined.messages.map((m) => m.content), ["a", "b"]);
    await sleep(50);
    assert.deepEqual(got, [], "b belongs to the initial history, not emitted again as live");
    server.post("r", "c");
    await waitFor(() => got.length === 1);
    assert.equal(got[0].seq, 3);
  });

  test("joinRoom while disconnected joins after connecting", async () => {
    const { server, client } = await setup();
    server.post("later", "x");
    const p = client.joinRoom("later");
    client.connect();
    const res = await p;
    assert.equal(res.lastSeq, 1);
  });
});

describe("outbox", () => {
  test("sends while disconnected are queued and flushed in order after reconnect + rejoin, same clientMsgId", async () => {
    const { server, client } = await setup(SLOW_RECONNECT);
    const got = collect(client);
    await client.connect();
    await client.joinRoom("r");
    const closed = nextEvent(client, "close");
    server.terminateAll();
    await closed;
    // hold the reconnect until we queued everything
    const sends = [client.sendMessage("r", "q1"), client.sendMessage("r", "q2", { clientMsgId: "fixed-id" }), client.sendMessage("r", "q3", { type: "text" })];
    assert.equal(client.outbox.length, 3);
    assert.ok(client.outbox.every((e) => e.state === "queued" && e.clientMsgId));
    const queuedIds = client.outbox.map((e) => e.clientMsgId);
    assert.equal(queuedIds[1], "fixed-id");
    const msgs = await Promise.all(sends);
    assert.deepEqual(msgs.map((m) => m.content), ["q1", "q2", "q3"]);
    assert.deepEqual(msgs.map((m) => m.seq), [1, 2, 3]);
    assert.deepEqual(msgs.map((m) => m.clientMsgId), queuedIds);
    // flushed after the rejoin, in order
    const evs = server.frames.filter((f) => f.conn.id !== "c_1").map((f) => f.event);
    assert.equal(evs[0], "join-chat-room");
    assert.deepEqual(server.framesOf("send-chat-message").map((f) => f.data.clientMsgId), queuedIds);
    await waitFor(() => got.length === 3);
    await sleep(30);
    assert.deepEqual(got.map((g) => g.content), ["q1", "q2", "q3"], "each message emitted exactly once");
    assert.equal(client.outbox.length, 0);
  });

  test("a send whose socket dropped before the ack is re-sent with the same clientMsgId", async () => {
    const { server, client } = await setup();
    const got = collect(client);
    await client.connect();
    await client.joinRoom("r");
    server.swallowSends = 1;
    server.dropLive.add(1);
    const p = client.sendMessage("r", "hello");
    await waitFor(() => server.framesOf("send-chat-message").length === 1);
    assert.equal(client.outbox[0].state, "inflight");
    server.terminateAll(); // the ack never arrives
    const m = await p;
    assert.equal(m.content, "hello");
    const sends = server.framesOf("send-chat-message");
    assert.equal(sends.length, 2);
    assert.equal(sends[0].data.clientMsgId, sends[1].data.clientMsgId);
    assert.equal(server.room("r").messages.length, 1, "server deduped by clientMsgId");
    await waitFor(() => got.length === 1);
    await sleep(30);
    assert.equal(got.length, 1);
  });

  test("server errors reject the send; a full outbox rejects with outbox_full", async () => {
    const { server, client } = await setup({ outboxLimit: 2 });
    server.room("locked").forbidden = true;
    await client.connect();
    await assert.rejects(client.sendMessage("locked", "x"), { code: "forbidden" });
    client.disconnect();
    const a = client.sendMessage("r", "1");
    const b = client.sendMessage("r", "2");
    await assert.rejects(client.sendMessage("r", "3"), (e) => e instanceof TalimError && e.code === "outbox_full");
    client.disconnect(); // drops the outbox
    await assert.rejects(a, { code: "disconnected" });
    await assert.rejects(b, { code: "disconnected" });
  });
});

describe("token refresh", () => {
  test("calls getToken before exp and sends auth-refresh", async () => {
    let n = 0;
    const { server, client } = await setup({ token: undefined, getToken: async () => makeToken("u1", 2, { n: ++n }) });
    const refreshed = [];
    client.on("token-refreshed", () => refreshed.push(1));
    await client.connect();
    // lead = min(60 s, remaining/2) → about 1 s after connecting
    await waitFor(() => server.framesOf("auth-refresh").length >= 1, { timeout: 4000, what: "auth-refresh" });
    const f = server.framesOf("auth-refresh")[0];
    assert.equal(decodeJwtPayload(f.data.token).n, 2);
    assert.equal(typeof f.id, "number");
    await waitFor(() => refreshed.length === 1);
    assert.equal(server.connections, 1, "refreshed in place, no reconnect");
  });

  test("setToken sends auth-refresh at once", async () => {
    const { server, client } = await setup();
    await client.connect();
    const t = makeToken("u1", 7200);
    client.setToken(t);
    await waitFor(() => server.framesOf("auth-refresh").length === 1);
    assert.equal(server.framesOf("auth-refresh")[0].data.token, t);
  });
});

describe("presence", () => {
  test("presence subscriptions are restored after a reconnect", async () => {
    const { server, client } = await setup();
    await client.connect();
    const ack = await client.subscribePresence(["s1", "s2"]);
    assert.deepEqual(ack.presence.map((p) => p.userId), ["s1", "s2"]);
    server.terminateAll();
    await waitFor(() => server.framesOf("subscribe-presence").length === 2, { what: "re-subscribe" });
    assert.deepEqual(server.framesOf("subscribe-presence")[1].data.userIds, ["s1", "s2"]);
  });
});

describe("debug logging", () => {
  test("logs only the enabled categories with emoji prefixes", async () => {
    const lines = [];
    const logger = { log: (...a) => lines.push(a.join(" ")), error() {} };
    const { server, client } = await setup({ debug: ["chat"], logger });
    await client.connect();
    await client.joinRoom("r");
    server.post("r", "hi");
    await sleep(50);
    assert.ok(lines.length > 0);
    assert.ok(lines.every((l) => l.startsWith("📨")), lines.join("\n"));
    const all = [];
    const { client: c2 } = await setup({ debug: true, logger: { log: (...a) => all.push(a[0]), error() {} } });
    await c2.connect();
    assert.ok(all.some((l) => l.startsWith("🔌")));
  });
});

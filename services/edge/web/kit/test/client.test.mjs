// Unit tests of the compiled client (dist/) against a fake socket: the close-code
// table, the pre-flight that makes refused tokens visible, reconnect(), onError and the
// seed's debug prefixes.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { TalimClient, CLOSE_RULES, HANDSHAKE_RULES } from "../dist/client/index.js";
import { FakeSocket, waitFor } from "./fake-socket.mjs";

const table = JSON.parse(readFileSync(new URL("../close-codes.json", import.meta.url), "utf8"));
const silent = { log() {}, warn() {}, error() {} };
const noFetch = async () => {
  throw new TypeError("network down");
};

function client(opts = {}) {
  return new TalimClient({
    url: "ws://edge.test/ws",
    WebSocket: FakeSocket,
    reconnect: { initialMs: 1, maxMs: 2 },
    random: () => 0,
    logger: silent,
    fetch: noFetch,
    ...opts,
  });
}

beforeEach(() => FakeSocket.reset());

test("the generated rules are the shared table", () => {
  assert.deepEqual([...CLOSE_RULES], table.close.map((r) => [r.code, r.reconnect]));
  assert.deepEqual([...HANDSHAKE_RULES], table.handshake.map((r) => [r.status, r.reconnect]));
});

for (const row of table.close) {
  for (const refreshable of [false, true]) {
    const stops = row.reconnect === "never" || (row.reconnect === "new-token" && !refreshable);
    test(`close ${row.code} (${row.name}) with${refreshable ? "" : "out"} getToken: ${stops ? "stops in error" : "reconnects"}`, async () => {
      let n = 0;
      const c = client(refreshable ? { getToken: () => `tok-${++n}` } : { token: "static" });
      void c.connect();
      await waitFor(() => FakeSocket.instances.length === 1, "first socket");
      FakeSocket.last().connected();
      await waitFor(() => c.status === "connected", "connected");
      FakeSocket.last().serverClose(row.code, "bye");
      if (stops) {
        await waitFor(() => c.status === "error", "error status");
        assert.equal(FakeSocket.instances.length, 1, "no reconnect attempt");
        assert.ok(c.lastError, "lastError set");
      } else {
        await waitFor(() => FakeSocket.instances.length === 2, "a second socket");
        if (row.reconnect === "new-token") assert.equal(FakeSocket.last().url.searchParams.get("token"), "tok-2");
      }
      c.disconnect();
    });
  }
}

test("a refused upgrade: the pre-flight's 401 shows error with the reason, getToken is called again", async () => {
  const fetches = [];
  let calls = 0;
  const c = client({
    getToken: () => (++calls, "revoked"),
    fetch: async (url) => {
      fetches.push(new URL(url));
      return new Response(JSON.stringify({ error: { code: "unauthorized", message: "invalid token" } }), { status: 401 });
    },
  });
  const statuses = [];
  c.on("status", (s) => statuses.push(s));
  const connecting = c.connect();
  await waitFor(() => FakeSocket.instances.length === 1, "socket");
  FakeSocket.last().refuse();
  await assert.rejects(connecting, (err) => err.code === "unauthorized" && err.message === "invalid token");
  assert.equal(c.status, "error");
  assert.equal(c.lastError.message, "invalid token");
  assert.equal(calls, 2, "getToken called again after the refusal");
  assert.equal(FakeSocket.instances.length, 1, "the same token is not tried again");
  assert.equal(fetches.length, 1);
  assert.equal(fetches[0].protocol, "http:");
  assert.equal(fetches[0].pathname, "/ws");
  assert.equal(fetches[0].searchParams.get("token"), "revoked");
  assert.deepEqual(statuses, ["connecting", "error"]);
});

test("a refused upgrade: a new token from getToken reconnects with it", async () => {
  const tokens = ["old", "new"];
  const c = client({
    getToken: () => tokens.shift() ?? "new",
    fetch: async () => new Response(JSON.stringify({ error: { code: "unauthorized", message: "token expired" } }), { status: 401 }),
  });
  void c.connect();
  await waitFor(() => FakeSocket.instances.length === 1, "socket");
  FakeSocket.last().refuse();
  await waitFor(() => FakeSocket.instances.length === 2, "second socket");
  assert.equal(FakeSocket.last().url.searchParams.get("token"), "new");
  FakeSocket.last().connected();
  await waitFor(() => c.status === "connected", "connected");
  assert.equal(c.lastError, null);
  c.disconnect();
});

test("a refused upgrade with a static token and 403 stops; a network error (fetch fails) retries", async () => {
  const c = client({
    token: "t",
    fetch: async () => new Response(JSON.stringify({ error: { code: "forbidden", message: "origin not allowed" } }), { status: 403 }),
  });
  void c.connect();
  await waitFor(() => FakeSocket.instances.length === 1, "socket");
  FakeSocket.last().refuse();
  await waitFor(() => c.status === "error", "error");
  assert.equal(c.lastError.message, "origin not allowed");
  assert.equal(FakeSocket.instances.length, 1);

  FakeSocket.reset();
  const d = client({ token: "t" }); // fetch rejects: the edge is down
  void d.connect();
  await waitFor(() => FakeSocket.instances.length === 1, "socket");
  FakeSocket.last().refuse();
  await waitFor(() => FakeSocket.instances.length === 2, "retry");
  d.disconnect();
});

test("reconnect() from error calls getToken again and connects", async () => {
  let good = false;
  const c = client({
    getToken: () => (good ? "good" : "bad"),
    fetch: async () => new Response(JSON.stringify({ error: { code: "unauthorized", message: "invalid token" } }), { status: 401 }),
  });
  void c.connect();
  await waitFor(() => FakeSocket.instances.length === 1, "socket");
  FakeSocket.last().refuse();
  await waitFor(() => c.status === "error", "error");
  good = true;
  const p = c.reconnect();
  await waitFor(() => FakeSocket.instances.length === 2, "second socket");
  assert.equal(FakeSocket.last().url.searchParams.get("token"), "good");
  FakeSocket.last().connected();
  await p;
  assert.equal(c.status, "connected");
  c.disconnect();
});

test("reconnect() on a live connection resumes joined rooms with sinceSeq", async () => {
  const c = client({ token: "t" });
  void c.connect();
  await waitFor(() => FakeSocket.instances.length === 1, "socket");
  const s1 = FakeSocket.last();
  s1.connected();
  await waitFor(() => c.status === "connected", "connected");
  const joined = c.joinRoom("r1");
  await waitFor(() => s1.sent.some((x) => x.event === "join-chat-room"), "join");
  s1.ack("join-chat-room", { roomId: "r1", lastSeq: 3, lastReadSeq: 0, unread: 0 });
  s1.push("chat-room-history", { roomId: "r1", messages: [1, 2, 3].map((seq) => ({ id: `m${seq}`, roomId: "r1", seq, senderId: "u2", type: "text", content: `#${seq}`, createdAt: "" })), hasMore: false });
  await joined;
  void c.reconnect();
  assert.deepEqual(s1.closed, { code: 1000, reason: "client reconnect", by: "client" });
  await waitFor(() => FakeSocket.instances.length === 2, "second socket");
  const s2 = FakeSocket.last();
  s2.connected();
  await waitFor(() => s2.sent.some((x) => x.event === "join-chat-room"), "rejoin");
  assert.deepEqual(s2.sent.find((x) => x.event === "join-chat-room").data, { roomId: "r1", sinceSeq: 3 });
  c.disconnect();
});

test("onError reports server errors and the error status, and unsubscribes", async () => {
  const c = client({ token: "t" });
  const seen = [];
  const off = c.onError((e) => seen.push(`${e.code}:${e.message}`));
  void c.connect();
  await waitFor(() => FakeSocket.instances.length === 1, "socket");
  FakeSocket.last().connected();
  await waitFor(() => c.status === "connected", "connected");
  FakeSocket.last().push("error", { code: "rate_limited", message: "slow down" });
  FakeSocket.last().serverClose(4029, "too many connections");
  await waitFor(() => c.status === "error", "error");
  assert.deepEqual(seen, ["rate_limited:slow down", "closed:closed by server (4029): too many connections"]);
  off();
  void c.reconnect();
  await waitFor(() => FakeSocket.instances.length === 2, "socket");
  FakeSocket.last().connected();
  await waitFor(() => c.status === "connected", "connected");
  FakeSocket.last().push("error", { code: "bad_request", message: "x" });
  assert.equal(seen.length, 2);
  c.disconnect();
});

test("debug logs with the seed's prefixes 🔌 📨 📡 🔄", async () => {
  const lines = [];
  const c = client({ token: "t", debug: true, logger: { log: (...a) => lines.push(a.join(" ")) } });
  void c.connect();
  await waitFor(() => FakeSocket.instances.length === 1, "socket");
  FakeSocket.last().connected();
  await waitFor(() => c.status === "connected", "connected");
  FakeSocket.last().push("chat-message", { message: { id: "x", roomId: "elsewhere", senderId: "u2", content: "hi", type: "text", createdAt: "" } });
  FakeSocket.last().push("notification", { notification: { id: "n1", title: "Hello" } });
  FakeSocket.last().serverClose(1012, "restart");
  await waitFor(() => FakeSocket.instances.length === 2, "reconnect");
  c.disconnect();
  for (const p of ["🔌", "📨", "📡", "🔄"]) assert.ok(lines.some((l) => l.startsWith(p)), `a line starting with ${p}: ${lines.join("\n")}`);
  const quiet = [];
  const q = client({ token: "t", logger: { log: (...a) => quiet.push(a) } });
  void q.connect();
  q.disconnect();
  assert.equal(quiet.length, 0, "no logs without debug");
});

// The React entry in React DOM (happy-dom as the DOM) against the fake socket:
// reference-counted joins, WebSocketStatus (🟢 🟡 ⚫ countdown 🔴 reason + retry),
// toasts with ack, the inbox, NEXT_PUBLIC_WEBSOCKET_URL, and the seed's code samples
// type-checked against the package's declarations.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Window } from "happy-dom";
import { FakeSocket, waitFor } from "./fake-socket.mjs";

const win = new Window({ url: "http://localhost/" });
globalThis.window = win;
globalThis.document = win.document;
for (const k of ["navigator", "HTMLElement", "HTMLIFrameElement", "Node", "Event", "MutationObserver"]) {
  if (!(k in globalThis)) globalThis[k] = win[k];
}
globalThis.IS_REACT_ACT_ENVIRONMENT = false;

const React = (await import("react")).default;
const { createRoot } = await import("react-dom/client");
const kit = await import("../dist/react/index.js");
const { WebSocketProvider, WebSocketStatus, NotificationToaster, NotificationInbox, useChatRoom, useWebSocketContext, defaultWebSocketURL } = kit;
const h = React.createElement;
const silent = { log() {}, warn() {}, error() {} };
const $ = (sel) => document.querySelector(sel);
const $$ = (sel) => [...document.querySelectorAll(sel)];

after(async () => {
  await win.happyDOM.close();
});

function mount(el) {
  const container = document.createElement("div");
  document.body.appendChild(container);
  const root = createRoot(container);
  root.render(el);
  return {
    root,
    rerender: (e) => root.render(e),
    unmount: () => {
      root.unmount();
      container.remove();
    },
  };
}

const options = (extra = {}) => ({ WebSocket: FakeSocket, reconnect: { initialMs: 1, maxMs: 2 }, random: () => 0, logger: silent, fetch: async () => { throw new TypeError("offline"); }, ...extra });

async function connectedSocket() {
  await waitFor(() => FakeSocket.instances.length >= 1, "a socket");
  const s = FakeSocket.last();
  s.connected();
  return s;
}

test("two components in one room join it once each and leave only when both are gone", async () => {
  FakeSocket.reset();
  function Room({ id }) {
    const { messages } = useChatRoom("room-1");
    return h("div", { "data-testid": `room-${id}` }, messages.map((m) => m.content).join(","));
  }
  const view = (a, b) => h(WebSocketProvider, { url: "ws://edge.test/ws", token: "t", options: options() }, a && h(Room, { id: "a" }), b && h(Room, { id: "b" }));
  const m = mount(view(true, true));
  const s = await connectedSocket();
  await waitFor(() => s.sent.filter((x) => x.event === "join-chat-room").length >= 1, "join");
  const joinId = s.sent.find((x) => x.event === "join-chat-room").id;
  s.push("ack", { roomId: "room-1", lastSeq: 1, lastReadSeq: 0, unread: 0 }, joinId);
  s.push("chat-room-history", { roomId: "room-1", messages: [{ id: "m1", roomId: "room-1", seq: 1, senderId: "u2", type: "text", content: "hello", createdAt: "" }], hasMore: false });
  await waitFor(() => $("[data-testid=room-a]")?.textContent === "hello" && $("[data-testid=room-b]")?.textContent === "hello", "both show the history");
  for (const x of s.sent.filter((c) => c.event === "join-chat-room" && c.id !== joinId)) s.push("ack", { roomId: "room-1", lastSeq: 1, lastReadSeq: 0, unread: 0 }, x.id);

  m.rerender(view(true, false)); // one unmounts
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(s.sent.filter((x) => x.event === "leave-chat-room").length, 0, "no leave while another component shows the room");
  s.push("chat-message", { message: { id: "m2", roomId: "room-1", seq: 2, senderId: "u2", type: "text", content: "still here", createdAt: "" } });
  await waitFor(() => $("[data-testid=room-a]")?.textContent === "hello,still here", "live message after the other unmounted");

  m.rerender(view(false, false));
  await waitFor(() => s.sent.some((x) => x.event === "leave-chat-room"), "leave once both are gone");
  assert.equal(s.sent.filter((x) => x.event === "leave-chat-room").length, 1);
  m.unmount();
});

test("WebSocketStatus: 🟡 connecting, 🟢 connected, ⚫ with the countdown, 🔴 with the edge's reason, Retry calls getToken again", async () => {
  FakeSocket.reset();
  let token = "revoked";
  let calls = 0;
  const fetch401 = async () => new Response(JSON.stringify({ error: { code: "unauthorized", message: "invalid token" } }), { status: 401 });
  const m = mount(
    h(WebSocketProvider, { url: "ws://edge.test/ws", getToken: () => (calls++, token), options: options({ fetch: fetch401, reconnect: { initialMs: 4000, maxMs: 4000 }, random: () => 0.99 }) }, h(WebSocketStatus)),
  );
  await waitFor(() => $("[data-testid=ws-status]")?.dataset.status === "connecting", "connecting");
  assert.match($("[data-testid=ws-status]").textContent, /🟡/);
  FakeSocket.last().refuse();
  await waitFor(() => $("[data-testid=ws-status]")?.dataset.status === "error", "error");
  assert.match($("[data-testid=ws-status]").textContent, /🔴.*invalid token/);
  assert.equal($("[data-testid=ws-status] [role=status]") !== null, true, "a live region");
  assert.equal(calls, 2, "getToken called again after the refusal");

  token = "good";
  $("[data-testid=ws-retry]").click();
  await waitFor(() => FakeSocket.instances.length === 2, "retry opens a socket");
  assert.equal(FakeSocket.last().url.searchParams.get("token"), "good");
  FakeSocket.last().connected();
  await waitFor(() => $("[data-testid=ws-status]")?.dataset.status === "connected", "connected");
  assert.match($("[data-testid=ws-status]").textContent, /🟢/);
  assert.equal($("[data-testid=ws-retry]"), null, "no retry button while connected");

  FakeSocket.last().serverClose(1012, "restart");
  await waitFor(() => $("[data-testid=ws-status]")?.dataset.status === "disconnected", "disconnected");
  await waitFor(() => /retrying in [1-4] s/.test($("[data-testid=ws-retry-countdown]")?.textContent ?? ""), "countdown");
  assert.match($("[data-testid=ws-status]").textContent, /⚫/);
  m.unmount();
});

test("NotificationToaster and NotificationInbox: a toast, acknowledge, unread count, mark all read", async () => {
  FakeSocket.reset();
  const m = mount(h(WebSocketProvider, { url: "ws://edge.test/ws", token: "t", options: options() }, h(NotificationToaster), h(NotificationInbox)));
  const s = await connectedSocket();
  await waitFor(() => s.sent.some((x) => x.event === "list-notifications"), "inbox load");
  const n = { id: "n1", category: "safety", title: "Fire drill", body: "at 11:00", priority: "high", requireAck: true, createdAt: "", readAt: null, ackedAt: null, expiresAt: null };
  s.push("notification", { notification: n });
  // the inbox answer may be applied before or after the live event: it includes it
  s.ack("list-notifications", { notifications: [n], hasMore: false, unread: 1 });
  await waitFor(() => $$("[data-testid=toast]").length === 1, "toast");
  assert.equal($("[data-testid=toast]").getAttribute("role"), "alert", "high priority is an alert");
  assert.match($("[data-testid=toast]").textContent, /Fire drill/);
  await waitFor(() => $("[data-testid=inbox-count]")?.textContent === "1", "unread 1");
  $("[data-testid=toast-ack]").click();
  await waitFor(() => s.sent.some((x) => x.event === "ack-notification"), "ack sent");
  assert.deepEqual(s.sent.find((x) => x.event === "ack-notification").data, { id: "n1" });
  s.ack("ack-notification", { id: "n1", ackedAt: "2026-12-02T12:00:00Z" });
  await waitFor(() => $$("[data-testid=toast]").length === 0, "toast gone after ack");
  await waitFor(() => /acknowledged/.test($("[data-testid=notification]")?.textContent ?? ""), "inbox shows acknowledged");
  $("[data-testid=mark-all-read]").click();
  await waitFor(() => s.sent.some((x) => x.event === "mark-notification-read"), "mark read sent");
  s.ack("mark-notification-read", { unread: 0 });
  await waitFor(() => $("[data-testid=inbox-count]") === null && $("[data-testid=notification]").dataset.unread === "false", "all read");
  m.unmount();
});

test("the URL defaults to NEXT_PUBLIC_WEBSOCKET_URL", async () => {
  FakeSocket.reset();
  process.env.NEXT_PUBLIC_WEBSOCKET_URL = "ws://from-env.test:3000";
  try {
    assert.equal(defaultWebSocketURL(), "ws://from-env.test:3000");
    let ctx;
    function Probe() {
      ctx = useWebSocketContext();
      return null;
    }
    const m = mount(h(WebSocketProvider, { token: "t", options: options() }, h(Probe)));
    await waitFor(() => FakeSocket.instances.length === 1, "socket");
    assert.equal(FakeSocket.last().url.href, "ws://from-env.test:3000/ws?token=t");
    assert.equal(typeof ctx.reconnect, "function");
    m.unmount();
  } finally {
    delete process.env.NEXT_PUBLIC_WEBSOCKET_URL;
  }
  assert.equal(defaultWebSocketURL(), undefined);
});

test("the seed's code samples type-check (strict) against the package's declarations", async () => {
  const tsc = new URL("../node_modules/typescript/bin/tsc", import.meta.url).pathname;
  const project = new URL("./fixtures/tsconfig.json", import.meta.url).pathname;
  try {
    await promisify(execFile)(process.execPath, [tsc, "-p", project]);
  } catch (err) {
    assert.fail(`tsc -p test/fixtures: ${err.stdout}${err.stderr}`);
  }
});

// The React provider's lifecycle in a real React DOM renderer (happy-dom as
// the DOM) against the fake edge: auto-connect with a user, the original
// useWebSocketContext() usage (join in a child effect, onChatMessage,
// onNotification, sendChatMessage), disconnect on logout and on unmount.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Window } from "happy-dom";
import { WebSocket } from "ws";
import { FakeEdge, makeToken } from "../tools/fake-edge.mjs";

const win = new Window({ url: "http://localhost/" });
globalThis.window = win;
globalThis.document = win.document;
for (const k of ["navigator", "HTMLElement", "HTMLIFrameElement", "Node", "Event", "MutationObserver"]) {
  if (!(k in globalThis)) globalThis[k] = win[k];
}
globalThis.IS_REACT_ACT_ENVIRONMENT = false;

const React = (await import("react")).default;
const { createRoot } = await import("react-dom/client");
const { TalimProvider, useWebSocketContext } = await import("../static/talim-react.js");
const h = React.createElement;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(pred, what = "condition", timeout = 4000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (pred()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

let edge;
before(async () => {
  edge = await new FakeEdge().start();
});
after(async () => {
  await edge.stop();
  await win.happyDOM.close();
});

test("TalimProvider connects for a user, serves the original API and disconnects on logout/unmount", async () => {
  const received = [];
  const notes = [];
  let ctx;
  function Chat() {
    ctx = useWebSocketContext();
    const { joinChatRoom, onChatMessage, onNotification, connectionStatus, isConnected } = ctx;
    // exactly the original design's usage: these effects run before the provider's
    React.useEffect(() => {
      joinChatRoom("room-123");
    }, []);
    React.useEffect(() => onChatMessage((m) => received.push(m)), []);
    React.useEffect(() => onNotification((n) => notes.push(n)), []);
    return h("div", { id: "status", "data-status": connectionStatus }, isConnected ? "🟢" : "⚫");
  }
  const container = document.createElement("div");
  document.body.appendChild(container);
  const root = createRoot(container);
  const render = (user) =>
    root.render(h(TalimProvider, { url: edge.url, user, getToken: async () => makeToken("u1"), options: { WebSocket, logger: { log() {}, error() {} } } }, h(Chat)));

  render({ _id: "u1", name: "Teacher" });
  const status = () => container.querySelector("#status")?.getAttribute("data-status");
  await waitFor(() => status() === "connected", "connected");
  await waitFor(() => edge.framesOf("join-chat-room").length === 1, "join from the child effect");
  assert.equal(edge.framesOf("join-chat-room")[0].data.roomId, "room-123");
  assert.equal(container.querySelector("#status").textContent, "🟢");

  await sleep(50);
  edge.post("room-123", "from someone else", "s1");
  await waitFor(() => received.length === 1, "onChatMessage");
  assert.equal(received[0].content, "from someone else");

  const mine = await ctx.sendChatMessage({ roomId: "room-123", content: "Hello!", type: "text" });
  assert.equal(mine.content, "Hello!");
  await waitFor(() => received.length === 2, "own message delivered once");
  await sleep(50);
  assert.equal(received.length, 2);
  const read = await ctx.markMessageRead("room-123", mine.seq);
  assert.equal(read.lastReadSeq, mine.seq);

  edge.notify("u1", { title: "New assignment", body: "Math" });
  await waitFor(() => notes.length === 1, "onNotification");
  await waitFor(() => ctx.unreadNotifications === 1 && ctx.notifications.length === 1, "inbox state");

  // logout → disconnect
  render(null);
  await waitFor(() => status() === "disconnected" && edge.conns.size === 0, "disconnect on logout");
  assert.equal(ctx.client, null);
  // login again → reconnect and re-join the room the child asked for
  render({ _id: "u1" });
  await waitFor(() => status() === "connected", "reconnected after login");
  await waitFor(() => edge.framesOf("join-chat-room").length === 2, "room re-joined for the new session");

  root.unmount();
  await waitFor(() => edge.conns.size === 0, "disconnect on unmount");
});

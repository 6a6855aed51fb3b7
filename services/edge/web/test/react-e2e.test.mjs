// The original design's React components (WebSocketStatus, ChatExample,
// NotificationExample — see docs/clients.md) rendered with the real React DOM renderer
// (happy-dom as the DOM) against a real stack (`talim dev`). Skipped without
// TALIM_E2E_URL; scripts/jstest.sh sets it.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { Window } from "happy-dom";
import { WebSocket } from "ws";

const BASE = process.env.TALIM_E2E_URL;
const skip = BASE ? false : "set TALIM_E2E_URL (e.g. http://127.0.0.1:8080) to run against a real stack";

const win = new Window({ url: "http://localhost/" });
globalThis.window = win;
globalThis.document = win.document;
for (const k of ["navigator", "HTMLElement", "HTMLIFrameElement", "Node", "Event", "MutationObserver"]) {
  if (!(k in globalThis)) globalThis[k] = win[k];
}
globalThis.IS_REACT_ACT_ENVIRONMENT = false;
after(() => win.happyDOM.close());

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(pred, what = "condition", timeout = 10000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (pred()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("the original design's components work against the real stack", { skip }, async () => {
  const React = (await import("react")).default;
  const { createRoot } = await import("react-dom/client");
  const { TalimProvider, useWebSocketContext } = await import("../static/talim-react.js");
  const h = React.createElement;
  const { useEffect } = React;
  const marker = `react-e2e-${Date.now().toString(36)}`;

  // --- the original components, unchanged apart from JSX → h() and test hooks ---
  const WebSocketStatus = () => {
    const { isConnected, connectionStatus, connect } = useWebSocketContext();
    return h("div", { className: "ws-status", "data-status": connectionStatus },
      `Status: ${connectionStatus} `,
      isConnected ? "🟢" : connectionStatus === "connecting" ? "🟡" : connectionStatus === "error" ? "🔴" : "⚫",
      connectionStatus === "error" && h("button", { onClick: connect }, "Retry"));
  };
  const seen = { t1: [], s1: [] };
  const stored = [];
  const ChatExample = ({ who }) => {
    const { joinChatRoom, sendChatMessage, onChatMessage } = useWebSocketContext();
    useEffect(() => {
      joinChatRoom("room-123"); // fine before the socket is up: joins once connected
    }, []);
    useEffect(() => {
      const unsubscribe = onChatMessage((message) => seen[who].push(message));
      return unsubscribe;
    }, []);
    const sendMessage = () =>
      sendChatMessage({ content: `${marker} hello from ${who}`, roomId: "room-123", type: "text" })
        .then((m) => stored.push(m))
        .catch((err) => stored.push(err));
    return h("button", { className: "send", onClick: sendMessage }, "Send");
  };
  const toasts = [];
  const NotificationExample = () => {
    const { onNotification, unreadNotifications, markNotificationsRead } = useWebSocketContext();
    useEffect(() => onNotification((n) => toasts.push(n.title)), []);
    return h("button", { className: "bell", onClick: () => markNotificationsRead({ all: true }) }, `🔔 ${unreadNotifications}`);
  };
  // ---

  const options = { WebSocket, logger: { log() {}, warn() {}, error() {} } };
  const mount = (props, who) => {
    const el = document.createElement("div");
    document.body.appendChild(el);
    const root = createRoot(el);
    root.render(h(TalimProvider, { url: BASE, options, ...props }, h(WebSocketStatus), h(ChatExample, { who }), h(NotificationExample)));
    return { el, root };
  };
  // t1 as the original design did it: only the user (?userId=, development mode);
  // s1 with a token provider, as production apps do.
  const teacher = mount({ user: { _id: "t1", name: "Teacher" } }, "t1");
  const student = mount({
    user: { id: "s1" },
    getToken: async () => (await (await fetch(new URL("/dev/tokens", BASE))).json()).users.find((u) => u.userId === "s1").token,
  }, "s1");
  const status = (m) => m.el.querySelector(".ws-status") || { dataset: {}, textContent: "" };
  try {
    await waitFor(() => status(teacher).dataset.status === "connected" && status(student).dataset.status === "connected", "both connected");
    assert.match(status(student).textContent, /Status: connected 🟢/);
    await sleep(200); // both joins are sent right after connecting; give them their acks

    student.el.querySelector(".send").dispatchEvent(new win.MouseEvent("click", { bubbles: true }));
    await waitFor(() => seen.t1.some((m) => m.content === `${marker} hello from s1`), "t1 receives s1's message");
    teacher.el.querySelector(".send").dispatchEvent(new win.MouseEvent("click", { bubbles: true }));
    await waitFor(() => seen.s1.some((m) => m.content === `${marker} hello from t1`), "s1 receives t1's message");
    assert.equal(stored.length, 2);
    assert.ok(stored.every((m) => m.seq > 0 && m.id), `sends resolve with the stored messages: ${JSON.stringify(stored)}`);
    assert.equal(seen.s1.filter((m) => m.content.startsWith(marker)).length, 2, "s1 sees both, once each");

    if (process.env.TALIM_E2E_TALIM && process.env.TALIM_DATA_DIR) {
      const bell = () => student.el.querySelector(".bell").textContent;
      const before = Number(bell().replace(/\D/g, "")) || 0;
      await new Promise((res, rej) =>
        execFile(process.env.TALIM_E2E_TALIM, ["notify", "--to", "s1", "--title", `${marker} notice`], { env: process.env }, (err, _o, e) => (err ? rej(new Error(e)) : res())),
      );
      await waitFor(() => toasts.includes(`${marker} notice`), "onNotification");
      await waitFor(() => bell() === `🔔 ${before + 1}`, "unread count");
      student.el.querySelector(".bell").dispatchEvent(new win.MouseEvent("click", { bubbles: true }));
      await waitFor(() => bell() === "🔔 0", "marked read");
    }

    // logout: the provider disconnects
    teacher.root.render(h(TalimProvider, { url: BASE, options, user: null }, h(WebSocketStatus)));
    await waitFor(() => status(teacher).dataset.status === "disconnected", "t1 logged out");
  } finally {
    // unmounting disconnects the clients (their sockets would keep the process alive)
    teacher.root.unmount();
    student.root.unmount();
  }
});

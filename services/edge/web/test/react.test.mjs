// Smoke test of the React binding: it renders (server-side, so no effects run)
// and exposes the original useWebSocketContext() API.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as React from "react";
import { renderToString } from "react-dom/server";
import { TalimProvider, WebSocketProvider, useWebSocketContext, useChatRoom, createTalimReact } from "../static/talim-react.js";

const h = React.createElement;

test("TalimProvider renders its children with the original context API", () => {
  let seen;
  function Status() {
    const ctx = useWebSocketContext();
    seen = ctx;
    return h("span", { "data-status": ctx.connectionStatus }, ctx.isConnected ? "🟢" : "⚫");
  }
  const html = renderToString(h(TalimProvider, { url: "ws://127.0.0.1:1/ws", token: "x.y.z", user: { _id: "t1" } }, h(Status)));
  assert.match(html, /data-status="disconnected"/);
  assert.match(html, /⚫/);
  for (const k of ["isConnected", "connectionStatus", "joinChatRoom", "leaveChatRoom", "sendChatMessage", "markMessageRead", "onChatMessage", "onNotification", "client", "presence", "typing", "notifications", "unreadNotifications", "markNotificationsRead", "subscribePresence", "sendTyping"]) {
    assert.ok(k in seen, `context lacks ${k}`);
  }
  assert.equal(typeof seen.onChatMessage(() => {}), "function", "onChatMessage returns an unsubscribe function");
  assert.equal(typeof seen.onNotification(() => {}), "function");
  assert.equal(WebSocketProvider, TalimProvider);
});

test("useChatRoom renders an empty room before connecting", () => {
  function Room() {
    const { messages, isConnected } = useChatRoom("room-123");
    return h("ul", { "data-connected": String(isConnected) }, messages.map((m) => h("li", { key: m.id }, m.content)));
  }
  const html = renderToString(h(TalimProvider, { url: "ws://127.0.0.1:1/ws", token: "x.y.z" }, h(Room)));
  assert.match(html, /<ul data-connected="false"><\/ul>/);
});

test("useWebSocketContext outside a provider throws; createTalimReact accepts React", () => {
  function Bad() {
    useWebSocketContext();
    return null;
  }
  assert.throws(() => renderToString(h(Bad)), /within a TalimProvider/);
  const b = createTalimReact(React);
  assert.equal(typeof b.TalimProvider, "function");
  assert.throws(() => createTalimReact({}), TypeError);
});

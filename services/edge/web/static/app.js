// Demo page for Talim Realtime: plain ES module, no framework.
// Uses ./talim-client.js against the edge that serves this page.
import { TalimClient, decodeJwtPayload, uuid } from "./talim-client.js";

const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);
const WS_URL = params.get("ws") || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
const DEBUG = params.has("debug") ? true : false;

const STATUS_VIEW = {
  connected: ["🟢", "Connected"],
  connecting: ["🟡", "Connecting…"],
  disconnected: ["⚫", "Disconnected"],
  error: ["🔴", "Connection error"],
};

const state = {
  client: null,
  me: null, // {userId, name}
  users: [], // from /dev/tokens
  token: null,
  rooms: new Map(), // roomId -> room summary from list-rooms (+ unread)
  current: null, // roomId
  messages: new Map(), // id -> message (current room)
  hasMore: false,
  reads: new Map(), // userId -> seq (current room, others' read markers)
  members: new Map(), // userId -> {name}
  presence: new Map(), // userId -> status
  subscribed: new Set(),
  typing: new Map(), // userId -> timeout
  notifications: [],
  unreadNotifications: 0,
  pendingSends: new Map(), // clientMsgId -> {content}
  lastReadSent: 0,
};

// ------------------------------------------------------------------ helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null) e.append(c);
  return e;
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

function nameOf(userId) {
  if (state.me && userId === state.me.userId) return "You";
  const u = state.users.find((x) => x.userId === userId);
  if (u) return u.name;
  const m = state.members.get(userId);
  return (m && m.name) || userId;
}

function toast(title, body = "", { kind = "", timeout = 6000 } = {}) {
  const close = el("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": "Dismiss", text: "✕" });
  const t = el("div", { class: `toast ${kind}`, "data-testid": "toast" }, el("div", { class: "toast-title", text: title }), close, body ? el("div", { class: "toast-body", text: body }) : null);
  const remove = () => t.remove();
  close.addEventListener("click", remove);
  $("#toasts").append(t);
  if (timeout) setTimeout(remove, timeout);
  while ($("#toasts").children.length > 4) $("#toasts").firstElementChild.remove();
}

// ------------------------------------------------------------------ status

let retryTimerText = null;
function renderStatus(status, detail = {}) {
  const box = $("#status");
  box.dataset.status = status;
  const [icon, label] = STATUS_VIEW[status] || ["⚫", status];
  box.querySelector(".status-icon").textContent = icon;
  let text = label;
  if (status === "disconnected" && detail.retryInMs != null) text += ` — retrying in ${Math.ceil(detail.retryInMs / 1000)} s`;
  if (status === "error" && detail.error) text += ` (${detail.error.code || detail.error.message})`;
  box.querySelector(".status-text").textContent = text;
  $("#retry").hidden = status !== "error" && status !== "disconnected";
  const ready = status === "connected" && !!state.current;
  $("#message-input").disabled = !state.current;
  $("#send-button").disabled = !state.current;
  if (!ready && retryTimerText) clearTimeout(retryTimerText);
}

// ------------------------------------------------------------------ auth

async function fetchDevTokens() {
  try {
    const res = await fetch("/dev/tokens", { headers: { accept: "application/json" } });
    if (!res.ok) return null;
    const body = await res.json();
    return Array.isArray(body.users) ? body.users : null;
  } catch {
    return null;
  }
}

async function tokenFor(userId) {
  // dev tokens expire: fetch a fresh one on every (re)connect / refresh
  const users = await fetchDevTokens();
  if (users) state.users = users;
  const u = (users || state.users).find((x) => x.userId === userId);
  if (!u) throw new Error(`no dev token for ${userId}`);
  return u.token;
}

async function setupAuth() {
  const users = await fetchDevTokens();
  if (users && users.length) {
    state.users = users;
    const picker = $("#user-picker");
    picker.replaceChildren(...users.map((u) => el("option", { value: u.userId, text: `${u.name} (${u.userId}${u.roles && u.roles.length ? ", " + u.roles.join("/") : ""})` })));
    const wanted = params.get("user") || sessionStorage.getItem("talim.user") || users[0].userId;
    picker.value = users.some((u) => u.userId === wanted) ? wanted : users[0].userId;
    $("#picker-wrap").hidden = false;
    picker.addEventListener("change", () => signIn({ userId: picker.value }));
    renderDirectButtons();
    await signIn({ userId: picker.value });
  } else {
    $("#token-wrap").hidden = false;
    const saved = params.get("token") || sessionStorage.getItem("talim.token");
    if (saved) {
      $("#token-input").value = saved;
      await signIn({ token: saved });
    } else {
      $("#token-input").focus();
    }
  }
  $("#who").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("#token-input").value.trim();
    if (t) signIn({ token: t });
  });
}

function renderDirectButtons() {
  const others = state.users.filter((u) => !state.me || u.userId !== state.me.userId);
  $("#direct").hidden = others.length === 0;
  $("#direct-list").replaceChildren(
    ...others.map((u) =>
      el("button", {
        type: "button",
        class: "btn btn-small",
        text: u.name,
        onclick: async () => {
          try {
            const room = await state.client.openDirectRoom(u.userId);
            await loadRooms();
            openRoom(room.roomId || room.id);
          } catch (err) {
            toast("Could not open the direct room", err.message, { kind: "high" });
          }
        },
      }),
    ),
  );
}

// ------------------------------------------------------------------ connect

async function signIn({ userId, token }) {
  if (state.client) state.client.disconnect();
  resetChat();
  state.rooms.clear();
  renderRooms();
  state.notifications = [];
  state.unreadNotifications = 0;
  renderInbox();
  let getToken;
  if (userId) {
    sessionStorage.setItem("talim.user", userId);
    getToken = () => tokenFor(userId);
    const u = state.users.find((x) => x.userId === userId);
    state.me = { userId, name: u ? u.name : userId };
  } else {
    sessionStorage.setItem("talim.token", token);
    const claims = decodeJwtPayload(token) || {};
    state.me = { userId: claims.sub, name: claims.name || claims.sub };
    getToken = async () => token;
  }
  renderDirectButtons();
  const client = new TalimClient({ url: WS_URL, getToken, debug: DEBUG });
  state.client = client;
  window.talim = client; // handy for the console and for automation

  client.on("status", (s, d) => {
    if (client !== state.client) return;
    renderStatus(s, d);
    if (s === "connected") onConnected();
  });
  client.on("reconnecting", ({ delayMs }) => renderStatus("disconnected", { retryInMs: delayMs }));
  client.onChatMessage((m) => onMessage(m));
  client.on("chat-message-updated", ({ message }) => onMessageUpdated(message));
  client.on("room-updated", onRoomUpdated);
  client.on("message-read", onMessageRead);
  client.on("typing", onTyping);
  client.on("presence", (p) => setPresence(p.userId, p.status));
  client.on("presence-snapshot", (ack) => (ack.presence || []).forEach((p) => setPresence(p.userId, p.status)));
  client.on("room-membership", ({ roomId, change }) => {
    toast(change === "added" ? "Added to a room" : "Removed from a room", roomId, { kind: "info" });
    if (change === "removed" && roomId === state.current) resetChat();
    loadRooms();
  });
  client.on("room-reset", async ({ roomId }) => {
    // the server's store is behind what we saw (e.g. a wiped dev database): reload
    if (roomId !== state.current) return;
    state.messages.clear();
    try {
      const res = await client.history(roomId, { limit: 50 });
      for (const m of res.messages) state.messages.set(m.id, m);
      state.hasMore = res.hasMore;
    } catch {
      /* shown empty */
    }
    renderMessages({ scroll: "bottom" });
  });
  client.on("room-error", ({ roomId, code }) => {
    toast(`Cannot open ${roomId}`, code, { kind: "high" });
    if (roomId === state.current) resetChat();
  });
  client.onNotification(onNotification);
  client.on("notification-read", ({ ids, all, unread }) => {
    const now = new Date().toISOString();
    for (const n of state.notifications) if (all || (ids || []).includes(n.id)) n.readAt = n.readAt || now;
    if (typeof unread === "number") state.unreadNotifications = unread;
    renderInbox();
  });
  client.on("error", (data) => {
    if (data && data.code === "rate_limited") toast("Slow down", data.message || "Too many actions", { kind: "high" });
  });
  renderStatus(client.status);
  client.connect();
}

async function onConnected() {
  await loadRooms();
  loadNotifications();
  if (!state.current) {
    const saved = sessionStorage.getItem(`talim.room.${state.me.userId}`);
    const pick = [saved, "room-123"].find((r) => r && state.rooms.has(r)) || (state.rooms.size ? state.rooms.keys().next().value : null);
    if (pick) openRoom(pick);
  } else {
    // re-joined automatically by the client; refresh the read marker
    markReadSoon();
  }
}

// ------------------------------------------------------------------ rooms

async function loadRooms() {
  try {
    const rooms = await state.client.listRooms();
    const known = new Map(state.rooms);
    state.rooms.clear();
    for (const r of rooms) state.rooms.set(r.roomId, { ...known.get(r.roomId), ...r });
    // the seeded open room is joinable even before we are a member
    if (!state.rooms.has("room-123")) state.rooms.set("room-123", { roomId: "room-123", name: "room-123", type: "open", unread: 0, lastSeq: 0, lastReadSeq: 0 });
    if (state.current && !state.rooms.has(state.current)) state.rooms.set(state.current, { roomId: state.current, name: state.current, unread: 0 });
    renderRooms();
  } catch (err) {
    if (err.code !== "disconnected") toast("Could not load rooms", err.message, { kind: "high" });
  }
}

function roomLabel(r) {
  if (r.type === "direct" && r.name === r.roomId) return "Direct chat";
  return r.name || r.roomId;
}

function renderRooms() {
  const list = $("#room-list");
  list.replaceChildren(
    ...[...state.rooms.values()].map((r) => {
      const unread = r.roomId === state.current ? 0 : r.unread || 0;
      const last = r.lastMessage ? `${state.me && r.lastMessage.senderId === state.me.userId ? "You" : r.lastMessage.senderName || nameOf(r.lastMessage.senderId)}: ${r.lastMessage.deleted ? "message deleted" : r.lastMessage.content}` : "";
      return el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "room",
            "data-testid": `room-${r.roomId}`,
            "data-unread": String(unread),
            "aria-current": r.roomId === state.current ? "true" : "false",
            "aria-label": `${roomLabel(r)}${unread ? `, ${unread} unread` : ""}`,
            onclick: () => openRoom(r.roomId),
          },
          el("span", { class: "room-name", text: roomLabel(r) }),
          unread ? el("span", { class: "badge", "data-testid": "unread", text: unread > 99 ? "99+" : String(unread) }) : el("span", { class: "room-type", text: r.type || "" }),
          last ? el("span", { class: "room-last", text: last }) : null,
        ),
      );
    }),
  );
}

function onRoomUpdated({ roomId, lastSeq, lastMessage }) {
  const r = state.rooms.get(roomId) || { roomId, name: roomId, unread: 0, lastSeq: 0 };
  if (roomId !== state.current) {
    const mine = lastMessage && state.me && lastMessage.senderId === state.me.userId;
    const delta = Math.max(0, (lastSeq || 0) - (r.lastSeq || 0));
    if (!mine) r.unread = (r.unread || 0) + (delta || 1);
  }
  r.lastSeq = Math.max(r.lastSeq || 0, lastSeq || 0);
  if (lastMessage) r.lastMessage = lastMessage;
  state.rooms.set(roomId, r);
  renderRooms();
}

function resetChat() {
  state.current = null;
  state.messages.clear();
  state.reads.clear();
  state.members.clear();
  state.hasMore = false;
  state.lastReadSent = 0;
  for (const t of state.typing.values()) clearTimeout(t);
  state.typing.clear();
  $("#room-title").textContent = "Pick a room";
  renderMessages();
  renderMembers();
  renderTyping();
  renderStatus(state.client ? state.client.status : "disconnected");
}

async function openRoom(roomId) {
  if (!roomId || roomId === state.current) return;
  const client = state.client;
  const previous = state.current;
  if (previous) client.leaveRoom(previous).catch(() => {});
  resetChat();
  state.current = roomId;
  sessionStorage.setItem(`talim.room.${state.me.userId}`, roomId);
  const r = state.rooms.get(roomId);
  $("#room-title").textContent = r ? roomLabel(r) : roomId;
  renderRooms();
  renderStatus(client.status);
  try {
    const res = await client.joinRoom(roomId, { limit: 50 });
    if (state.current !== roomId || client !== state.client) return;
    for (const m of res.messages) state.messages.set(m.id, m);
    state.hasMore = res.hasMore;
    const room = state.rooms.get(roomId) || { roomId, name: roomId };
    room.unread = 0;
    room.lastSeq = res.lastSeq;
    state.rooms.set(roomId, room);
    for (const m of res.messages) noteMember(m.senderId, m.senderName);
    renderRooms();
    renderMessages({ scroll: "bottom" });
    renderMembers();
    markReadSoon();
    $("#message-input").focus();
  } catch (err) {
    if (state.current !== roomId) return;
    toast(`Cannot join ${roomId}`, err.code === "forbidden" ? "You are not a member of this room." : err.message, { kind: "high" });
    resetChat();
    renderRooms();
  }
}

// ------------------------------------------------------------------ messages

function onMessage(m) {
  if (m.roomId !== state.current) return;
  // our own optimistic copy is replaced by the stored message
  if (m.clientMsgId && state.pendingSends.has(m.clientMsgId)) {
    state.pendingSends.delete(m.clientMsgId);
  }
  const atBottom = isAtBottom();
  state.messages.set(m.id, m);
  noteMember(m.senderId, m.senderName);
  // The typing indicator follows the typing events only (the sender's "stopped" comes
  // before the message, or within the server's ~1 s throttle): clearing it here would
  // hide a "typing" that the throttle merged with the previous one.
  const r = state.rooms.get(m.roomId);
  if (r) {
    r.lastSeq = Math.max(r.lastSeq || 0, m.seq);
    r.lastMessage = m;
    renderRooms();
  }
  renderMessages({ scroll: atBottom || (state.me && m.senderId === state.me.userId) ? "bottom" : null });
  markReadSoon();
}

function onMessageUpdated(m) {
  if (m.roomId !== state.current || !state.messages.has(m.id)) return;
  state.messages.set(m.id, m);
  renderMessages();
}

function isAtBottom() {
  const w = $("#messages-wrap");
  return w.scrollHeight - w.scrollTop - w.clientHeight < 40;
}

function sortedMessages() {
  return [...state.messages.values()].sort((a, b) => a.seq - b.seq);
}

function renderMessages({ scroll = null, keepOffsetFrom = null } = {}) {
  const wrap = $("#messages-wrap");
  const list = $("#messages");
  const msgs = sortedMessages();
  const pending = [...state.pendingSends.entries()].filter(([, p]) => p.roomId === state.current);
  const existing = new Map([...list.children].map((li) => [li.dataset.id, li]));
  const nodes = [];
  for (const m of msgs) {
    const key = `${m.id}|${m.editedAt || ""}|${m.deleted ? 1 : 0}|${receiptKey(m)}`;
    let li = existing.get(m.id);
    if (!li || li.dataset.key !== key || li.classList.contains("editing")) {
      if (li && li.classList.contains("editing") && !m.deleted) nodes.push(li);
      else nodes.push(renderMessage(m, key));
    } else nodes.push(li);
  }
  for (const [clientMsgId, p] of pending) {
    nodes.push(
      el(
        "li",
        { class: "msg own pending", "data-testid": "pending-message", "data-client-msg-id": clientMsgId },
        el("div", { class: "msg-meta" }, el("span", { class: "msg-sender", text: "You" }), el("span", { text: p.queued ? "queued — will send when back online" : "sending…" })),
        el("div", { class: "msg-content", text: p.content }),
      ),
    );
  }
  // only touch the DOM where it changed so screen readers announce additions only
  let i = 0;
  for (; i < nodes.length; i++) {
    if (list.children[i] !== nodes[i]) list.insertBefore(nodes[i], list.children[i] || null);
  }
  while (list.children.length > nodes.length) list.lastElementChild.remove();
  $("#empty").hidden = msgs.length > 0 || pending.length > 0 || !state.current;
  $("#load-older").hidden = !state.hasMore;
  if (scroll === "bottom") wrap.scrollTop = wrap.scrollHeight;
  else if (keepOffsetFrom != null) wrap.scrollTop = wrap.scrollHeight - keepOffsetFrom;
}

function receiptKey(m) {
  if (!state.me || m.senderId !== state.me.userId) return "";
  return readersOf(m).join(",");
}

function readersOf(m) {
  const out = [];
  for (const [userId, seq] of state.reads) if (userId !== m.senderId && seq >= m.seq) out.push(userId);
  return out;
}

function renderMessage(m, key) {
  const own = state.me && m.senderId === state.me.userId;
  const system = m.type === "system" || String(m.senderId).startsWith("svc:");
  const li = el("li", {
    class: `msg${own ? " own" : ""}${system ? " system" : ""}${m.deleted ? " deleted" : ""}`,
    "data-testid": "message",
    "data-seq": String(m.seq),
    "data-id": m.id,
    "data-sender": m.senderId,
    "data-key": key,
  });
  const meta = el(
    "div",
    { class: "msg-meta" },
    el("span", { class: "msg-sender", text: own ? "You" : m.senderName || nameOf(m.senderId) }),
    el("time", { datetime: m.createdAt, text: fmtTime(m.createdAt) }),
    m.editedAt && !m.deleted ? el("span", { text: "(edited)" }) : null,
  );
  if (own && !m.deleted) {
    meta.append(
      el(
        "span",
        { class: "msg-actions" },
        el("button", { type: "button", "data-testid": "edit", "aria-label": `Edit message ${m.seq}`, text: "Edit", onclick: () => startEdit(li, m) }),
        el("button", { type: "button", "data-testid": "delete", "aria-label": `Delete message ${m.seq}`, text: "Delete", onclick: () => deleteMessage(m) }),
      ),
    );
  }
  li.append(meta, el("div", { class: "msg-content", text: m.deleted ? "Message deleted" : m.content }));
  if (own && !m.deleted) {
    const readers = readersOf(m);
    li.append(
      el("div", {
        class: `receipt${readers.length ? " read" : ""}`,
        "data-testid": "receipt",
        title: readers.length ? `Read by ${readers.map(nameOf).join(", ")}` : "Delivered",
        text: readers.length ? `✓✓ Read by ${readers.map(nameOf).join(", ")}` : "✓ Delivered",
      }),
    );
  }
  return li;
}

function startEdit(li, m) {
  li.classList.add("editing");
  const content = li.querySelector(".msg-content");
  const input = el("textarea", { class: "msg-edit", "aria-label": "Edit message", rows: "2" });
  input.value = m.content;
  const done = () => {
    li.classList.remove("editing");
    input.replaceWith(content);
  };
  input.addEventListener("keydown", async (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      done();
      renderMessages();
    } else if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      const text = input.value.trim();
      if (!text || text === m.content) return done();
      try {
        const updated = await state.client.editMessage(m.roomId, m.id, text);
        done();
        onMessageUpdated(updated);
      } catch (err) {
        toast("Edit failed", err.message, { kind: "high" });
      }
    }
  });
  content.replaceWith(input);
  input.focus();
}

async function deleteMessage(m) {
  if (!confirm("Delete this message?")) return;
  try {
    const updated = await state.client.deleteMessage(m.roomId, m.id);
    onMessageUpdated(updated);
  } catch (err) {
    toast("Delete failed", err.message, { kind: "high" });
  }
}

async function loadOlder() {
  const first = sortedMessages()[0];
  if (!first || !state.current) return;
  const roomId = state.current;
  const wrap = $("#messages-wrap");
  const offset = wrap.scrollHeight - wrap.scrollTop;
  $("#load-older").disabled = true;
  try {
    const res = await state.client.history(roomId, { beforeSeq: first.seq, limit: 50 });
    if (state.current !== roomId) return;
    for (const m of res.messages) {
      state.messages.set(m.id, m);
      noteMember(m.senderId, m.senderName);
    }
    state.hasMore = res.hasMore;
    renderMessages({ keepOffsetFrom: offset });
    renderMembers();
  } catch (err) {
    toast("Could not load older messages", err.message, { kind: "high" });
  } finally {
    $("#load-older").disabled = false;
  }
}

let markTimer = null;
let sendGate = Promise.resolve();
function markReadSoon() {
  clearTimeout(markTimer);
  markTimer = setTimeout(markReadNow, 300);
}

/** Mark the newest message of the open room read (resolves when acknowledged). */
function markReadNow() {
  clearTimeout(markTimer);
  if (!state.current || document.visibilityState === "hidden" || !state.client || state.client.status !== "connected") return Promise.resolve();
  const msgs = sortedMessages();
  const last = msgs[msgs.length - 1];
  if (!last || last.seq <= state.lastReadSent) return Promise.resolve();
  state.lastReadSent = last.seq;
  return state.client.markRead(state.current, last.seq).catch(() => (state.lastReadSent = 0));
}
document.addEventListener("visibilitychange", markReadSoon);

function onMessageRead({ roomId, userId, seq }) {
  if (roomId !== state.current || (state.me && userId === state.me.userId)) return;
  state.reads.set(userId, Math.max(state.reads.get(userId) || 0, seq));
  noteMember(userId);
  renderMessages();
}

// ------------------------------------------------------------------ composer

let typingSentAt = 0;
let typingStopTimer = null;
function onComposerInput() {
  const input = $("#message-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  if (!state.current || state.client.status !== "connected") return;
  const now = Date.now();
  if (input.value.trim() && now - typingSentAt > 2500) {
    typingSentAt = now;
    state.client.typing(state.current, true).catch(() => {});
  }
  clearTimeout(typingStopTimer);
  typingStopTimer = setTimeout(stopTyping, 3000);
}

function stopTyping() {
  clearTimeout(typingStopTimer);
  if (!typingSentAt || !state.current) return;
  typingSentAt = 0;
  if (state.client.status === "connected") state.client.typing(state.current, false).catch(() => {});
}

async function send() {
  const input = $("#message-input");
  const content = input.value.trim();
  if (!content || !state.current) return;
  const roomId = state.current;
  input.value = "";
  onComposerInput();
  stopTyping();
  const clientMsgId = uuid();
  state.pendingSends.set(clientMsgId, { roomId, content, queued: state.client.status !== "connected" });
  renderMessages({ scroll: "bottom" });
  // Sending moves our read marker past our own message without a message-read event,
  // so mark what we have seen first: otherwise a quick reply hides the receipt of the
  // message it answers.
  // (Chained, so that sends keep their order.)
  await (sendGate = sendGate.then(markReadNow, markReadNow));
  try {
    const m = await state.client.sendMessage(roomId, content, { clientMsgId });
    state.pendingSends.delete(clientMsgId);
    if (m && m.roomId === state.current && !state.messages.has(m.id)) onMessage(m);
    else renderMessages();
  } catch (err) {
    state.pendingSends.delete(clientMsgId);
    renderMessages();
    const why = err.code === "forbidden" ? "You cannot post in this room." : err.code === "rate_limited" ? `Too fast — try again in ${Math.ceil((err.retryAfterMs || 1000) / 1000)} s.` : err.message;
    toast("Message not sent", why, { kind: "high" });
    if (!input.value) input.value = content;
  }
}

// ------------------------------------------------------------------ typing & presence

function onTyping({ roomId, userId, isTyping }) {
  if (roomId !== state.current || (state.me && userId === state.me.userId)) return;
  clearTimeout(state.typing.get(userId));
  if (isTyping) state.typing.set(userId, setTimeout(() => clearTypingOf(userId), 6000));
  else state.typing.delete(userId);
  noteMember(userId);
  renderTyping();
}

function clearTypingOf(userId) {
  if (!state.typing.has(userId)) return;
  clearTimeout(state.typing.get(userId));
  state.typing.delete(userId);
  renderTyping();
}

function renderTyping() {
  const names = [...state.typing.keys()].map(nameOf);
  $("#typing").textContent = names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]} are typing…`;
}

function noteMember(userId, name) {
  if (!userId || (state.me && userId === state.me.userId) || String(userId).startsWith("svc:")) return;
  const known = state.members.get(userId);
  if (known) {
    if (name && !known.name) known.name = name;
    return;
  }
  state.members.set(userId, { name });
  renderMembers();
  if (!state.subscribed.has(userId)) {
    state.subscribed.add(userId);
    queueSubscribe(userId);
  }
}

let subBatch = [];
let subTimer = null;
function queueSubscribe(userId) {
  subBatch.push(userId);
  clearTimeout(subTimer);
  subTimer = setTimeout(() => {
    const ids = subBatch;
    subBatch = [];
    state.client
      .subscribePresence(ids)
      .then((ack) => (ack.presence || []).forEach((p) => setPresence(p.userId, p.status)))
      .catch(() => ids.forEach((id) => state.subscribed.delete(id)));
  }, 50);
}

function setPresence(userId, status) {
  state.presence.set(userId, status);
  renderMembers();
}

function renderMembers() {
  $("#members").replaceChildren(
    ...[...state.members.keys()].map((userId) => {
      const status = state.presence.get(userId) || "unknown";
      return el(
        "li",
        { "data-testid": `presence-${userId}`, "data-presence": status },
        el("span", { class: "dot", "data-presence": status, "aria-hidden": "true" }),
        el("span", { text: nameOf(userId) }),
        el("span", { class: "visually-hidden", text: `(${status})` }),
      );
    }),
  );
}

// ------------------------------------------------------------------ notifications

async function loadNotifications() {
  try {
    const res = await state.client.listNotifications({ limit: 50 });
    state.notifications = res.notifications || [];
    state.unreadNotifications = typeof res.unread === "number" ? res.unread : state.notifications.filter((n) => !n.readAt).length;
    renderInbox();
  } catch {
    /* the inbox stays as it is */
  }
}

function onNotification(n) {
  state.notifications = [n, ...state.notifications.filter((x) => x.id !== n.id)];
  if (!n.readAt) state.unreadNotifications++;
  renderInbox();
  toast(n.title || "Notification", n.body || "", { kind: n.priority === "high" || n.priority === "urgent" ? "high" : "", timeout: n.requireAck ? 0 : 6000 });
}

function renderInbox() {
  const count = state.unreadNotifications;
  $("#inbox-count").hidden = !count;
  $("#inbox-count").textContent = count > 99 ? "99+" : String(count);
  $("#inbox-toggle").setAttribute("aria-label", `Notifications${count ? `, ${count} unread` : ""}`);
  $("#inbox-unread").textContent = count ? `(${count} unread)` : "";
  $("#inbox-empty").hidden = state.notifications.length > 0;
  $("#inbox-list").replaceChildren(
    ...state.notifications.map((n) =>
      el(
        "li",
        { class: n.readAt ? "" : "unread", "data-testid": "notification", "data-id": n.id },
        el("div", { class: "note-title", text: n.title || n.category || "Notification" }),
        n.body ? el("div", { text: n.body }) : null,
        el(
          "div",
          { class: "note-meta" },
          el("span", { text: [n.category, fmtTime(n.createdAt)].filter(Boolean).join(" · ") }),
          !n.readAt ? el("button", { type: "button", class: "btn btn-small", text: "Mark read", onclick: () => markNotificationsRead([n.id]) }) : null,
          n.requireAck && !n.ackedAt ? el("button", { type: "button", class: "btn btn-small btn-primary", text: "Acknowledge", onclick: () => ackNotification(n) }) : null,
          n.ackedAt ? el("span", { text: "✓ acknowledged" }) : null,
        ),
      ),
    ),
  );
}

async function markNotificationsRead(idsOrAll) {
  try {
    const ack = await state.client.markNotificationsRead(idsOrAll);
    const now = new Date().toISOString();
    for (const n of state.notifications) if (idsOrAll.all || (Array.isArray(idsOrAll) && idsOrAll.includes(n.id))) n.readAt = n.readAt || now;
    if (typeof ack.unread === "number") state.unreadNotifications = ack.unread;
    renderInbox();
  } catch (err) {
    toast("Could not mark as read", err.message, { kind: "high" });
  }
}

async function ackNotification(n) {
  try {
    const ack = await state.client.ackNotification(n.id);
    n.ackedAt = ack.ackedAt || new Date().toISOString();
    if (!n.readAt) await markNotificationsRead([n.id]);
    renderInbox();
  } catch (err) {
    toast("Could not acknowledge", err.message, { kind: "high" });
  }
}

function toggleInbox(open) {
  const inbox = $("#inbox");
  const show = open ?? inbox.hidden;
  inbox.hidden = !show;
  $("#inbox-toggle").setAttribute("aria-expanded", String(show));
  if (show) $("#mark-all-read").focus();
  else $("#inbox-toggle").focus();
}

// ------------------------------------------------------------------ wiring

function wire() {
  $("#retry").addEventListener("click", () => state.client && state.client.connect());
  $("#refresh-rooms").addEventListener("click", () => loadRooms());
  $("#load-older").addEventListener("click", loadOlder);
  $("#messages-wrap").addEventListener("scroll", () => {
    if ($("#messages-wrap").scrollTop === 0 && state.hasMore && !$("#load-older").disabled) loadOlder();
  });
  $("#composer").addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
  const input = $("#message-input");
  input.addEventListener("input", onComposerInput);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  input.addEventListener("blur", stopTyping);
  $("#inbox-toggle").addEventListener("click", () => toggleInbox());
  $("#inbox-close").addEventListener("click", () => toggleInbox(false));
  $("#mark-all-read").addEventListener("click", () => markNotificationsRead({ all: true }));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("#inbox").hidden) toggleInbox(false);
  });
}

wire();
renderStatus("disconnected");
renderInbox();
setupAuth();

// talim-react-core.js — React binding for talim-client.js, without importing
// React: pass your React in. `talim-react.js` binds it to `import "react"`.
// No JSX (React.createElement), no build step.
//
//   import * as React from "react";
//   import { createTalimReact } from "./talim-react-core.js";
//   export const { TalimProvider, useWebSocketContext } = createTalimReact(React);

import { TalimClient } from "./talim-client.js";

/**
 * Build the provider and hooks for a given React.
 * @param {any} ReactIn  the `react` module (namespace or default export)
 */
export function createTalimReact(ReactIn) {
  const React = ReactIn && ReactIn.createElement ? ReactIn : ReactIn && ReactIn.default;
  if (!React || !React.createElement) throw new TypeError("createTalimReact: pass the React module");
  const { createContext, useContext, useEffect, useMemo, useRef, useState, useCallback, createElement } = React;

  const TalimContext = createContext(null);
  TalimContext.displayName = "TalimContext";

  /** Tiny listener registry that survives client re-creation. */
  function makeRegistry() {
    const sets = new Map();
    return {
      add(event, fn) {
        let s = sets.get(event);
        if (!s) sets.set(event, (s = new Set()));
        s.add(fn);
        return () => s.delete(fn);
      },
      emit(event, ...args) {
        const s = sets.get(event);
        if (!s) return;
        for (const fn of [...s]) {
          try {
            fn(...args);
          } catch (err) {
            console.error(`talim-react: ${event} listener threw`, err);
          }
        }
      },
    };
  }

  function userIdOf(user) {
    if (!user) return undefined;
    if (typeof user === "string") return user;
    return user._id ?? user.id ?? user.userId ?? user.sub;
  }

  /**
   * Connects while a user (or a token) is present; disconnects on logout/unmount.
   * Props: {url, token?, getToken?, user?, options?, client?, children}
   *   - `user`: the signed-in user (object with _id/id/userId, or an id). `null`
   *     means logged out. When omitted, the presence of token/getToken decides.
   *   - without token/getToken, `user`'s id is sent as `?userId=` (development mode
   *     of the edge only, like the original design).
   *   - `options`: extra TalimClient options (WebSocket, debug, reconnect...).
   *   - `client`: use an existing TalimClient instead (the provider does not own it).
   */
  function TalimProvider(props) {
    const { url, token, getToken, user, options, client: external, children } = props;
    const uid = userIdOf(user);
    const hasAuth = !!(token || getToken);
    const enabled = external ? true : user === undefined ? hasAuth : !!user && (hasAuth || uid != null);

    const registry = useRef(null);
    if (!registry.current) registry.current = makeRegistry();
    const getTokenRef = useRef(getToken);
    getTokenRef.current = getToken;
    const tokenRef = useRef(token);
    tokenRef.current = token;
    const optionsRef = useRef(options);
    optionsRef.current = options;

    const [client, setClient] = useState(external || null);
    // Calls made before the client exists (children's effects run before the
    // provider's) wait here; rooms asked for are (re)joined on every new client.
    const clientRef = useRef(null);
    const queueRef = useRef([]);
    const roomsRef = useRef(new Map());
    const enabledRef = useRef(enabled);
    enabledRef.current = enabled;
    const [status, setStatus] = useState(external ? external.status : "disconnected");
    const [lastError, setLastError] = useState(null);
    const [notifications, setNotifications] = useState([]);
    const [unreadNotifications, setUnreadNotifications] = useState(0);
    const [presence, setPresence] = useState({});
    const [typing, setTyping] = useState({});

    // Create / destroy the client when the identity or endpoint changes.
    useEffect(() => {
      if (!enabled) {
        setClient(null);
        setStatus("disconnected");
        const q = queueRef.current;
        queueRef.current = [];
        for (const job of q) job.reject(Object.assign(new Error("not signed in"), { code: "disconnected" }));
        return undefined;
      }
      const owned = !external;
      const c =
        external ||
        new TalimClient({
          ...(optionsRef.current || {}),
          url,
          token: getTokenRef.current ? undefined : tokenRef.current,
          getToken: getTokenRef.current ? () => getTokenRef.current() : undefined,
          query: !getTokenRef.current && !tokenRef.current && uid != null ? { userId: String(uid) } : (optionsRef.current || {}).query,
        });
      const reg = registry.current;
      const typingTimers = new Map();
      const offs = [
        c.on("status", (s, detail) => {
          setStatus(s);
          if (s === "error") setLastError(detail && detail.error ? detail.error : null);
          if (s === "connected") setLastError(null);
          reg.emit("status", s, detail);
        }),
        c.onChatMessage((m, meta) => reg.emit("chat-message", m, meta)),
        c.on("chat-room-history", (d) => reg.emit("chat-room-history", d)),
        c.on("chat-message-updated", (d) => reg.emit("chat-message-updated", d.message)),
        c.on("message-read", (d) => reg.emit("message-read", d)),
        c.on("room-updated", (d) => reg.emit("room-updated", d)),
        c.on("room-membership", (d) => reg.emit("room-membership", d)),
        c.on("error", (d) => reg.emit("error", d)),
        c.onNotification((n) => {
          setNotifications((list) => [n, ...list.filter((x) => x.id !== n.id)].slice(0, 200));
          if (!n.readAt) setUnreadNotifications((u) => u + 1);
          reg.emit("notification", n);
        }),
        c.on("notification-read", (d) => {
          if (typeof d.unread === "number") setUnreadNotifications(d.unread);
          const now = new Date().toISOString();
          setNotifications((list) => list.map((n) => (d.all || (d.ids || []).includes(n.id) ? { ...n, readAt: n.readAt || now } : n)));
        }),
        c.on("presence", (p) => setPresence((m) => ({ ...m, [p.userId]: p }))),
        c.on("presence-snapshot", (ack) => {
          setPresence((m) => {
            const next = { ...m };
            for (const p of ack.presence || []) next[p.userId] = p;
            return next;
          });
        }),
        c.on("typing", (t) => {
          const key = `${t.roomId}\u0000${t.userId}`;
          clearTimeout(typingTimers.get(key));
          const apply = (isTyping) =>
            setTyping((m) => {
              const cur = new Set(m[t.roomId] || []);
              if (isTyping) cur.add(t.userId);
              else cur.delete(t.userId);
              return { ...m, [t.roomId]: [...cur] };
            });
          apply(t.isTyping);
          // typing events are ephemeral: expire after 6 s without a refresh
          if (t.isTyping) typingTimers.set(key, setTimeout(() => apply(false), 6000));
        }),
      ];
      clientRef.current = c;
      setClient(c);
      setStatus(c.status);
      const q = queueRef.current;
      queueRef.current = [];
      for (const job of q) {
        try {
          Promise.resolve(job.fn(c)).then(job.resolve, job.reject);
        } catch (err) {
          job.reject(err);
        }
      }
      const known = new Set(c.joinedRooms.map((r) => r.roomId));
      for (const [roomId, o] of roomsRef.current) if (!known.has(roomId)) c.joinRoom(roomId, o).catch(() => {});
      if (owned) c.connect();
      return () => {
        if (clientRef.current === c) clientRef.current = null;
        for (const off of offs) off();
        for (const t of typingTimers.values()) clearTimeout(t);
        if (owned) c.disconnect();
      };
      // eslint-disable-next-line react-hooks/exhaustive-deps
    }, [enabled, url, uid, external, !!getToken]);

    // A new static token for the same user: refresh it in place.
    useEffect(() => {
      if (client && token && !getToken && !external) client.setToken(token);
    }, [client, token]);

    // Load the notification inbox on connect.
    useEffect(() => {
      if (!client || status !== "connected") return;
      let live = true;
      client
        .listNotifications({ limit: 50 })
        .then((res) => {
          if (!live) return;
          setNotifications(res.notifications || []);
          if (typeof res.unread === "number") setUnreadNotifications(res.unread);
        })
        .catch(() => {});
      return () => {
        live = false;
      };
    }, [client, status]);

    const value = useMemo(() => {
      const reg = registry.current;
      /** run fn(client) now, or once the client exists */
      const call = (fn) => {
        const c = clientRef.current;
        if (c) return fn(c);
        if (!enabledRef.current) return Promise.reject(Object.assign(new Error("not signed in"), { code: "disconnected" }));
        return new Promise((resolve, reject) => queueRef.current.push({ fn, resolve, reject }));
      };
      return {
        client,
        isConnected: status === "connected",
        connectionStatus: status,
        lastError,
        connect: () => client && client.connect(),
        disconnect: () => client && client.disconnect(),
        // chat — the original API
        joinChatRoom: (roomId, opts) => {
          roomsRef.current.set(roomId, opts || {});
          return call((c) => c.joinRoom(roomId, opts));
        },
        leaveChatRoom: (roomId) => {
          roomsRef.current.delete(roomId);
          return call((c) => c.leaveRoom(roomId));
        },
        sendChatMessage: ({ roomId, content, type, clientMsgId }) => call((client) => client.sendMessage(roomId, content, { type, clientMsgId })),
        markMessageRead: (roomId, seqOrMessageId) => call((client) => client.markRead(roomId, seqOrMessageId)),
        onChatMessage: (fn) => reg.add("chat-message", fn),
        onNotification: (fn) => reg.add("notification", fn),
        // more chat
        onChatHistory: (fn) => reg.add("chat-room-history", fn),
        onMessageUpdated: (fn) => reg.add("chat-message-updated", fn),
        onMessageRead: (fn) => reg.add("message-read", fn),
        onRoomUpdated: (fn) => reg.add("room-updated", fn),
        onStatus: (fn) => reg.add("status", fn),
        getHistory: (roomId, opts) => call((client) => client.history(roomId, opts)),
        editChatMessage: (roomId, messageId, content) => call((client) => client.editMessage(roomId, messageId, content)),
        deleteChatMessage: (roomId, messageId) => call((client) => client.deleteMessage(roomId, messageId)),
        listRooms: () => call((client) => client.listRooms()),
        openDirectRoom: (userId) => call((client) => client.openDirectRoom(userId)),
        // typing
        typing,
        sendTyping: (roomId, isTyping) => call((client) => client.typing(roomId, isTyping)),
        // presence
        presence,
        subscribePresence: (userIds) => call((client) => client.subscribePresence(userIds).then((ack) => {
            setPresence((m) => {
              const next = { ...m };
              for (const p of ack.presence || []) next[p.userId] = p;
              return next;
            });
            return ack;
          }),
        ),
        unsubscribePresence: (userIds) => call((client) => client.unsubscribePresence(userIds)),
        setStatus: (s) => call((client) => client.setStatus(s)),
        // notifications inbox
        notifications,
        unreadNotifications,
        markNotificationsRead: (idsOrAll) => call((client) => client.markNotificationsRead(idsOrAll).then((ack) => {
            const ids = Array.isArray(idsOrAll) ? idsOrAll : idsOrAll.ids || [];
            const all = !Array.isArray(idsOrAll) && !!idsOrAll.all;
            const now = new Date().toISOString();
            setNotifications((list) => list.map((n) => (all || ids.includes(n.id) ? { ...n, readAt: n.readAt || now } : n)));
            if (typeof ack.unread === "number") setUnreadNotifications(ack.unread);
            return ack;
          }),
        ),
        ackNotification: (id) => call((client) => client.ackNotification(id).then((ack) => {
            setNotifications((list) => list.map((n) => (n.id === id ? { ...n, ackedAt: ack.ackedAt } : n)));
            return ack;
          }),
        ),
        refreshNotifications: (opts) => call((client) => client.listNotifications({ limit: 50, ...(opts || {}) }).then((res) => {
            setNotifications(res.notifications || []);
            if (typeof res.unread === "number") setUnreadNotifications(res.unread);
            return res;
          }),
        ),
      };
    }, [client, status, lastError, notifications, unreadNotifications, presence, typing]);

    return createElement(TalimContext.Provider, { value }, children);
  }

  /** The original `useWebSocketContext()`; throws outside a TalimProvider. */
  function useWebSocketContext() {
    const ctx = useContext(TalimContext);
    if (!ctx) throw new Error("useWebSocketContext must be used within a TalimProvider");
    return ctx;
  }

  /**
   * Convenience hook: join a room while mounted and keep its messages.
   * @param {string|null|undefined} roomId
   * @param {{limit?: number}} [opts]
   */
  function useChatRoom(roomId, opts = {}) {
    const ctx = useWebSocketContext();
    const { client, isConnected } = ctx;
    const [messages, setMessages] = useState([]);
    const [hasMore, setHasMore] = useState(false);
    const [error, setError] = useState(null);
    const limit = opts.limit;

    useEffect(() => {
      if (!client || !roomId) return undefined;
      let live = true;
      setMessages([]);
      const upsert = (m) =>
        setMessages((list) => {
          const i = list.findIndex((x) => x.id === m.id);
          if (i >= 0) {
            const next = list.slice();
            next[i] = m;
            return next;
          }
          const next = [...list, m];
          next.sort((a, b) => a.seq - b.seq);
          return next;
        });
      const offs = [
        client.onChatMessage((m) => m.roomId === roomId && upsert(m)),
        client.on("chat-message-updated", (d) => d.message.roomId === roomId && upsert(d.message)),
      ];
      client
        .joinRoom(roomId, limit ? { limit } : {})
        .then((res) => {
          if (!live) return;
          setHasMore(!!res.hasMore);
          setMessages((list) => {
            const byId = new Map(list.map((m) => [m.id, m]));
            for (const m of res.messages || []) if (!byId.has(m.id)) byId.set(m.id, m);
            return [...byId.values()].sort((a, b) => a.seq - b.seq);
          });
        })
        .catch((err) => live && setError(err));
      return () => {
        live = false;
        for (const off of offs) off();
        client.leaveRoom(roomId).catch(() => {});
      };
    }, [client, roomId, limit]);

    const loadOlder = useCallback(async () => {
      if (!client || !roomId) return;
      const first = messages[0];
      const res = await client.history(roomId, { beforeSeq: first ? first.seq : undefined, limit: 50 });
      setHasMore(!!res.hasMore);
      setMessages((list) => {
        const ids = new Set(list.map((m) => m.id));
        return [...(res.messages || []).filter((m) => !ids.has(m.id)), ...list];
      });
    }, [client, roomId, messages]);

    const send = useCallback((content, o) => client.sendMessage(roomId, content, o), [client, roomId]);

    return { messages, hasMore, error, isConnected, loadOlder, send, typingUsers: ctx.typing[roomId] || [] };
  }

  return { TalimContext, TalimProvider, useWebSocketContext, useTalimClient: () => useWebSocketContext().client, useChatRoom };
}

import { jsx as _jsx } from "react/jsx-runtime";
// WebSocketProvider, useWebSocketContext and useWebSocket: the seed's React API
// (docs/clients.md, "Migrating from the seed's hook") over TalimClient.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from "react";
import { TalimClient } from "../client/client.js";
import { TalimError } from "../client/errors.js";
/** NEXT_PUBLIC_WEBSOCKET_URL when the bundler defines it (Next.js inlines it). */
export function defaultWebSocketURL() {
    try {
        return process.env.NEXT_PUBLIC_WEBSOCKET_URL || undefined;
    }
    catch {
        return undefined;
    }
}
/** Listener registry that outlives client re-creation (login as someone else). */
class Registry {
    sets = new Map();
    add(event, fn) {
        let s = this.sets.get(event);
        if (!s)
            this.sets.set(event, (s = new Set()));
        s.add(fn);
        return () => {
            s.delete(fn);
        };
    }
    emit(event, ...args) {
        const s = this.sets.get(event);
        if (!s)
            return;
        for (const fn of [...s]) {
            try {
                fn(...args);
            }
            catch (err) {
                console.error(`@talim/realtime: ${event} listener threw`, err);
            }
        }
    }
}
function userIdOf(user) {
    if (!user)
        return undefined;
    if (typeof user === "string")
        return user;
    const id = user._id ?? user.id ?? user.userId ?? user["sub"];
    return id == null ? undefined : String(id);
}
const notSignedIn = () => new TalimError("disconnected", "not signed in");
/**
 * The seed's hook, for use without the provider: connects while a user (or token) is
 * present, disconnects on logout and unmount.
 */
export function useWebSocket(props = {}) {
    const { token, getToken, user, options, debug, client: external } = props;
    const url = props.url ?? defaultWebSocketURL();
    const uid = userIdOf(user);
    const hasAuth = !!(token || getToken);
    const enabled = !!url && (external ? true : user === undefined ? hasAuth : !!user && (hasAuth || uid != null));
    const registry = useRef(null);
    if (!registry.current)
        registry.current = new Registry();
    const reg = registry.current;
    const getTokenRef = useRef(getToken);
    getTokenRef.current = getToken;
    const tokenRef = useRef(token);
    tokenRef.current = token;
    const optionsRef = useRef(options);
    optionsRef.current = options;
    const debugKey = JSON.stringify(debug ?? false);
    const [client, setClient] = useState(external || null);
    const clientRef = useRef(null);
    // Calls made before the client exists (children's effects run before the provider's).
    const queueRef = useRef([]);
    /** roomId → {count, opts}: rooms held by components (join-on-mount, leave-on-unmount). */
    const roomsRef = useRef(new Map());
    const enabledRef = useRef(enabled);
    enabledRef.current = enabled;
    const [status, setStatus] = useState(external ? external.status : "disconnected");
    const [lastError, setLastError] = useState(null);
    const [nextRetryAt, setNextRetryAt] = useState(null);
    const [session, setSession] = useState(null);
    const [notifications, setNotifications] = useState([]);
    const [unreadNotifications, setUnreadNotifications] = useState(0);
    const [presence, setPresence] = useState({});
    const [typing, setTyping] = useState({});
    useEffect(() => {
        if (!enabled) {
            setClient(null);
            setStatus("disconnected");
            const q = queueRef.current;
            queueRef.current = [];
            for (const job of q)
                job.reject(notSignedIn());
            return undefined;
        }
        const owned = !external;
        const o = optionsRef.current || {};
        const c = external ||
            new TalimClient({
                ...o,
                url: url,
                debug: debug ?? o.debug,
                token: getTokenRef.current ? undefined : tokenRef.current,
                getToken: getTokenRef.current ? () => getTokenRef.current() : undefined,
                query: !getTokenRef.current && !tokenRef.current && uid != null ? { userId: uid } : o.query,
            });
        const typingTimers = new Map();
        const offs = [
            c.on("status", (s, detail) => {
                setStatus(s);
                if (s === "error")
                    setLastError(detail.error ?? c.lastError);
                else if (s === "connected")
                    setLastError(null);
                if (s === "connected")
                    setSession(c.session);
                if (s !== "disconnected")
                    setNextRetryAt(null);
                reg.emit("status", s, detail);
                if (s === "error" && detail.error)
                    reg.emit("error", detail.error);
            }),
            c.on("reconnecting", () => setNextRetryAt(c.nextRetryAt)),
            c.onChatMessage((m, meta) => reg.emit("chat-message", m, meta)),
            c.on("chat-room-history", (d) => reg.emit("chat-room-history", d)),
            c.on("chat-message-updated", (d) => reg.emit("chat-message-updated", d.message)),
            c.on("message-read", (d) => reg.emit("message-read", d)),
            c.on("room-updated", (d) => reg.emit("room-updated", d)),
            c.on("error", (d) => reg.emit("error", new TalimError(d.code, d.message, { retryAfterMs: d.retryAfterMs, data: d }))),
            c.onNotification((n) => {
                setNotifications((list) => [n, ...list.filter((x) => x.id !== n.id)].slice(0, 200));
                if (!n.readAt)
                    setUnreadNotifications((u) => u + 1);
                reg.emit("notification", n);
            }),
            c.on("notification-read", (d) => {
                if (typeof d.unread === "number")
                    setUnreadNotifications(d.unread);
                const now = new Date().toISOString();
                setNotifications((list) => list.map((n) => (d.all || (d.ids || []).includes(n.id) ? { ...n, readAt: n.readAt || now } : n)));
            }),
            c.on("presence", (p) => setPresence((m) => ({ ...m, [p.userId]: p }))),
            c.on("presence-snapshot", (ack) => setPresence((m) => {
                const next = { ...m };
                for (const p of ack.presence || [])
                    next[p.userId] = p;
                return next;
            })),
            c.on("typing", (t) => {
                const key = `${t.roomId}\u0000${t.userId}`;
                const old = typingTimers.get(key);
                if (old)
                    clearTimeout(old);
                const apply = (isTyping) => setTyping((m) => {
                    const cur = new Set(m[t.roomId] || []);
                    if (isTyping)
                        cur.add(t.userId);
                    else
                        cur.delete(t.userId);
                    return { ...m, [t.roomId]: [...cur] };
                });
                apply(t.isTyping);
                // typing events are ephemeral: expire after 6 s without a refresh
                if (t.isTyping)
                    typingTimers.set(key, setTimeout(() => apply(false), 6000));
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
            }
            catch (err) {
                job.reject(err);
            }
        }
        const known = new Set(c.joinedRooms.map((r) => r.roomId));
        for (const [roomId, r] of roomsRef.current)
            if (!known.has(roomId))
                c.joinRoom(roomId, r.opts).catch(() => { });
        if (owned)
            void c.connect();
        return () => {
            if (clientRef.current === c)
                clientRef.current = null;
            for (const off of offs)
                off();
            for (const t of typingTimers.values())
                clearTimeout(t);
            if (owned)
                c.disconnect();
        };
        // eslint-disable-next-line react-hooks/exhaustive-deps
    }, [enabled, url, uid, external, !!getToken, debugKey]);
    // A new static token for the same user: refresh it in place.
    useEffect(() => {
        if (client && token && !getToken && !external)
            client.setToken(token);
    }, [client, token, getToken, external]);
    const loadInbox = useCallback(async (c) => {
        const res = await c.listNotifications({ limit: 50 });
        setNotifications(res.notifications || []);
        if (typeof res.unread === "number")
            setUnreadNotifications(res.unread);
    }, []);
    // Load the inbox on connect.
    useEffect(() => {
        if (!client || status !== "connected")
            return undefined;
        let live = true;
        client
            .listNotifications({ limit: 50 })
            .then((res) => {
            if (!live)
                return;
            setNotifications(res.notifications || []);
            if (typeof res.unread === "number")
                setUnreadNotifications(res.unread);
        })
            .catch(() => { });
        return () => {
            live = false;
        };
    }, [client, status]);
    // Functions that do not depend on state keep their identity (effects can depend on them).
    const stable = useMemo(() => {
        /** run fn(client) now, or once the client exists */
        const call = (fn) => {
            const c = clientRef.current;
            if (c)
                return fn(c);
            if (!enabledRef.current)
                return Promise.reject(notSignedIn());
            return new Promise((resolve, reject) => queueRef.current.push({ fn, resolve: resolve, reject }));
        };
        const fns = {
            joinChatRoom: (roomId, opts) => {
                const r = roomsRef.current.get(roomId);
                if (r)
                    r.count++;
                else
                    roomsRef.current.set(roomId, { count: 1, opts: opts || {} });
                return call((c) => c.joinRoom(roomId, opts || {}));
            },
            leaveChatRoom: async (roomId) => {
                const r = roomsRef.current.get(roomId);
                if (r && --r.count > 0)
                    return; // another component still shows this room
                roomsRef.current.delete(roomId);
                const c = clientRef.current;
                if (c)
                    await c.leaveRoom(roomId).catch(() => { });
            },
            sendChatMessage: ({ roomId, content, type, clientMsgId }) => call((c) => c.sendMessage(roomId, content, { type, clientMsgId })),
            markMessageRead: (roomId, seqOrMessageId) => call((c) => c.markRead(roomId, seqOrMessageId)),
            onChatMessage: (fn) => reg.add("chat-message", fn),
            onNotification: (fn) => reg.add("notification", fn),
            onError: (fn) => reg.add("error", fn),
            connect: () => void clientRef.current?.connect(),
            disconnect: () => clientRef.current?.disconnect(),
            reconnect: () => void clientRef.current?.reconnect().catch(() => { }),
            onChatHistory: (fn) => reg.add("chat-room-history", fn),
            onMessageUpdated: (fn) => reg.add("chat-message-updated", fn),
            onMessageRead: (fn) => reg.add("message-read", fn),
            onRoomUpdated: (fn) => reg.add("room-updated", fn),
            onStatus: (fn) => reg.add("status", fn),
            getHistory: (roomId, opts) => call((c) => c.history(roomId, opts)),
            editChatMessage: (roomId, messageId, content) => call((c) => c.editMessage(roomId, messageId, content)),
            deleteChatMessage: (roomId, messageId) => call((c) => c.deleteMessage(roomId, messageId)),
            listRooms: () => call((c) => c.listRooms()),
            sendTyping: (roomId, isTyping) => call((c) => c.typing(roomId, isTyping)),
            subscribePresence: (userIds) => call((c) => c.subscribePresence(userIds).then((ack) => {
                setPresence((m) => {
                    const next = { ...m };
                    for (const p of ack.presence || [])
                        next[p.userId] = p;
                    return next;
                });
                return ack;
            })),
            setStatus: (s) => call((c) => c.setStatus(s)),
            markNotificationsRead: (idsOrAll) => call((c) => c.markNotificationsRead(idsOrAll).then((ack) => {
                const ids = Array.isArray(idsOrAll) ? idsOrAll : [];
                const all = !Array.isArray(idsOrAll) && !!idsOrAll.all;
                const now = new Date().toISOString();
                setNotifications((list) => list.map((n) => (all || ids.includes(n.id) ? { ...n, readAt: n.readAt || now } : n)));
                if (typeof ack.unread === "number")
                    setUnreadNotifications(ack.unread);
                return ack;
            })),
            ackNotification: (id) => call((c) => c.ackNotification(id).then((ack) => {
                setNotifications((list) => list.map((n) => (n.id === id ? { ...n, ackedAt: ack.ackedAt } : n)));
                return ack;
            })),
            refreshNotifications: () => call((c) => loadInbox(c)),
        };
        return fns;
    }, [reg, loadInbox]);
    return useMemo(() => ({
        ...stable,
        isConnected: status === "connected",
        connectionStatus: status,
        client,
        session,
        lastError,
        nextRetryAt,
        typing,
        presence,
        notifications,
        unreadNotifications,
    }), [stable, client, status, lastError, nextRetryAt, session, notifications, unreadNotifications, presence, typing]);
}
export const WebSocketContext = createContext(null);
WebSocketContext.displayName = "WebSocketContext";
/**
 * The seed's WebSocketProvider: connects when a user signs in (token or getToken),
 * disconnects on logout; children use useWebSocketContext().
 */
export function WebSocketProvider({ children, ...options }) {
    const value = useWebSocket(options);
    return _jsx(WebSocketContext.Provider, { value: value, children: children });
}
/** The seed's useWebSocketContext(); throws outside a WebSocketProvider. */
export function useWebSocketContext() {
    const ctx = useContext(WebSocketContext);
    if (!ctx)
        throw new Error("useWebSocketContext must be used within a WebSocketProvider");
    return ctx;
}
/**
 * Join a room while mounted (reference-counted with every other user of the room in
 * this provider) and keep its messages: history, live, edits, each once in seq order.
 */
export function useChatRoom(roomId, opts = {}) {
    const ctx = useWebSocketContext();
    const { client, isConnected, joinChatRoom, leaveChatRoom } = ctx;
    const [messages, setMessages] = useState([]);
    const [hasMore, setHasMore] = useState(false);
    const [error, setError] = useState(null);
    const limit = opts.limit;
    const joinRef = useRef({ joinChatRoom, leaveChatRoom });
    joinRef.current = { joinChatRoom, leaveChatRoom };
    const { onChatMessage, onMessageUpdated } = ctx;
    useEffect(() => {
        if (!roomId)
            return undefined;
        let live = true;
        setMessages([]);
        setError(null);
        const upsert = (m) => setMessages((list) => {
            const i = list.findIndex((x) => x.id === m.id);
            if (i >= 0) {
                const next = list.slice();
                next[i] = m;
                return next;
            }
            return [...list, m].sort((a, b) => a.seq - b.seq);
        });
        const offs = [onChatMessage((m) => m.roomId === roomId && upsert(m)), onMessageUpdated((m) => m.roomId === roomId && upsert(m))];
        joinRef.current
            .joinChatRoom(roomId, limit ? { limit } : {})
            .then((res) => {
            if (!live)
                return;
            setHasMore(!!res.hasMore);
            setMessages((list) => {
                const byId = new Map(list.map((m) => [m.id, m]));
                for (const m of res.messages || [])
                    if (!byId.has(m.id))
                        byId.set(m.id, m);
                return [...byId.values()].sort((a, b) => a.seq - b.seq);
            });
        })
            .catch((err) => live && setError(err));
        return () => {
            live = false;
            for (const off of offs)
                off();
            void joinRef.current.leaveChatRoom(roomId);
        };
    }, [roomId, limit, onChatMessage, onMessageUpdated]);
    const loadOlder = useCallback(async () => {
        if (!client || !roomId)
            return;
        const first = messages[0];
        const res = await client.history(roomId, { beforeSeq: first ? first.seq : undefined, limit: 50 });
        setHasMore(!!res.hasMore);
        setMessages((list) => {
            const ids = new Set(list.map((m) => m.id));
            return [...(res.messages || []).filter((m) => !ids.has(m.id)), ...list].sort((a, b) => a.seq - b.seq);
        });
    }, [client, roomId, messages]);
    return { messages, hasMore, error, isConnected, loadOlder, typingUsers: (roomId && ctx.typing[roomId]) || [] };
}

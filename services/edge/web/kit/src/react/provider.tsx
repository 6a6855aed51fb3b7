// WebSocketProvider, useWebSocketContext and useWebSocket: the seed's React API
// (docs/clients.md, "Migrating from the seed's hook") over TalimClient.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { TalimClient } from "../client/client.js";
import { TalimError } from "../client/errors.js";
import type {
  ChatMessage,
  ChatMeta,
  ConnectedData,
  DebugCategory,
  HistoryResult,
  JoinResult,
  Presence,
  RoomSummary,
  SettableStatus,
  StatusDetail,
  TalimClientOptions,
  TalimNotification,
  TalimStatus,
  Unsubscribe,
} from "../client/types.js";

declare const process: { env: Record<string, string | undefined> } | undefined;

/** NEXT_PUBLIC_WEBSOCKET_URL when the bundler defines it (Next.js inlines it). */
export function defaultWebSocketURL(): string | undefined {
  try {
    return process!.env.NEXT_PUBLIC_WEBSOCKET_URL || undefined;
  } catch {
    return undefined;
  }
}

export interface TalimUser {
  _id?: string;
  id?: string;
  userId?: string;
  [key: string]: unknown;
}

/** The seed's message shape for sendChatMessage (senderName is informational: the server sets the sender). */
export interface SendChatMessageInput {
  roomId: string;
  content: string;
  type?: "text" | string;
  senderName?: string;
  clientMsgId?: string;
}

export interface WebSocketOptions {
  /** ws(s)://host/ws or http(s)://host; default NEXT_PUBLIC_WEBSOCKET_URL where the bundler defines it. */
  url?: string;
  /** A static JWT. */
  token?: string;
  /** Called before every (re)connect, before exp, and again after the edge refused a token. */
  getToken?: () => string | Promise<string>;
  /**
   * The signed-in user; `null` = logged out (disconnects). When omitted, the presence of
   * token/getToken decides. Without token/getToken the user's id is sent as `?userId=`
   * (the edge's development mode only, as in the seed).
   */
  user?: TalimUser | string | null;
  /** The seed's console prefixes (🔌 📨 📡 🔄): true, or some categories. */
  debug?: boolean | DebugCategory[];
  /** Extra client options (WebSocket, reconnect, logger, ...). */
  options?: Partial<TalimClientOptions>;
  /** Use an existing client (neither connected nor disconnected by the provider). */
  client?: TalimClient;
}

export interface WebSocketProviderProps extends WebSocketOptions {
  children?: ReactNode;
}

export interface WebSocketContextValue {
  // ---- the seed's fields
  isConnected: boolean;
  connectionStatus: TalimStatus;
  /** Join a room (reference-counted: each join needs one leave). Resolves with the initial history. */
  joinChatRoom(roomId: string, opts?: { limit?: number }): Promise<JoinResult>;
  leaveChatRoom(roomId: string): Promise<void>;
  sendChatMessage(message: SendChatMessageInput): Promise<ChatMessage>;
  /** seqOrMessageId: the message's seq or id. */
  markMessageRead(roomId: string, seqOrMessageId: number | string): Promise<{ roomId: string; lastReadSeq: number; unread: number }>;
  onChatMessage(handler: (message: ChatMessage, meta: ChatMeta) => void): Unsubscribe;
  onNotification(handler: (notification: TalimNotification) => void): Unsubscribe;
  onError(handler: (error: TalimError) => void): Unsubscribe;
  connect(): void;
  disconnect(): void;
  /** Reconnect now (the retry button): calls getToken again after a refused token. */
  reconnect(): void;

  // ---- more
  client: TalimClient | null;
  session: ConnectedData | null;
  /** Why the status is `error` (e.g. the edge's "invalid token"); null otherwise. */
  lastError: TalimError | null;
  /** When the next automatic attempt starts (epoch ms), while disconnected. */
  nextRetryAt: number | null;
  onChatHistory(handler: (data: HistoryResult) => void): Unsubscribe;
  onMessageUpdated(handler: (message: ChatMessage) => void): Unsubscribe;
  onMessageRead(handler: (data: { roomId: string; userId: string; seq: number; readAt: string }) => void): Unsubscribe;
  onRoomUpdated(handler: (data: { roomId: string; lastSeq: number; lastMessage: ChatMessage | null }) => void): Unsubscribe;
  onStatus(handler: (status: TalimStatus, detail: StatusDetail) => void): Unsubscribe;
  getHistory(roomId: string, opts?: { beforeSeq?: number; afterSeq?: number; limit?: number }): Promise<HistoryResult>;
  editChatMessage(roomId: string, messageId: string, content: string): Promise<ChatMessage>;
  deleteChatMessage(roomId: string, messageId: string): Promise<ChatMessage>;
  listRooms(): Promise<RoomSummary[]>;
  /** roomId → user ids typing now (expire after 6 s). */
  typing: Record<string, string[]>;
  sendTyping(roomId: string, isTyping: boolean): Promise<unknown>;
  /** userId → last known presence. */
  presence: Record<string, Presence>;
  subscribePresence(userIds: string[]): Promise<{ presence: Presence[] }>;
  setStatus(status: SettableStatus): Promise<{ status: SettableStatus }>;
  /** The inbox, newest first (loaded on connect, updated live). */
  notifications: TalimNotification[];
  unreadNotifications: number;
  markNotificationsRead(idsOrAll: string[] | { all: true }): Promise<{ unread: number }>;
  ackNotification(id: string): Promise<{ id: string; ackedAt: string }>;
  refreshNotifications(): Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fn = (...args: any[]) => void;

/** Listener registry that outlives client re-creation (login as someone else). */
class Registry {
  private readonly sets = new Map<string, Set<Fn>>();
  add(event: string, fn: Fn): Unsubscribe {
    let s = this.sets.get(event);
    if (!s) this.sets.set(event, (s = new Set()));
    s.add(fn);
    return () => {
      s.delete(fn);
    };
  }
  emit(event: string, ...args: unknown[]): void {
    const s = this.sets.get(event);
    if (!s) return;
    for (const fn of [...s]) {
      try {
        fn(...args);
      } catch (err) {
        console.error(`@talim/realtime: ${event} listener threw`, err);
      }
    }
  }
}

function userIdOf(user: TalimUser | string | null | undefined): string | undefined {
  if (!user) return undefined;
  if (typeof user === "string") return user;
  const id = user._id ?? user.id ?? user.userId ?? user["sub"];
  return id == null ? undefined : String(id);
}

const notSignedIn = () => new TalimError("disconnected", "not signed in");

interface Job {
  fn: (c: TalimClient) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * The seed's hook, for use without the provider: connects while a user (or token) is
 * present, disconnects on logout and unmount.
 */
export function useWebSocket(props: WebSocketOptions = {}): WebSocketContextValue {
  const { token, getToken, user, options, debug, client: external } = props;
  const url = props.url ?? defaultWebSocketURL();
  const uid = userIdOf(user);
  const hasAuth = !!(token || getToken);
  const enabled = !!url && (external ? true : user === undefined ? hasAuth : !!user && (hasAuth || uid != null));

  const registry = useRef<Registry | null>(null);
  if (!registry.current) registry.current = new Registry();
  const reg = registry.current;
  const getTokenRef = useRef(getToken);
  getTokenRef.current = getToken;
  const tokenRef = useRef(token);
  tokenRef.current = token;
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const debugKey = JSON.stringify(debug ?? false);

  const [client, setClient] = useState<TalimClient | null>(external || null);
  const clientRef = useRef<TalimClient | null>(null);
  // Calls made before the client exists (children's effects run before the provider's).
  const queueRef = useRef<Job[]>([]);
  /** roomId → {count, opts}: rooms held by components (join-on-mount, leave-on-unmount). */
  const roomsRef = useRef(new Map<string, { count: number; opts: { limit?: number } }>());
  const enabledRef = useRef(enabled);
  enabledRef.current = enabled;
  const [status, setStatus] = useState<TalimStatus>(external ? external.status : "disconnected");
  const [lastError, setLastError] = useState<TalimError | null>(null);
  const [nextRetryAt, setNextRetryAt] = useState<number | null>(null);
  const [session, setSession] = useState<ConnectedData | null>(null);
  const [notifications, setNotifications] = useState<TalimNotification[]>([]);
  const [unreadNotifications, setUnreadNotifications] = useState(0);
  const [presence, setPresence] = useState<Record<string, Presence>>({});
  const [typing, setTyping] = useState<Record<string, string[]>>({});

  useEffect(() => {
    if (!enabled) {
      setClient(null);
      setStatus("disconnected");
      const q = queueRef.current;
      queueRef.current = [];
      for (const job of q) job.reject(notSignedIn());
      return undefined;
    }
    const owned = !external;
    const o = optionsRef.current || {};
    const c =
      external ||
      new TalimClient({
        ...o,
        url: url!,
        debug: debug ?? o.debug,
        token: getTokenRef.current ? undefined : tokenRef.current,
        getToken: getTokenRef.current ? () => getTokenRef.current!() : undefined,
        query: !getTokenRef.current && !tokenRef.current && uid != null ? { userId: uid } : o.query,
      });
    const typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
    const offs: Unsubscribe[] = [
      c.on("status", (s, detail) => {
        setStatus(s);
        if (s === "error") setLastError(detail.error ?? c.lastError);
        else if (s === "connected") setLastError(null);
        if (s === "connected") setSession(c.session);
        if (s !== "disconnected") setNextRetryAt(null);
        reg.emit("status", s, detail);
        if (s === "error" && detail.error) reg.emit("error", detail.error);
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
        if (!n.readAt) setUnreadNotifications((u) => u + 1);
        reg.emit("notification", n);
      }),
      c.on("notification-read", (d) => {
        if (typeof d.unread === "number") setUnreadNotifications(d.unread);
        const now = new Date().toISOString();
        setNotifications((list) => list.map((n) => (d.all || (d.ids || []).includes(n.id) ? { ...n, readAt: n.readAt || now } : n)));
      }),
      c.on("presence", (p) => setPresence((m) => ({ ...m, [p.userId]: p }))),
      c.on("presence-snapshot", (ack) =>
        setPresence((m) => {
          const next = { ...m };
          for (const p of ack.presence || []) next[p.userId] = p;
          return next;
        }),
      ),
      c.on("typing", (t) => {
        const key = `${t.roomId}\u0000${t.userId}`;
        const old = typingTimers.get(key);
        if (old) clearTimeout(old);
        const apply = (isTyping: boolean) =>
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
    for (const [roomId, r] of roomsRef.current) if (!known.has(roomId)) c.joinRoom(roomId, r.opts).catch(() => {});
    if (owned) void c.connect();
    return () => {
      if (clientRef.current === c) clientRef.current = null;
      for (const off of offs) off();
      for (const t of typingTimers.values()) clearTimeout(t);
      if (owned) c.disconnect();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [enabled, url, uid, external, !!getToken, debugKey]);

  // A new static token for the same user: refresh it in place.
  useEffect(() => {
    if (client && token && !getToken && !external) client.setToken(token);
  }, [client, token, getToken, external]);

  const loadInbox = useCallback(async (c: TalimClient) => {
    const res = await c.listNotifications({ limit: 50 });
    setNotifications(res.notifications || []);
    if (typeof res.unread === "number") setUnreadNotifications(res.unread);
  }, []);

  // Load the inbox on connect.
  useEffect(() => {
    if (!client || status !== "connected") return undefined;
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

  // Functions that do not depend on state keep their identity (effects can depend on them).
  const stable = useMemo(() => {
    /** run fn(client) now, or once the client exists */
    const call = <T,>(fn: (c: TalimClient) => Promise<T>): Promise<T> => {
      const c = clientRef.current;
      if (c) return fn(c);
      if (!enabledRef.current) return Promise.reject(notSignedIn());
      return new Promise<T>((resolve, reject) => queueRef.current.push({ fn, resolve: resolve as (v: unknown) => void, reject }));
    };
    const fns = {
      joinChatRoom: (roomId: string, opts?: { limit?: number }) => {
        const r = roomsRef.current.get(roomId);
        if (r) r.count++;
        else roomsRef.current.set(roomId, { count: 1, opts: opts || {} });
        return call((c) => c.joinRoom(roomId, opts || {}));
      },
      leaveChatRoom: async (roomId: string) => {
        const r = roomsRef.current.get(roomId);
        if (r && --r.count > 0) return; // another component still shows this room
        roomsRef.current.delete(roomId);
        const c = clientRef.current;
        if (c) await c.leaveRoom(roomId).catch(() => {});
      },
      sendChatMessage: ({ roomId, content, type, clientMsgId }: SendChatMessageInput) => call((c) => c.sendMessage(roomId, content, { type, clientMsgId })),
      markMessageRead: (roomId: string, seqOrMessageId: number | string) => call((c) => c.markRead(roomId, seqOrMessageId)),
      onChatMessage: (fn: (message: ChatMessage, meta: ChatMeta) => void) => reg.add("chat-message", fn),
      onNotification: (fn: (n: TalimNotification) => void) => reg.add("notification", fn),
      onError: (fn: (e: TalimError) => void) => reg.add("error", fn),
      connect: () => void clientRef.current?.connect(),
      disconnect: () => clientRef.current?.disconnect(),
      reconnect: () => void clientRef.current?.reconnect().catch(() => {}),
      onChatHistory: (fn: (d: HistoryResult) => void) => reg.add("chat-room-history", fn),
      onMessageUpdated: (fn: (m: ChatMessage) => void) => reg.add("chat-message-updated", fn),
      onMessageRead: (fn: (d: { roomId: string; userId: string; seq: number; readAt: string }) => void) => reg.add("message-read", fn),
      onRoomUpdated: (fn: (d: { roomId: string; lastSeq: number; lastMessage: ChatMessage | null }) => void) => reg.add("room-updated", fn),
      onStatus: (fn: (s: TalimStatus, d: StatusDetail) => void) => reg.add("status", fn),
      getHistory: (roomId: string, opts?: { beforeSeq?: number; afterSeq?: number; limit?: number }) => call((c) => c.history(roomId, opts)),
      editChatMessage: (roomId: string, messageId: string, content: string) => call((c) => c.editMessage(roomId, messageId, content)),
      deleteChatMessage: (roomId: string, messageId: string) => call((c) => c.deleteMessage(roomId, messageId)),
      listRooms: () => call((c) => c.listRooms()),
      sendTyping: (roomId: string, isTyping: boolean) => call((c) => c.typing(roomId, isTyping)),
      subscribePresence: (userIds: string[]) =>
        call((c) =>
          c.subscribePresence(userIds).then((ack) => {
            setPresence((m) => {
              const next = { ...m };
              for (const p of ack.presence || []) next[p.userId] = p;
              return next;
            });
            return ack;
          }),
        ),
      setStatus: (s: SettableStatus) => call((c) => c.setStatus(s)),
      markNotificationsRead: (idsOrAll: string[] | { all: true }) =>
        call((c) =>
          c.markNotificationsRead(idsOrAll).then((ack) => {
            const ids = Array.isArray(idsOrAll) ? idsOrAll : [];
            const all = !Array.isArray(idsOrAll) && !!idsOrAll.all;
            const now = new Date().toISOString();
            setNotifications((list) => list.map((n) => (all || ids.includes(n.id) ? { ...n, readAt: n.readAt || now } : n)));
            if (typeof ack.unread === "number") setUnreadNotifications(ack.unread);
            return ack;
          }),
        ),
      ackNotification: (id: string) =>
        call((c) =>
          c.ackNotification(id).then((ack) => {
            setNotifications((list) => list.map((n) => (n.id === id ? { ...n, ackedAt: ack.ackedAt } : n)));
            return ack;
          }),
        ),
      refreshNotifications: () => call((c) => loadInbox(c)),
    };
    return fns;
  }, [reg, loadInbox]);

  return useMemo<WebSocketContextValue>(
    () => ({
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
    }),
    [stable, client, status, lastError, nextRetryAt, session, notifications, unreadNotifications, presence, typing],
  );
}

export const WebSocketContext = createContext<WebSocketContextValue | null>(null);
WebSocketContext.displayName = "WebSocketContext";

/**
 * The seed's WebSocketProvider: connects when a user signs in (token or getToken),
 * disconnects on logout; children use useWebSocketContext().
 */
export function WebSocketProvider({ children, ...options }: WebSocketProviderProps) {
  const value = useWebSocket(options);
  return <WebSocketContext.Provider value={value}>{children}</WebSocketContext.Provider>;
}

/** The seed's useWebSocketContext(); throws outside a WebSocketProvider. */
export function useWebSocketContext(): WebSocketContextValue {
  const ctx = useContext(WebSocketContext);
  if (!ctx) throw new Error("useWebSocketContext must be used within a WebSocketProvider");
  return ctx;
}

export interface ChatRoomState {
  messages: ChatMessage[];
  hasMore: boolean;
  error: TalimError | null;
  isConnected: boolean;
  loadOlder(): Promise<void>;
  typingUsers: string[];
}

/**
 * Join a room while mounted (reference-counted with every other user of the room in
 * this provider) and keep its messages: history, live, edits, each once in seq order.
 */
export function useChatRoom(roomId: string | null | undefined, opts: { limit?: number } = {}): ChatRoomState {
  const ctx = useWebSocketContext();
  const { client, isConnected, joinChatRoom, leaveChatRoom } = ctx;
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [hasMore, setHasMore] = useState(false);
  const [error, setError] = useState<TalimError | null>(null);
  const limit = opts.limit;
  const joinRef = useRef({ joinChatRoom, leaveChatRoom });
  joinRef.current = { joinChatRoom, leaveChatRoom };
  const { onChatMessage, onMessageUpdated } = ctx;

  useEffect(() => {
    if (!roomId) return undefined;
    let live = true;
    setMessages([]);
    setError(null);
    const upsert = (m: ChatMessage) =>
      setMessages((list) => {
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
        if (!live) return;
        setHasMore(!!res.hasMore);
        setMessages((list) => {
          const byId = new Map(list.map((m) => [m.id, m]));
          for (const m of res.messages || []) if (!byId.has(m.id)) byId.set(m.id, m);
          return [...byId.values()].sort((a, b) => a.seq - b.seq);
        });
      })
      .catch((err: TalimError) => live && setError(err));
    return () => {
      live = false;
      for (const off of offs) off();
      void joinRef.current.leaveChatRoom(roomId);
    };
  }, [roomId, limit, onChatMessage, onMessageUpdated]);

  const loadOlder = useCallback(async () => {
    if (!client || !roomId) return;
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

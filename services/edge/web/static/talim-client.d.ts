// Type declarations for talim-client.js (client protocol v1).

export type TalimStatus = "connecting" | "connected" | "disconnected" | "error";
export type DebugCategory = "connection" | "chat" | "notification" | "reconnect" | "presence";
export type RoomType = "direct" | "group" | "class" | "announcement";
export type RoomRole = "owner" | "teacher" | "member" | "readonly";
export type PresenceStatus = "online" | "away" | "busy" | "offline" | "unknown";
export type SettableStatus = "online" | "away" | "busy" | "invisible";

export type ErrorCode =
  | "bad_request"
  | "unknown_event"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "rate_limited"
  | "too_large"
  | "unavailable"
  | "internal"
  // client-side codes
  | "disconnected"
  | "timeout"
  | "outbox_full"
  | "closed"
  | "cancelled"
  | "unsupported";

export interface ChatMessage {
  id: string;
  roomId: string;
  seq: number;
  senderId: string;
  senderName?: string;
  type: "text" | "system" | string;
  content: string;
  clientMsgId?: string;
  createdAt: string;
  editedAt?: string | null;
  deleted?: boolean;
}

export interface RoomSummary {
  roomId: string;
  name: string;
  type: RoomType;
  role: RoomRole;
  lastSeq: number;
  lastReadSeq: number;
  unread: number;
  lastMessage: ChatMessage | null;
}

export interface TalimNotification {
  id: string;
  category: string;
  title: string;
  body: string;
  data?: Record<string, string>;
  priority: "low" | "normal" | "high" | "urgent" | string;
  requireAck: boolean;
  createdAt: string;
  readAt: string | null;
  ackedAt: string | null;
  expiresAt: string | null;
}

export interface Presence {
  userId: string;
  status: PresenceStatus;
  lastSeenAt?: string | null;
}

export interface ConnectedData {
  userId: string;
  connectionId: string;
  serverTime: string;
  pingIntervalMs: number;
}

export interface JoinResult {
  roomId: string;
  lastSeq: number;
  lastReadSeq: number;
  unread: number;
  /** The initial history (latest `limit`, oldest first); empty for a resume. */
  messages: ChatMessage[];
  hasMore: boolean;
}

export interface HistoryResult {
  roomId: string;
  messages: ChatMessage[];
  hasMore: boolean;
}

export interface ReconnectOptions {
  /** default 500 */
  initialMs?: number;
  /** default 15000 */
  maxMs?: number;
  /** default 2 */
  factor?: number;
  /** default Infinity */
  maxAttempts?: number;
}

export interface Logger {
  log(...args: unknown[]): void;
  warn?(...args: unknown[]): void;
  error?(...args: unknown[]): void;
}

export interface TalimClientOptions {
  /** ws(s)://host/ws; http(s):// is converted; a bare origin gets /ws appended. */
  url: string;
  /** Static JWT. */
  token?: string;
  /** Called on every (re)connect and before the token's `exp` (then sent with `auth-refresh`). */
  getToken?: () => string | Promise<string>;
  /** Extra query parameters, e.g. `{userId}` for an edge in development mode. */
  query?: Record<string, string>;
  /** WebSocket constructor; default `globalThis.WebSocket` (in Node 20 pass the `ws` package's). */
  WebSocket?: unknown;
  /** Backoff settings, or `false` to never reconnect automatically. */
  reconnect?: ReconnectOptions | false;
  /** The backoff resets after a connection stayed up this long. Default 10000. */
  stableAfterMs?: number;
  /** `true` for every category. Default false. */
  debug?: boolean | DebugCategory[];
  /** Default 10000; 0 disables. */
  commandTimeoutMs?: number;
  /** Max queued + in-flight sends. Default 500. */
  outboxLimit?: number;
  /** Refresh the token this long before `exp` (at most half its remaining life). Default 60000. */
  refreshLeadMs?: number;
  /** Default console. */
  logger?: Logger;
  /** Jitter source, default Math.random (tests). */
  random?: () => number;
}

export interface StatusDetail {
  attempt?: number;
  code?: number;
  reason?: string;
  error?: TalimError;
  session?: ConnectedData;
  resumed?: boolean;
}

export interface ChatMeta {
  /** true when the message was fetched (resume or gap fill) rather than pushed live */
  replayed: boolean;
}

/** Server events (envelope `data`) plus client-side events. */
export interface TalimEventMap {
  status: [status: TalimStatus, detail: StatusDetail];
  connected: [data: ConnectedData, meta: { resumed: boolean }];
  close: [data: { code: number; reason: string }];
  reconnecting: [data: { attempt: number; delayMs: number }];
  "token-refreshed": [data: {}, meta: {}];
  "chat-message": [data: { message: ChatMessage }, meta: ChatMeta];
  "chat-room-history": [data: HistoryResult, meta: {}];
  "chat-message-updated": [data: { message: ChatMessage }, meta: {}];
  "room-updated": [data: { roomId: string; lastSeq: number; lastMessage: ChatMessage | null }, meta: {}];
  "message-read": [data: { roomId: string; userId: string; seq: number; readAt: string }, meta: {}];
  typing: [data: { roomId: string; userId: string; isTyping: boolean }, meta: {}];
  "room-membership": [data: { roomId: string; change: "added" | "removed"; role?: RoomRole }, meta: {}];
  /** A room the client wanted could not be (re)joined. */
  "room-error": [data: { roomId: string; code: string; message: string }, meta: {}];
  /** The server's lastSeq is behind the client's (store reset); the client restarted the room from it. */
  "room-reset": [data: { roomId: string; lastSeq: number }, meta: {}];
  notification: [data: { notification: TalimNotification }, meta: {}];
  "notification-read": [data: { ids?: string[]; all?: boolean; unread: number }, meta: {}];
  presence: [data: Presence, meta: {}];
  /** Answer of the automatic re-subscription after a reconnect. */
  "presence-snapshot": [data: { presence: Presence[] }, meta: { resumed: boolean }];
  /** `error` events without a matching command id. */
  error: [data: { code: string; message: string; retryAfterMs?: number }, meta: {}];
}

export type Unsubscribe = () => void;

export declare class TalimError extends Error {
  constructor(code: string, message?: string, extra?: { retryAfterMs?: number; data?: unknown; event?: string });
  readonly name: "TalimError";
  code: ErrorCode | string;
  /** Set for `rate_limited`. */
  retryAfterMs?: number;
  /** The error event's data. */
  data?: unknown;
  /** The command that failed. */
  event?: string;
}

export declare class TalimClient {
  constructor(options: TalimClientOptions);
  readonly url: string;
  readonly status: TalimStatus;
  readonly isConnected: boolean;
  /** Data of the last `connected` event. */
  readonly session: ConnectedData | null;
  /** Rooms re-joined after reconnects, with the highest contiguous seq delivered. */
  readonly joinedRooms: Array<{ roomId: string; lastSeq: number | null }>;
  /** Queued and in-flight sends. */
  readonly outbox: Array<{ roomId: string; content: string; type: string; clientMsgId: string; state: "queued" | "inflight" }>;

  /** Resolves on the server's `connected` event; rejects if the client gives up or disconnect() is called. */
  connect(): Promise<ConnectedData>;
  /** Close and stop reconnecting; pending commands (and by default the outbox) reject with `disconnected`. */
  disconnect(opts?: { dropOutbox?: boolean }): void;
  /** Replace the static token; sent with `auth-refresh` when connected. */
  setToken(token: string): void;

  on<K extends keyof TalimEventMap>(event: K, handler: (...args: TalimEventMap[K]) => void): Unsubscribe;
  on(event: "*", handler: (event: string, data: unknown, meta?: unknown) => void): Unsubscribe;
  on(event: string, handler: (data: any, meta?: any) => void): Unsubscribe;
  once<K extends keyof TalimEventMap>(event: K, handler: (...args: TalimEventMap[K]) => void): Unsubscribe;
  once(event: string, handler: (data: any, meta?: any) => void): Unsubscribe;
  off(event: string, handler: (...args: any[]) => void): void;
  /** Shorthand: the handler gets the message object. */
  onChatMessage(handler: (message: ChatMessage, meta: ChatMeta) => void): Unsubscribe;
  /** Shorthand: the handler gets the notification object. */
  onNotification(handler: (notification: TalimNotification) => void): Unsubscribe;

  /** Command with an id → the ack's data, or a TalimError. */
  request<T = any>(event: string, data?: unknown, opts?: { timeoutMs?: number }): Promise<T>;
  /** Fire-and-forget (no id). Returns whether it was written to a socket. */
  send(event: string, data?: unknown): boolean;

  joinRoom(roomId: string, opts?: { limit?: number }): Promise<JoinResult>;
  leaveRoom(roomId: string): Promise<{ roomId: string }>;
  sendMessage(roomId: string, content: string, opts?: { type?: string; clientMsgId?: string }): Promise<ChatMessage>;
  history(roomId: string, opts?: { beforeSeq?: number; afterSeq?: number; limit?: number }): Promise<HistoryResult>;
  markRead(roomId: string, seqOrMessageId: number | string): Promise<{ roomId: string; lastReadSeq: number; unread: number }>;
  typing(roomId: string, isTyping: boolean): Promise<{}>;
  editMessage(roomId: string, messageId: string, content: string): Promise<ChatMessage>;
  deleteMessage(roomId: string, messageId: string): Promise<ChatMessage>;
  listRooms(): Promise<RoomSummary[]>;
  openDirectRoom(userId: string): Promise<any>;

  listNotifications(opts?: { unreadOnly?: boolean; before?: string; limit?: number }): Promise<{ notifications: TalimNotification[]; hasMore: boolean; unread: number }>;
  markNotificationsRead(idsOrAll: string[] | { ids: string[] } | { all: true }): Promise<{ unread: number }>;
  ackNotification(id: string): Promise<{ id: string; ackedAt: string }>;

  subscribePresence(userIds: string[]): Promise<{ presence: Presence[] }>;
  unsubscribePresence(userIds: string[]): Promise<{}>;
  setStatus(status: SettableStatus): Promise<{ status: SettableStatus }>;
}

export default TalimClient;

/** Decode a JWT payload without verifying it; null when it is not a JWT. */
export declare function decodeJwtPayload(token: string): Record<string, any> | null;
/** Full-jitter backoff: random(0, min(maxMs, initialMs * factor^attempt)). */
export declare function computeBackoff(attempt: number, opts?: { initialMs?: number; maxMs?: number; factor?: number }, random?: () => number): number;
/** RFC 4122 v4 id (crypto.randomUUID when available). */
export declare function uuid(): string;
/** http(s) → ws(s); a bare origin gets `/ws`. */
export declare function toWebSocketUrl(url: string): string;

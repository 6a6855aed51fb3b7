import type { TalimError } from "./errors.js";
export type TalimStatus = "connecting" | "connected" | "disconnected" | "error";
export type DebugCategory = "connection" | "chat" | "notification" | "reconnect" | "presence";
export type RoomType = "direct" | "group" | "class" | "announcement";
export type RoomRole = "owner" | "teacher" | "member" | "readonly";
export type PresenceStatus = "online" | "away" | "busy" | "offline" | "unknown";
export type SettableStatus = "online" | "away" | "busy" | "invisible";
export type ErrorCode = "bad_request" | "unknown_event" | "unauthorized" | "forbidden" | "not_found" | "rate_limited" | "too_large" | "unavailable" | "internal" | "disconnected" | "timeout" | "outbox_full" | "closed" | "cancelled" | "unsupported";
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
    /**
     * After a socket closed before it opened (a browser cannot read the status of a
     * refused upgrade), GET the upgrade URL to learn why: 401 shows the reason and calls
     * getToken again. Default `globalThis.fetch`; `false` turns the check off.
     */
    fetch?: typeof globalThis.fetch | false;
}
/** The part of a WebSocket the client uses (browsers' WebSocket, the ws package, test fakes). */
export interface SocketLike {
    send(data: string): void;
    close(code?: number, reason?: string): void;
    onopen: ((ev: unknown) => void) | null;
    onmessage: ((ev: {
        data: unknown;
    }) => void) | null;
    onerror: ((ev: unknown) => void) | null;
    onclose: ((ev: {
        code: number;
        reason: string;
    }) => void) | null;
}
export type SocketConstructor = new (url: string) => SocketLike;
export interface StatusDetail {
    attempt?: number;
    /** HTTP status of a refused upgrade (learnt with the pre-flight GET). */
    httpStatus?: number;
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
    connected: [data: ConnectedData, meta: {
        resumed: boolean;
    }];
    close: [data: {
        code: number;
        reason: string;
    }];
    reconnecting: [data: {
        attempt: number;
        delayMs: number;
    }];
    "token-refreshed": [data: Record<string, never>, meta: Record<string, never>];
    "chat-message": [data: {
        message: ChatMessage;
    }, meta: ChatMeta];
    "chat-room-history": [data: HistoryResult, meta: Record<string, never>];
    "chat-message-updated": [data: {
        message: ChatMessage;
    }, meta: Record<string, never>];
    "room-updated": [data: {
        roomId: string;
        lastSeq: number;
        lastMessage: ChatMessage | null;
    }, meta: Record<string, never>];
    "message-read": [data: {
        roomId: string;
        userId: string;
        seq: number;
        readAt: string;
    }, meta: Record<string, never>];
    typing: [data: {
        roomId: string;
        userId: string;
        isTyping: boolean;
    }, meta: Record<string, never>];
    "room-membership": [data: {
        roomId: string;
        change: "added" | "removed";
        role?: RoomRole;
    }, meta: Record<string, never>];
    /** A room the client wanted could not be (re)joined. */
    "room-error": [data: {
        roomId: string;
        code: string;
        message: string;
    }, meta: Record<string, never>];
    /** The server's lastSeq is behind the client's (store reset); the client restarted the room from it. */
    "room-reset": [data: {
        roomId: string;
        lastSeq: number;
    }, meta: Record<string, never>];
    notification: [data: {
        notification: TalimNotification;
    }, meta: Record<string, never>];
    "notification-read": [data: {
        ids?: string[];
        all?: boolean;
        unread: number;
    }, meta: Record<string, never>];
    presence: [data: Presence, meta: Record<string, never>];
    /** Answer of the automatic re-subscription after a reconnect. */
    "presence-snapshot": [data: {
        presence: Presence[];
    }, meta: {
        resumed: boolean;
    }];
    /** `error` events without a matching command id. */
    error: [data: {
        code: string;
        message: string;
        retryAfterMs?: number;
    }, meta: Record<string, never>];
}
export type Unsubscribe = () => void;

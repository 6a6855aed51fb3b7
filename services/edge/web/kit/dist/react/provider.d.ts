import { type ReactNode } from "react";
import { TalimClient } from "../client/client.js";
import { TalimError } from "../client/errors.js";
import type { ChatMessage, ChatMeta, ConnectedData, DebugCategory, HistoryResult, JoinResult, Presence, RoomSummary, SettableStatus, StatusDetail, TalimClientOptions, TalimNotification, TalimStatus, Unsubscribe } from "../client/types.js";
/** NEXT_PUBLIC_WEBSOCKET_URL when the bundler defines it (Next.js inlines it). */
export declare function defaultWebSocketURL(): string | undefined;
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
    isConnected: boolean;
    connectionStatus: TalimStatus;
    /** Join a room (reference-counted: each join needs one leave). Resolves with the initial history. */
    joinChatRoom(roomId: string, opts?: {
        limit?: number;
    }): Promise<JoinResult>;
    leaveChatRoom(roomId: string): Promise<void>;
    sendChatMessage(message: SendChatMessageInput): Promise<ChatMessage>;
    /** seqOrMessageId: the message's seq or id. */
    markMessageRead(roomId: string, seqOrMessageId: number | string): Promise<{
        roomId: string;
        lastReadSeq: number;
        unread: number;
    }>;
    onChatMessage(handler: (message: ChatMessage, meta: ChatMeta) => void): Unsubscribe;
    onNotification(handler: (notification: TalimNotification) => void): Unsubscribe;
    onError(handler: (error: TalimError) => void): Unsubscribe;
    connect(): void;
    disconnect(): void;
    /** Reconnect now (the retry button): calls getToken again after a refused token. */
    reconnect(): void;
    client: TalimClient | null;
    session: ConnectedData | null;
    /** Why the status is `error` (e.g. the edge's "invalid token"); null otherwise. */
    lastError: TalimError | null;
    /** When the next automatic attempt starts (epoch ms), while disconnected. */
    nextRetryAt: number | null;
    onChatHistory(handler: (data: HistoryResult) => void): Unsubscribe;
    onMessageUpdated(handler: (message: ChatMessage) => void): Unsubscribe;
    onMessageRead(handler: (data: {
        roomId: string;
        userId: string;
        seq: number;
        readAt: string;
    }) => void): Unsubscribe;
    onRoomUpdated(handler: (data: {
        roomId: string;
        lastSeq: number;
        lastMessage: ChatMessage | null;
    }) => void): Unsubscribe;
    onStatus(handler: (status: TalimStatus, detail: StatusDetail) => void): Unsubscribe;
    getHistory(roomId: string, opts?: {
        beforeSeq?: number;
        afterSeq?: number;
        limit?: number;
    }): Promise<HistoryResult>;
    editChatMessage(roomId: string, messageId: string, content: string): Promise<ChatMessage>;
    deleteChatMessage(roomId: string, messageId: string): Promise<ChatMessage>;
    listRooms(): Promise<RoomSummary[]>;
    /** roomId → user ids typing now (expire after 6 s). */
    typing: Record<string, string[]>;
    sendTyping(roomId: string, isTyping: boolean): Promise<unknown>;
    /** userId → last known presence. */
    presence: Record<string, Presence>;
    subscribePresence(userIds: string[]): Promise<{
        presence: Presence[];
    }>;
    setStatus(status: SettableStatus): Promise<{
        status: SettableStatus;
    }>;
    /** The inbox, newest first (loaded on connect, updated live). */
    notifications: TalimNotification[];
    unreadNotifications: number;
    markNotificationsRead(idsOrAll: string[] | {
        all: true;
    }): Promise<{
        unread: number;
    }>;
    ackNotification(id: string): Promise<{
        id: string;
        ackedAt: string;
    }>;
    refreshNotifications(): Promise<void>;
}
/**
 * The seed's hook, for use without the provider: connects while a user (or token) is
 * present, disconnects on logout and unmount.
 */
export declare function useWebSocket(props?: WebSocketOptions): WebSocketContextValue;
export declare const WebSocketContext: import("react").Context<WebSocketContextValue | null>;
/**
 * The seed's WebSocketProvider: connects when a user signs in (token or getToken),
 * disconnects on logout; children use useWebSocketContext().
 */
export declare function WebSocketProvider({ children, ...options }: WebSocketProviderProps): import("react").JSX.Element;
/** The seed's useWebSocketContext(); throws outside a WebSocketProvider. */
export declare function useWebSocketContext(): WebSocketContextValue;
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
export declare function useChatRoom(roomId: string | null | undefined, opts?: {
    limit?: number;
}): ChatRoomState;

import type { TalimStatus } from "../client/types.js";
/** The seed's status icons. */
export declare const STATUS_ICON: Record<TalimStatus, string>;
export interface WebSocketStatusProps {
    className?: string;
    /** Replace the texts (e.g. translations). */
    labels?: Partial<Record<TalimStatus, string>>;
    /** Text of the retry button. Default "Retry". */
    retryLabel?: string;
}
/**
 * 🟢 connected, 🟡 connecting, ⚫ disconnected with the retry countdown, 🔴 error with
 * the reason (e.g. a refused token); a retry button while not connected.
 */
export declare function WebSocketStatus({ className, labels, retryLabel }: WebSocketStatusProps): import("react").JSX.Element;
export interface ChatRoomProps {
    roomId: string;
    /** Heading; default the room id. */
    title?: string;
    /** userId → display name (senderName from the server is used when present). */
    names?: Record<string, string>;
    /** Size of the first page of history. Default 50. */
    limit?: number;
    className?: string;
}
/**
 * The seed's ChatComponent: joins the room while mounted, shows history with scroll-back
 * and live messages once each in order, sends with pending and failed states (retry keeps
 * the clientMsgId, so the server stores it once), read receipts and typing.
 */
export declare function ChatRoom({ roomId, title, names, limit, className }: ChatRoomProps): import("react").JSX.Element;
export interface NotificationToasterProps {
    /** How long a toast stays (ms); toasts that require an ack stay until acknowledged. Default 6000. */
    durationMs?: number;
    /** At most this many toasts at once. Default 4. */
    max?: number;
    className?: string;
}
/** Toasts for live notifications, with "Acknowledge" for those that require it. */
export declare function NotificationToaster({ durationMs, max, className }: NotificationToasterProps): import("react").JSX.Element;
export interface NotificationInboxProps {
    title?: string;
    className?: string;
}
/** The inbox: newest first, unread count, mark read (one or all), acknowledge. */
export declare function NotificationInbox({ title, className }: NotificationInboxProps): import("react").JSX.Element;

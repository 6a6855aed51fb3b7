import { jsx as _jsx, jsxs as _jsxs, Fragment as _Fragment } from "react/jsx-runtime";
// The seed's components: WebSocketStatus, ChatRoom (the seed's ChatComponent),
// NotificationToaster and NotificationInbox. Accessible (roles, labels, live regions,
// keyboard) and themeable with CSS variables (styles.css: --talim-*); no CSS framework.
import { useCallback, useEffect, useId, useMemo, useRef, useState } from "react";
import { useChatRoom, useWebSocketContext } from "./provider.js";
const cx = (...names) => names.filter(Boolean).join(" ");
/** The seed's status icons. */
export const STATUS_ICON = {
    connected: "🟢",
    connecting: "🟡",
    disconnected: "⚫",
    error: "🔴",
};
const STATUS_LABEL = {
    connected: "Connected",
    connecting: "Connecting…",
    disconnected: "Disconnected",
    error: "Error",
};
/**
 * 🟢 connected, 🟡 connecting, ⚫ disconnected with the retry countdown, 🔴 error with
 * the reason (e.g. a refused token); a retry button while not connected.
 */
export function WebSocketStatus({ className, labels, retryLabel = "Retry" }) {
    const { connectionStatus: status, lastError, nextRetryAt, reconnect } = useWebSocketContext();
    const [now, setNow] = useState(() => Date.now());
    useEffect(() => {
        if (status !== "disconnected" || nextRetryAt == null)
            return undefined;
        setNow(Date.now());
        const t = setInterval(() => setNow(Date.now()), 250);
        return () => clearInterval(t);
    }, [status, nextRetryAt]);
    const secondsLeft = status === "disconnected" && nextRetryAt != null ? Math.max(0, Math.ceil((nextRetryAt - now) / 1000)) : null;
    const label = labels?.[status] ?? STATUS_LABEL[status];
    return (_jsxs("div", { className: cx("talim-status", `talim-status--${status}`, className), "data-testid": "ws-status", "data-status": status, children: [_jsxs("span", { role: "status", "aria-live": "polite", className: "talim-status-text", children: [_jsx("span", { "aria-hidden": "true", className: "talim-status-icon", children: STATUS_ICON[status] }), " ", _jsx("span", { className: "talim-status-label", children: label }), secondsLeft != null && (_jsxs("span", { className: "talim-status-countdown", "data-testid": "ws-retry-countdown", children: [" ", "\u00B7 retrying in ", secondsLeft, " s"] })), status === "error" && lastError && (_jsxs("span", { className: "talim-status-reason", "data-testid": "ws-error", children: [": ", lastError.message] }))] }), (status === "error" || status === "disconnected") && (_jsx("button", { type: "button", className: "talim-button talim-status-retry", "data-testid": "ws-retry", onClick: () => reconnect(), children: retryLabel }))] }));
}
function newClientMsgId() {
    const c = globalThis.crypto;
    if (c && typeof c.randomUUID === "function")
        return c.randomUUID();
    return `m-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
/**
 * The seed's ChatComponent: joins the room while mounted, shows history with scroll-back
 * and live messages once each in order, sends with pending and failed states (retry keeps
 * the clientMsgId, so the server stores it once), read receipts and typing.
 */
export function ChatRoom({ roomId, title, names = {}, limit = 50, className }) {
    const ctx = useWebSocketContext();
    const { sendChatMessage, markMessageRead, sendTyping, onMessageRead, session, isConnected } = ctx;
    const { messages, hasMore, error, loadOlder, typingUsers } = useChatRoom(roomId, { limit });
    const me = session?.userId;
    const [outgoing, setOutgoing] = useState([]);
    const [draft, setDraft] = useState("");
    const [reads, setReads] = useState({});
    const [loadingOlder, setLoadingOlder] = useState(false);
    const listRef = useRef(null);
    const stickToBottom = useRef(true);
    const lastMarked = useRef(0);
    const typingSentAt = useRef(0);
    const inputId = useId();
    const nameOf = useCallback((m) => m.senderName || names[m.senderId] || m.senderId, [names]);
    useEffect(() => {
        setReads({});
        lastMarked.current = 0;
        return onMessageRead((r) => {
            if (r.roomId !== roomId)
                return;
            setReads((m) => ({ ...m, [r.userId]: Math.max(m[r.userId] ?? 0, r.seq) }));
        });
    }, [roomId, onMessageRead]);
    // Mark what is on screen as read.
    const last = messages[messages.length - 1];
    useEffect(() => {
        if (!last || !isConnected || last.seq <= lastMarked.current || last.senderId === me)
            return;
        lastMarked.current = last.seq;
        markMessageRead(roomId, last.seq).catch(() => {
            lastMarked.current = 0;
        });
    }, [last, isConnected, me, roomId, markMessageRead]);
    // Keep the newest message in view unless the reader scrolled back.
    useEffect(() => {
        const el = listRef.current;
        if (el && stickToBottom.current)
            el.scrollTop = el.scrollHeight;
    }, [messages.length, outgoing.length]);
    const shownIds = useMemo(() => new Set(messages.map((m) => m.clientMsgId).filter(Boolean)), [messages]);
    const waiting = outgoing.filter((o) => !shownIds.has(o.clientMsgId));
    const write = useCallback((o) => {
        setOutgoing((list) => [...list.filter((x) => x.clientMsgId !== o.clientMsgId), { ...o, state: "pending", error: undefined }]);
        sendChatMessage({ roomId, content: o.content, type: "text", clientMsgId: o.clientMsgId }).then(() => setOutgoing((list) => list.filter((x) => x.clientMsgId !== o.clientMsgId)), (err) => setOutgoing((list) => list.map((x) => (x.clientMsgId === o.clientMsgId ? { ...x, state: "failed", error: err.message } : x))));
    }, [roomId, sendChatMessage]);
    const submit = (e) => {
        e?.preventDefault();
        const content = draft.trim();
        if (!content)
            return;
        setDraft("");
        stickToBottom.current = true;
        write({ clientMsgId: newClientMsgId(), content, state: "pending" });
        if (typingSentAt.current) {
            typingSentAt.current = 0;
            sendTyping(roomId, false).catch(() => { });
        }
    };
    const onInput = (value) => {
        setDraft(value);
        const now = Date.now();
        if (value && now - typingSentAt.current > 3000) {
            typingSentAt.current = now;
            sendTyping(roomId, true).catch(() => { });
        }
    };
    const onKeyDown = (e) => {
        if (e.key === "Enter" && !e.shiftKey)
            submit(e);
    };
    const older = async () => {
        setLoadingOlder(true);
        stickToBottom.current = false;
        try {
            await loadOlder();
        }
        finally {
            setLoadingOlder(false);
        }
    };
    const readersOf = (m) => Object.entries(reads)
        .filter(([uid, seq]) => uid !== me && seq >= m.seq)
        .map(([uid]) => names[uid] || uid);
    const typers = typingUsers.filter((u) => u !== me).map((u) => names[u] || u);
    const heading = title ?? roomId;
    return (_jsxs("section", { className: cx("talim-chat", className), "aria-label": `Chat: ${heading}`, "data-testid": "chat-room", "data-room": roomId, children: [_jsx("header", { className: "talim-chat-header", children: _jsx("h2", { className: "talim-chat-title", children: heading }) }), error && (_jsx("p", { role: "alert", className: "talim-chat-error", "data-testid": "chat-error", children: error.message })), _jsxs("ol", { ref: listRef, className: "talim-chat-messages", role: "log", "aria-live": "polite", "aria-label": `Messages in ${heading}`, tabIndex: 0, onScroll: (e) => {
                    const el = e.currentTarget;
                    stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
                }, children: [hasMore && (_jsx("li", { className: "talim-chat-older", children: _jsx("button", { type: "button", className: "talim-button", "data-testid": "load-older", disabled: loadingOlder, onClick: () => void older(), children: loadingOlder ? "Loading…" : "Load older messages" }) })), messages.map((m) => {
                        const mine = m.senderId === me;
                        const readers = mine ? readersOf(m) : [];
                        return (_jsxs("li", { className: cx("talim-message", mine && "talim-message--mine", m.deleted && "talim-message--deleted"), "data-testid": "message", "data-id": m.id, "data-seq": m.seq, "data-sender": m.senderId, children: [_jsx("span", { className: "talim-message-sender", children: nameOf(m) }), _jsx("span", { className: "talim-message-content", children: m.deleted ? "Message deleted" : m.content }), _jsxs("span", { className: "talim-message-meta", children: [_jsx("time", { dateTime: m.createdAt, children: formatTime(m.createdAt) }), m.editedAt && !m.deleted ? " (edited)" : "", readers.length > 0 && (_jsxs("span", { className: "talim-message-receipt", "data-testid": "receipt", children: [" ", "\u00B7 Read by ", readers.join(", ")] }))] })] }, m.id));
                    }), waiting.map((o) => (_jsxs("li", { className: cx("talim-message", "talim-message--mine", `talim-message--${o.state}`), "data-testid": o.state === "pending" ? "message-pending" : "message-failed", children: [_jsx("span", { className: "talim-message-content", children: o.content }), _jsx("span", { className: "talim-message-meta", children: o.state === "pending" ? ("Sending…") : (_jsxs(_Fragment, { children: [_jsxs("span", { role: "alert", children: ["Not sent: ", o.error] }), " ", _jsx("button", { type: "button", className: "talim-button", "data-testid": "retry-send", onClick: () => write(o), children: "Retry" }), " ", _jsx("button", { type: "button", className: "talim-button", onClick: () => setOutgoing((list) => list.filter((x) => x.clientMsgId !== o.clientMsgId)), children: "Discard" })] })) })] }, o.clientMsgId)))] }), _jsx("p", { className: "talim-chat-typing", "aria-live": "polite", "data-testid": "typing", children: typers.length ? `${typers.join(", ")} ${typers.length === 1 ? "is" : "are"} typing…` : "" }), _jsxs("form", { className: "talim-chat-composer", onSubmit: submit, children: [_jsxs("label", { htmlFor: inputId, className: "talim-visually-hidden", children: ["Message ", heading] }), _jsx("textarea", { id: inputId, className: "talim-chat-input", "data-testid": "message-input", rows: 2, value: draft, placeholder: "Write a message\u2026", onChange: (e) => onInput(e.target.value), onKeyDown: onKeyDown }), _jsx("button", { type: "submit", className: "talim-button talim-button--primary", "data-testid": "send-button", disabled: !draft.trim(), children: "Send" })] })] }));
}
function formatTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
/** Toasts for live notifications, with "Acknowledge" for those that require it. */
export function NotificationToaster({ durationMs = 6000, max = 4, className }) {
    const { onNotification, ackNotification } = useWebSocketContext();
    const [toasts, setToasts] = useState([]);
    const timers = useRef(new Map());
    const dismiss = useCallback((id) => {
        const t = timers.current.get(id);
        if (t)
            clearTimeout(t);
        timers.current.delete(id);
        setToasts((list) => list.filter((n) => n.id !== id));
    }, []);
    useEffect(() => {
        const all = timers.current;
        const off = onNotification((n) => {
            setToasts((list) => [n, ...list.filter((x) => x.id !== n.id)].slice(0, max));
            if (!n.requireAck)
                all.set(n.id, setTimeout(() => dismiss(n.id), durationMs));
        });
        return () => {
            off();
            for (const t of all.values())
                clearTimeout(t);
            all.clear();
        };
    }, [onNotification, durationMs, max, dismiss]);
    return (_jsx("div", { className: cx("talim-toaster", className), role: "region", "aria-label": "Notifications", "data-testid": "toaster", children: toasts.map((n) => {
            const urgent = n.priority === "high" || n.priority === "urgent";
            return (_jsxs("div", { className: cx("talim-toast", `talim-toast--${n.priority}`), role: urgent ? "alert" : "status", "data-testid": "toast", "data-priority": n.priority, children: [_jsx("strong", { className: "talim-toast-title", children: n.title }), n.body && _jsx("p", { className: "talim-toast-body", children: n.body }), _jsxs("div", { className: "talim-toast-actions", children: [n.requireAck && !n.ackedAt && (_jsx("button", { type: "button", className: "talim-button talim-button--primary", "data-testid": "toast-ack", onClick: () => ackNotification(n.id).then(() => dismiss(n.id), () => { }), children: "Acknowledge" })), _jsx("button", { type: "button", className: "talim-button", "aria-label": `Dismiss ${n.title}`, onClick: () => dismiss(n.id), children: "\u2715" })] })] }, n.id));
        }) }));
}
/** The inbox: newest first, unread count, mark read (one or all), acknowledge. */
export function NotificationInbox({ title = "Notifications", className }) {
    const { notifications, unreadNotifications, markNotificationsRead, ackNotification } = useWebSocketContext();
    const headingId = useId();
    return (_jsxs("section", { className: cx("talim-inbox", className), "aria-labelledby": headingId, "data-testid": "inbox", children: [_jsxs("header", { className: "talim-inbox-header", children: [_jsxs("h2", { id: headingId, className: "talim-inbox-title", children: [title, " ", unreadNotifications > 0 && (_jsx("span", { className: "talim-badge", "data-testid": "inbox-count", "aria-label": `${unreadNotifications} unread`, children: unreadNotifications }))] }), _jsx("button", { type: "button", className: "talim-button", "data-testid": "mark-all-read", disabled: unreadNotifications === 0, onClick: () => markNotificationsRead({ all: true }).catch(() => { }), children: "Mark all read" })] }), notifications.length === 0 ? (_jsx("p", { className: "talim-inbox-empty", children: "No notifications" })) : (_jsx("ul", { className: "talim-inbox-list", children: notifications.map((n) => (_jsxs("li", { className: cx("talim-inbox-item", !n.readAt && "talim-inbox-item--unread", `talim-inbox-item--${n.priority}`), "data-testid": "notification", "data-unread": n.readAt ? "false" : "true", children: [_jsx("strong", { className: "talim-inbox-item-title", children: n.title }), n.body && _jsx("p", { className: "talim-inbox-item-body", children: n.body }), _jsxs("span", { className: "talim-inbox-item-actions", children: [!n.readAt && (_jsx("button", { type: "button", className: "talim-button", onClick: () => markNotificationsRead([n.id]).catch(() => { }), children: "Mark read" })), n.requireAck &&
                                    (n.ackedAt ? (_jsx("span", { className: "talim-inbox-acked", children: "\u2713 acknowledged" })) : (_jsx("button", { type: "button", className: "talim-button talim-button--primary", "data-testid": "ack", onClick: () => ackNotification(n.id).catch(() => { }), children: "Acknowledge" })))] })] }, n.id))) }))] }));
}

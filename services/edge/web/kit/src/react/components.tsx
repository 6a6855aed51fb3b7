// The seed's components: WebSocketStatus, ChatRoom (the seed's ChatComponent),
// NotificationToaster and NotificationInbox. Accessible (roles, labels, live regions,
// keyboard) and themeable with CSS variables (styles.css: --talim-*); no CSS framework.
import { useCallback, useEffect, useId, useMemo, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import type { ChatMessage, TalimNotification, TalimStatus } from "../client/types.js";
import { useChatRoom, useWebSocketContext } from "./provider.js";

const cx = (...names: Array<string | false | null | undefined>) => names.filter(Boolean).join(" ");

/** The seed's status icons. */
export const STATUS_ICON: Record<TalimStatus, string> = {
  connected: "🟢",
  connecting: "🟡",
  disconnected: "⚫",
  error: "🔴",
};

const STATUS_LABEL: Record<TalimStatus, string> = {
  connected: "Connected",
  connecting: "Connecting…",
  disconnected: "Disconnected",
  error: "Error",
};

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
export function WebSocketStatus({ className, labels, retryLabel = "Retry" }: WebSocketStatusProps) {
  const { connectionStatus: status, lastError, nextRetryAt, reconnect } = useWebSocketContext();
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (status !== "disconnected" || nextRetryAt == null) return undefined;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [status, nextRetryAt]);
  const secondsLeft = status === "disconnected" && nextRetryAt != null ? Math.max(0, Math.ceil((nextRetryAt - now) / 1000)) : null;
  const label = labels?.[status] ?? STATUS_LABEL[status];
  return (
    <div className={cx("talim-status", `talim-status--${status}`, className)} data-testid="ws-status" data-status={status}>
      <span role="status" aria-live="polite" className="talim-status-text">
        <span aria-hidden="true" className="talim-status-icon">
          {STATUS_ICON[status]}
        </span>{" "}
        <span className="talim-status-label">{label}</span>
        {secondsLeft != null && (
          <span className="talim-status-countdown" data-testid="ws-retry-countdown">
            {" "}
            · retrying in {secondsLeft} s
          </span>
        )}
        {status === "error" && lastError && (
          <span className="talim-status-reason" data-testid="ws-error">
            {": "}
            {lastError.message}
          </span>
        )}
      </span>
      {(status === "error" || status === "disconnected") && (
        <button type="button" className="talim-button talim-status-retry" data-testid="ws-retry" onClick={() => reconnect()}>
          {retryLabel}
        </button>
      )}
    </div>
  );
}

interface Outgoing {
  clientMsgId: string;
  content: string;
  state: "pending" | "failed";
  error?: string;
}

function newClientMsgId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  return `m-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

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
export function ChatRoom({ roomId, title, names = {}, limit = 50, className }: ChatRoomProps) {
  const ctx = useWebSocketContext();
  const { sendChatMessage, markMessageRead, sendTyping, onMessageRead, session, isConnected } = ctx;
  const { messages, hasMore, error, loadOlder, typingUsers } = useChatRoom(roomId, { limit });
  const me = session?.userId;
  const [outgoing, setOutgoing] = useState<Outgoing[]>([]);
  const [draft, setDraft] = useState("");
  const [reads, setReads] = useState<Record<string, number>>({});
  const [loadingOlder, setLoadingOlder] = useState(false);
  const listRef = useRef<HTMLOListElement>(null);
  const stickToBottom = useRef(true);
  const lastMarked = useRef(0);
  const typingSentAt = useRef(0);
  const inputId = useId();
  const nameOf = useCallback((m: { senderId: string; senderName?: string }) => m.senderName || names[m.senderId] || m.senderId, [names]);

  useEffect(() => {
    setReads({});
    lastMarked.current = 0;
    return onMessageRead((r) => {
      if (r.roomId !== roomId) return;
      setReads((m) => ({ ...m, [r.userId]: Math.max(m[r.userId] ?? 0, r.seq) }));
    });
  }, [roomId, onMessageRead]);

  // Mark what is on screen as read.
  const last = messages[messages.length - 1];
  useEffect(() => {
    if (!last || !isConnected || last.seq <= lastMarked.current || last.senderId === me) return;
    lastMarked.current = last.seq;
    markMessageRead(roomId, last.seq).catch(() => {
      lastMarked.current = 0;
    });
  }, [last, isConnected, me, roomId, markMessageRead]);

  // Keep the newest message in view unless the reader scrolled back.
  useEffect(() => {
    const el = listRef.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages.length, outgoing.length]);

  const shownIds = useMemo(() => new Set(messages.map((m) => m.clientMsgId).filter(Boolean)), [messages]);
  const waiting = outgoing.filter((o) => !shownIds.has(o.clientMsgId));

  const write = useCallback(
    (o: Outgoing) => {
      setOutgoing((list) => [...list.filter((x) => x.clientMsgId !== o.clientMsgId), { ...o, state: "pending", error: undefined }]);
      sendChatMessage({ roomId, content: o.content, type: "text", clientMsgId: o.clientMsgId }).then(
        () => setOutgoing((list) => list.filter((x) => x.clientMsgId !== o.clientMsgId)),
        (err: Error) =>
          setOutgoing((list) => list.map((x) => (x.clientMsgId === o.clientMsgId ? { ...x, state: "failed", error: err.message } : x))),
      );
    },
    [roomId, sendChatMessage],
  );

  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    const content = draft.trim();
    if (!content) return;
    setDraft("");
    stickToBottom.current = true;
    write({ clientMsgId: newClientMsgId(), content, state: "pending" });
    if (typingSentAt.current) {
      typingSentAt.current = 0;
      sendTyping(roomId, false).catch(() => {});
    }
  };

  const onInput = (value: string) => {
    setDraft(value);
    const now = Date.now();
    if (value && now - typingSentAt.current > 3000) {
      typingSentAt.current = now;
      sendTyping(roomId, true).catch(() => {});
    }
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey) submit(e as unknown as FormEvent);
  };

  const older = async () => {
    setLoadingOlder(true);
    stickToBottom.current = false;
    try {
      await loadOlder();
    } finally {
      setLoadingOlder(false);
    }
  };

  const readersOf = (m: ChatMessage) =>
    Object.entries(reads)
      .filter(([uid, seq]) => uid !== me && seq >= m.seq)
      .map(([uid]) => names[uid] || uid);
  const typers = typingUsers.filter((u) => u !== me).map((u) => names[u] || u);
  const heading = title ?? roomId;

  return (
    <section className={cx("talim-chat", className)} aria-label={`Chat: ${heading}`} data-testid="chat-room" data-room={roomId}>
      <header className="talim-chat-header">
        <h2 className="talim-chat-title">{heading}</h2>
      </header>
      {error && (
        <p role="alert" className="talim-chat-error" data-testid="chat-error">
          {error.message}
        </p>
      )}
      <ol
        ref={listRef}
        className="talim-chat-messages"
        role="log"
        aria-live="polite"
        aria-label={`Messages in ${heading}`}
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        {hasMore && (
          <li className="talim-chat-older">
            <button type="button" className="talim-button" data-testid="load-older" disabled={loadingOlder} onClick={() => void older()}>
              {loadingOlder ? "Loading…" : "Load older messages"}
            </button>
          </li>
        )}
        {messages.map((m) => {
          const mine = m.senderId === me;
          const readers = mine ? readersOf(m) : [];
          return (
            <li
              key={m.id}
              className={cx("talim-message", mine && "talim-message--mine", m.deleted && "talim-message--deleted")}
              data-testid="message"
              data-id={m.id}
              data-seq={m.seq}
              data-sender={m.senderId}
            >
              <span className="talim-message-sender">{nameOf(m)}</span>
              <span className="talim-message-content">{m.deleted ? "Message deleted" : m.content}</span>
              <span className="talim-message-meta">
                <time dateTime={m.createdAt}>{formatTime(m.createdAt)}</time>
                {m.editedAt && !m.deleted ? " (edited)" : ""}
                {readers.length > 0 && (
                  <span className="talim-message-receipt" data-testid="receipt">
                    {" "}
                    · Read by {readers.join(", ")}
                  </span>
                )}
              </span>
            </li>
          );
        })}
        {waiting.map((o) => (
          <li
            key={o.clientMsgId}
            className={cx("talim-message", "talim-message--mine", `talim-message--${o.state}`)}
            data-testid={o.state === "pending" ? "message-pending" : "message-failed"}
          >
            <span className="talim-message-content">{o.content}</span>
            <span className="talim-message-meta">
              {o.state === "pending" ? (
                "Sending…"
              ) : (
                <>
                  <span role="alert">Not sent: {o.error}</span>{" "}
                  <button type="button" className="talim-button" data-testid="retry-send" onClick={() => write(o)}>
                    Retry
                  </button>{" "}
                  <button
                    type="button"
                    className="talim-button"
                    onClick={() => setOutgoing((list) => list.filter((x) => x.clientMsgId !== o.clientMsgId))}
                  >
                    Discard
                  </button>
                </>
              )}
            </span>
          </li>
        ))}
      </ol>
      <p className="talim-chat-typing" aria-live="polite" data-testid="typing">
        {typers.length ? `${typers.join(", ")} ${typers.length === 1 ? "is" : "are"} typing…` : ""}
      </p>
      <form className="talim-chat-composer" onSubmit={submit}>
        <label htmlFor={inputId} className="talim-visually-hidden">
          Message {heading}
        </label>
        <textarea
          id={inputId}
          className="talim-chat-input"
          data-testid="message-input"
          rows={2}
          value={draft}
          placeholder="Write a message…"
          onChange={(e) => onInput(e.target.value)}
          onKeyDown={onKeyDown}
        />
        <button type="submit" className="talim-button talim-button--primary" data-testid="send-button" disabled={!draft.trim()}>
          Send
        </button>
      </form>
    </section>
  );
}

function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export interface NotificationToasterProps {
  /** How long a toast stays (ms); toasts that require an ack stay until acknowledged. Default 6000. */
  durationMs?: number;
  /** At most this many toasts at once. Default 4. */
  max?: number;
  className?: string;
}

/** Toasts for live notifications, with "Acknowledge" for those that require it. */
export function NotificationToaster({ durationMs = 6000, max = 4, className }: NotificationToasterProps) {
  const { onNotification, ackNotification } = useWebSocketContext();
  const [toasts, setToasts] = useState<TalimNotification[]>([]);
  const timers = useRef(new Map<string, ReturnType<typeof setTimeout>>());

  const dismiss = useCallback((id: string) => {
    const t = timers.current.get(id);
    if (t) clearTimeout(t);
    timers.current.delete(id);
    setToasts((list) => list.filter((n) => n.id !== id));
  }, []);

  useEffect(() => {
    const all = timers.current;
    const off = onNotification((n) => {
      setToasts((list) => [n, ...list.filter((x) => x.id !== n.id)].slice(0, max));
      if (!n.requireAck) all.set(n.id, setTimeout(() => dismiss(n.id), durationMs));
    });
    return () => {
      off();
      for (const t of all.values()) clearTimeout(t);
      all.clear();
    };
  }, [onNotification, durationMs, max, dismiss]);

  return (
    <div className={cx("talim-toaster", className)} role="region" aria-label="Notifications" data-testid="toaster">
      {toasts.map((n) => {
        const urgent = n.priority === "high" || n.priority === "urgent";
        return (
          <div
            key={n.id}
            className={cx("talim-toast", `talim-toast--${n.priority}`)}
            role={urgent ? "alert" : "status"}
            data-testid="toast"
            data-priority={n.priority}
          >
            <strong className="talim-toast-title">{n.title}</strong>
            {n.body && <p className="talim-toast-body">{n.body}</p>}
            <div className="talim-toast-actions">
              {n.requireAck && !n.ackedAt && (
                <button
                  type="button"
                  className="talim-button talim-button--primary"
                  data-testid="toast-ack"
                  onClick={() => ackNotification(n.id).then(() => dismiss(n.id), () => {})}
                >
                  Acknowledge
                </button>
              )}
              <button type="button" className="talim-button" aria-label={`Dismiss ${n.title}`} onClick={() => dismiss(n.id)}>
                ✕
              </button>
            </div>
          </div>
        );
      })}
    </div>
  );
}

export interface NotificationInboxProps {
  title?: string;
  className?: string;
}

/** The inbox: newest first, unread count, mark read (one or all), acknowledge. */
export function NotificationInbox({ title = "Notifications", className }: NotificationInboxProps) {
  const { notifications, unreadNotifications, markNotificationsRead, ackNotification } = useWebSocketContext();
  const headingId = useId();
  return (
    <section className={cx("talim-inbox", className)} aria-labelledby={headingId} data-testid="inbox">
      <header className="talim-inbox-header">
        <h2 id={headingId} className="talim-inbox-title">
          {title}{" "}
          {unreadNotifications > 0 && (
            <span className="talim-badge" data-testid="inbox-count" aria-label={`${unreadNotifications} unread`}>
              {unreadNotifications}
            </span>
          )}
        </h2>
        <button
          type="button"
          className="talim-button"
          data-testid="mark-all-read"
          disabled={unreadNotifications === 0}
          onClick={() => markNotificationsRead({ all: true }).catch(() => {})}
        >
          Mark all read
        </button>
      </header>
      {notifications.length === 0 ? (
        <p className="talim-inbox-empty">No notifications</p>
      ) : (
        <ul className="talim-inbox-list">
          {notifications.map((n) => (
            <li
              key={n.id}
              className={cx("talim-inbox-item", !n.readAt && "talim-inbox-item--unread", `talim-inbox-item--${n.priority}`)}
              data-testid="notification"
              data-unread={n.readAt ? "false" : "true"}
            >
              <strong className="talim-inbox-item-title">{n.title}</strong>
              {n.body && <p className="talim-inbox-item-body">{n.body}</p>}
              <span className="talim-inbox-item-actions">
                {!n.readAt && (
                  <button type="button" className="talim-button" onClick={() => markNotificationsRead([n.id]).catch(() => {})}>
                    Mark read
                  </button>
                )}
                {n.requireAck &&
                  (n.ackedAt ? (
                    <span className="talim-inbox-acked">✓ acknowledged</span>
                  ) : (
                    <button type="button" className="talim-button talim-button--primary" data-testid="ack" onClick={() => ackNotification(n.id).catch(() => {})}>
                      Acknowledge
                    </button>
                  ))}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

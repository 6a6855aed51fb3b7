// TalimClient: the connection (connection.ts) plus rooms and resume (rooms.ts), the
// outbox (outbox.ts) and the typed API (like pkg/client/api.go).
import { enablePush, disablePush, type EnablePushOptions, type EnablePushResult } from "./push.js";
import { Connection } from "./connection.js";
import { TalimError } from "./errors.js";
import { Outbox, type OutboxEntry } from "./outbox.js";
import { MAX_HISTORY_LIMIT, SeenIds, newRoom, type JoinAck, type RoomState } from "./rooms.js";
import type {
  ChatMessage,
  ChatMeta,
  HistoryResult,
  JoinResult,
  Presence,
  RoomSummary,
  SettableStatus,
  TalimClientOptions,
  TalimNotification,
  Unsubscribe,
} from "./types.js";
import { deferred, uuid } from "./util.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Wire = any;

export class TalimClient extends Connection {
  private readonly outboxLimit: number;
  private readonly rooms = new Map<string, RoomState>();
  private readonly seen = new SeenIds();
  private readonly queue = new Outbox();
  /** rejoined after connect: the outbox may flush */
  private ready = false;
  private readonly presenceSubs = new Set<string>();
  private desiredStatus: SettableStatus | null = null;

  constructor(options: TalimClientOptions) {
    super(options);
    this.outboxLimit = options.outboxLimit ?? 500;
  }

  // ------------------------------------------------------------- hooks

  protected sessionEnded(): void {
    this.ready = false;
  }

  protected connectionLost(err: TalimError, dropOutbox: boolean): void {
    this.failPending(err, dropOutbox);
    if (dropOutbox) {
      for (const e of this.queue.drain()) e.reject(new TalimError(err.code, err.message, { event: "send-chat-message" }));
    }
  }

  protected giveUpWaiters(err: TalimError): void {
    for (const room of this.rooms.values()) this.rejectJoinWaiters(room, err);
  }

  protected async resume(gen: number): Promise<void> {
    const jobs: Array<Promise<unknown>> = [];
    for (const room of this.rooms.values()) {
      if (room.wanted) jobs.push(this.sendJoin(room).catch((err: TalimError) => this.onRejoinFailed(room, err)));
    }
    if (this.presenceSubs.size) {
      jobs.push(
        this.command("subscribe-presence", { userIds: [...this.presenceSubs] })
          .then((ack) => this.emit("presence-snapshot", ack, { resumed: true }))
          .catch(() => {}),
      );
    }
    if (this.desiredStatus) jobs.push(this.command("set-status", { status: this.desiredStatus }).catch(() => {}));
    await Promise.allSettled(jobs);
    if (gen !== this.wsGen) return;
    this.ready = true;
    this.flushOutbox();
  }

  protected onServerEvent(event: string, data: Wire): void {
    switch (event) {
      case "chat-message":
        return this.onChatMessageFrame(data?.message);
      case "chat-room-history":
        return this.onHistory(data || {});
      case "notification":
        this.log("notification", "notification", data?.notification?.id, data?.notification?.title);
        return this.emit(event, data, {});
      case "notification-read":
        this.log("notification", "notification-read", data);
        return this.emit(event, data, {});
      case "presence":
        this.log("presence", "presence", data?.userId, data?.status);
        return this.emit(event, data, {});
      case "chat-message-updated":
      case "message-read":
      case "typing":
      case "room-updated":
        this.log("chat", event, data?.roomId);
        return this.emit(event, data, {});
      case "room-membership":
        this.log("chat", event, data);
        if (data?.change === "removed") this.forgetRoom(data.roomId);
        return this.emit(event, data, {});
      case "error":
        this.log("connection", "server error", data);
        return this.emit(event, data, {});
      default:
        return this.emit(event, data, {});
    }
  }

  private onRejoinFailed(room: RoomState, err: TalimError): void {
    this.log("chat", `(re)join of ${room.roomId} failed:`, err.code);
    if (err.code === "disconnected") return; // tried again after the next connect
    this.rejectJoinWaiters(room, err);
    if (err.code === "forbidden" || err.code === "not_found" || room.lastSeq == null) {
      room.wanted = false;
      if (this.rooms.get(room.roomId) === room) this.rooms.delete(room.roomId);
    }
    this.emit("room-error", { roomId: room.roomId, code: err.code, message: err.message }, {});
  }

  // ------------------------------------------------------------------ rooms

  private room(roomId: string): RoomState {
    let room = this.rooms.get(roomId);
    if (!room) this.rooms.set(roomId, (room = newRoom(roomId)));
    return room;
  }

  private rejectJoinWaiters(room: RoomState, err: unknown): void {
    const w = room.joinWaiters;
    room.joinWaiters = [];
    for (const x of w) x.reject(err);
  }

  private forgetRoom(roomId: string): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    this.rejectJoinWaiters(room, new TalimError("forbidden", `removed from ${roomId}`));
    this.rooms.delete(roomId);
  }

  /**
   * Join a room. Resolves with the ack plus the initial `messages`/`hasMore`. When not
   * connected the join happens (and the promise resolves) after connecting. The room is
   * re-joined with `sinceSeq` after every reconnect.
   */
  joinRoom(roomId: string, opts: { limit?: number } = {}): Promise<JoinResult> {
    const room = this.room(roomId);
    room.wanted = true;
    if (opts.limit != null) room.limit = opts.limit;
    if (this.status === "connected") {
      return this.sendJoin(room).catch((err: TalimError) => {
        if (err.code !== "disconnected" && (err.code === "forbidden" || err.code === "not_found" || room.lastSeq == null)) {
          room.wanted = false;
          if (this.rooms.get(roomId) === room) this.rooms.delete(roomId);
        }
        throw err;
      });
    }
    const d = deferred<JoinAck>();
    room.joinWaiters.push(d);
    return d.promise;
  }

  private async sendJoin(room: RoomState): Promise<JoinAck> {
    const since = room.lastSeq != null;
    const data: Wire = since ? { roomId: room.roomId, sinceSeq: room.lastSeq } : { roomId: room.roomId };
    if (!since && room.limit != null) data.limit = room.limit;
    const gen = ++room.historyGen;
    room.awaiting = { mode: since ? "since" : "latest", gen };
    room.lastHistory = null;
    const hist = deferred<(HistoryResult & { mode: "latest" | "since" }) | null>();
    room.historyWaiter = hist;
    this.log("chat", `join ${room.roomId}`, since ? `sinceSeq=${room.lastSeq}` : `limit=${data.limit ?? "default"}`);
    let ack: Wire;
    try {
      ack = await this.command("join-chat-room", data);
    } catch (err) {
      if (room.awaiting && room.awaiting.gen === gen) room.awaiting = null;
      throw err;
    }
    // docs/protocol.md: the ack carries lastSeq; a server that leaves out zero values means 0.
    if (ack && typeof ack.lastSeq !== "number") ack = { ...ack, lastSeq: 0 };
    if (since && room.lastSeq != null && ack.lastSeq < room.lastSeq) {
      // The store holds fewer messages than we saw (it was reset): start over from its view.
      this.log("chat", `${room.roomId}: server lastSeq ${ack.lastSeq} < ours ${room.lastSeq}, resetting`);
      room.lastSeq = ack.lastSeq;
      room.targetSeq = ack.lastSeq;
      room.pending.clear();
      this.emit("room-reset", { roomId: room.roomId, lastSeq: ack.lastSeq }, {});
    }
    room.targetSeq = Math.max(room.targetSeq, ack.lastSeq);
    // Wait for the chat-room-history push (it may already have arrived).
    type H = (HistoryResult & { mode: "latest" | "since" }) | null;
    let history: H = room.lastHistory as H;
    if (!history) {
      const t = setTimeout(() => hist.resolve(null), this.commandTimeoutMs);
      history = await hist.promise;
      clearTimeout(t);
    }
    if (!history && room.awaiting && room.awaiting.gen === gen) {
      // No push: fetch it ourselves.
      room.awaiting = null;
      if (since) {
        room.targetSeq = Math.max(room.targetSeq, ack.lastSeq || 0);
        void this.fillGap(room);
      } else {
        const res: Wire = await this.command("get-chat-room-history", { roomId: room.roomId, limit: Math.min(room.limit || 50, MAX_HISTORY_LIMIT) });
        history = { roomId: room.roomId, messages: res.messages || [], hasMore: !!res.hasMore, mode: "latest" as const };
        this.applyLatestHistory(room, history);
      }
    }
    if (room.lastSeq == null) room.lastSeq = ack.lastSeq ?? 0;
    if (room.lastSeq! < room.targetSeq) void this.fillGap(room);
    const result: JoinAck = { ...ack, messages: history && history.mode !== "since" ? history.messages : [], hasMore: history ? !!history.hasMore : false };
    const waiters = room.joinWaiters;
    room.joinWaiters = [];
    for (const w of waiters) w.resolve(result);
    return result;
  }

  private onHistory(data: Wire): void {
    const room = this.rooms.get(data.roomId);
    const messages: ChatMessage[] = Array.isArray(data.messages) ? data.messages : [];
    if (!room || !room.awaiting) {
      this.emit("chat-room-history", data, {});
      return;
    }
    const { mode } = room.awaiting;
    room.awaiting = null;
    this.log("chat", `history ${data.roomId}: ${messages.length} message(s) (${mode})`);
    if (mode === "latest") {
      this.applyLatestHistory(room, data);
    } else {
      for (const m of messages) this.ingest(room, m, true);
      const last = messages[messages.length - 1];
      if (data.hasMore && last) room.targetSeq = Math.max(room.targetSeq, last.seq + 1);
      if (room.lastSeq! < room.targetSeq) void this.fillGap(room);
    }
    room.lastHistory = { ...data, mode };
    room.historyWaiter?.resolve(room.lastHistory);
  }

  private applyLatestHistory(room: RoomState, data: Wire): void {
    const messages: ChatMessage[] = (data.messages || []).slice().sort((a: ChatMessage, b: ChatMessage) => a.seq - b.seq);
    for (const m of messages) this.seen.add(m.id);
    const last = messages.length ? messages[messages.length - 1]!.seq : 0;
    room.lastSeq = Math.max(room.lastSeq ?? 0, last);
    room.targetSeq = Math.max(room.targetSeq, room.lastSeq);
    this.emit("chat-room-history", { ...data, messages }, {});
    this.drain(room);
  }

  private onChatMessageFrame(message: ChatMessage | undefined): void {
    if (!message) return;
    const room = this.rooms.get(message.roomId);
    if (!room || typeof message.seq !== "number") {
      if (this.seen.has(message.id)) return;
      this.seen.add(message.id);
      this.log("chat", "message", message.roomId, message.seq);
      this.emit("chat-message", { message }, { replayed: false });
      return;
    }
    this.ingest(room, message, false);
  }

  /** Feed a message into the room's ordered, deduplicated stream. */
  private ingest(room: RoomState, m: ChatMessage, replayed: boolean): void {
    if (!m || typeof m.seq !== "number") return;
    room.targetSeq = Math.max(room.targetSeq, m.seq);
    if (room.lastSeq == null) {
      // join in progress: hold until the initial history tells us where we are
      room.pending.set(m.seq, m);
      return;
    }
    if (m.seq <= room.lastSeq || this.seen.has(m.id)) {
      this.log("chat", `duplicate ${m.roomId}#${m.seq} dropped`);
      return;
    }
    if (m.seq === room.lastSeq + 1) {
      this.deliver(room, m, replayed);
      this.drain(room);
      return;
    }
    room.pending.set(m.seq, m);
    this.log("chat", `gap in ${room.roomId}: have ${room.lastSeq}, got ${m.seq}`);
    void this.fillGap(room);
  }

  private deliver(room: RoomState, m: ChatMessage, replayed: boolean): void {
    room.lastSeq = m.seq;
    room.pending.delete(m.seq);
    if (this.seen.has(m.id)) return;
    this.seen.add(m.id);
    this.log("chat", `message ${m.roomId}#${m.seq}`, replayed ? "(replayed)" : "");
    this.emit("chat-message", { message: m }, { replayed });
  }

  private drain(room: RoomState): void {
    if (room.lastSeq == null) return;
    for (const seq of [...room.pending.keys()]) if (seq <= room.lastSeq) room.pending.delete(seq);
    let next: ChatMessage | undefined;
    while ((next = room.pending.get(room.lastSeq + 1))) this.deliver(room, next, false);
    if (room.pending.size && !room.filling) void this.fillGap(room);
  }

  /** Fetch the missing range with get-chat-room-history {afterSeq}. */
  private async fillGap(room: RoomState): Promise<void> {
    if (room.filling || room.lastSeq == null || this.status !== "connected") return;
    room.filling = true;
    try {
      let guard = 0;
      while (this.rooms.get(room.roomId) === room && room.lastSeq < room.targetSeq && guard++ < 100) {
        const before: number = room.lastSeq;
        const upTo = room.pending.size ? Math.min(...room.pending.keys()) - 1 : room.targetSeq;
        const limit = Math.max(1, Math.min(MAX_HISTORY_LIMIT, upTo - before || MAX_HISTORY_LIMIT));
        this.log("chat", `fetching ${room.roomId} after ${before} (limit ${limit})`);
        const res: Wire = await this.command("get-chat-room-history", { roomId: room.roomId, afterSeq: before, limit });
        const msgs: ChatMessage[] = (res.messages || []).slice().sort((a: ChatMessage, b: ChatMessage) => a.seq - b.seq);
        for (const m of msgs) {
          room.targetSeq = Math.max(room.targetSeq, m.seq);
          if (m.seq > room.lastSeq) room.pending.set(m.seq, m);
        }
        let next: ChatMessage | undefined;
        while ((next = room.pending.get(room.lastSeq + 1))) this.deliver(room, next, true);
        if (room.lastSeq === before) {
          // The store does not have the missing seqs (should not happen): skip ahead
          // rather than stall, delivering what we hold in order.
          if (!room.pending.size) break;
          const min = Math.min(...room.pending.keys());
          this.log("chat", `seqs ${before + 1}..${min - 1} of ${room.roomId} unavailable; skipping`);
          room.lastSeq = min - 1;
          while ((next = room.pending.get(room.lastSeq + 1))) this.deliver(room, next, false);
        }
        if (!res.hasMore && !room.pending.size) break;
      }
    } catch (err) {
      this.log("chat", `gap fill for ${room.roomId} failed:`, (err as TalimError).code);
      // Retried on the next message or after reconnect (rejoin with sinceSeq).
    } finally {
      room.filling = false;
    }
  }

  /** Stop live events of a room on this connection and forget its resume state. */
  leaveRoom(roomId: string): Promise<{ roomId: string }> {
    const room = this.rooms.get(roomId);
    if (room) {
      this.rejectJoinWaiters(room, new TalimError("cancelled", "left the room"));
      this.rooms.delete(roomId);
    }
    if (this.status !== "connected") return Promise.resolve({ roomId });
    return this.command("leave-chat-room", { roomId });
  }

  /** Rooms the client is in (re-joined after reconnects), with their last contiguous seq. */
  get joinedRooms(): Array<{ roomId: string; lastSeq: number | null }> {
    return [...this.rooms.values()].filter((r) => r.wanted).map((r) => ({ roomId: r.roomId, lastSeq: r.lastSeq }));
  }

  // ----------------------------------------------------------------- outbox

  /**
   * Send a chat message through the outbox: while disconnected it is queued and flushed
   * in order after reconnect + rejoin; a send whose socket dropped before its ack is
   * re-sent with the same clientMsgId. Resolves with the stored message.
   */
  sendMessage(roomId: string, content: string, opts: { type?: string; clientMsgId?: string } = {}): Promise<ChatMessage> {
    if (this.queue.length >= this.outboxLimit) {
      return Promise.reject(new TalimError("outbox_full", `outbox holds ${this.queue.length} messages`, { event: "send-chat-message" }));
    }
    const d = deferred<ChatMessage>();
    const entry: OutboxEntry = {
      data: { roomId, content, type: opts.type || "text", clientMsgId: opts.clientMsgId || uuid() },
      state: "queued",
      resolve: d.resolve,
      reject: d.reject,
    };
    const waiting = this.queue.hasQueued();
    this.queue.push(entry);
    this.log("chat", `send ${roomId} (${entry.data.clientMsgId})`, this.ready && !waiting ? "" : "queued");
    if (this.ready && !waiting) this.writeOutboxEntry(entry);
    else this.flushOutbox();
    return d.promise;
  }

  /** Messages waiting in the outbox (queued or awaiting their ack). */
  get outbox(): Array<OutboxEntry["data"] & { state: OutboxEntry["state"] }> {
    return this.queue.entries.map((e) => ({ ...e.data, state: e.state }));
  }

  /**
   * Write the oldest waiting send once nothing is in flight: the server handles commands
   * concurrently, so pipelining them could store them out of order.
   */
  private flushOutbox(): void {
    if (!this.ready || this.queue.hasInflight()) return;
    const next = this.queue.nextQueued();
    if (next) this.writeOutboxEntry(next);
  }

  private writeOutboxEntry(entry: OutboxEntry): void {
    entry.state = "inflight";
    this.command<Wire>("send-chat-message", entry.data, {}, () => {
      entry.state = "queued"; // re-sent with the same clientMsgId after reconnect
    }).then(
      (ack) => {
        this.queue.remove(entry);
        const m: ChatMessage | undefined = ack && ack.message;
        if (m) {
          const room = this.rooms.get(m.roomId);
          if (room && room.lastSeq != null && room.wanted) this.ingest(room, m, false);
        }
        entry.resolve(m as ChatMessage);
        this.flushOutbox();
      },
      (err: TalimError) => {
        if (err.code === "disconnected") {
          entry.state = "queued"; // not written to a socket: keep it
          return;
        }
        this.queue.remove(entry);
        entry.reject(err);
        this.flushOutbox();
      },
    );
  }

  // -------------------------------------------------------------------- API

  history(roomId: string, opts: { beforeSeq?: number; afterSeq?: number; limit?: number } = {}): Promise<HistoryResult> {
    return this.command("get-chat-room-history", { roomId, ...opts });
  }

  /** seqOrMessageId: a seq (number) or a message id (string). */
  markRead(roomId: string, seqOrMessageId: number | string): Promise<{ roomId: string; lastReadSeq: number; unread: number }> {
    const data = typeof seqOrMessageId === "number" ? { roomId, seq: seqOrMessageId } : { roomId, messageId: seqOrMessageId };
    return this.command("mark-message-read", data);
  }

  typing(roomId: string, isTyping: boolean): Promise<Record<string, never>> {
    return this.command("typing", { roomId, isTyping: !!isTyping });
  }

  async editMessage(roomId: string, messageId: string, content: string): Promise<ChatMessage> {
    const ack: Wire = await this.command("edit-chat-message", { roomId, messageId, content });
    return ack.message;
  }

  async deleteMessage(roomId: string, messageId: string): Promise<ChatMessage> {
    const ack: Wire = await this.command("delete-chat-message", { roomId, messageId });
    return ack.message;
  }

  async listRooms(): Promise<RoomSummary[]> {
    const ack: Wire = await this.command("list-rooms", {});
    return ack.rooms || [];
  }

  async openDirectRoom(userId: string): Promise<RoomSummary> {
    const ack: Wire = await this.command("open-direct-room", { userId });
    return ack.room;
  }

  listNotifications(opts: { unreadOnly?: boolean; before?: string; limit?: number } = {}): Promise<{ notifications: TalimNotification[]; hasMore: boolean; unread: number }> {
    return this.command("list-notifications", opts);
  }

  markNotificationsRead(idsOrAll: string[] | { ids: string[] } | { all: true }): Promise<{ unread: number }> {
    const data = Array.isArray(idsOrAll) ? { ids: idsOrAll } : "all" in idsOrAll && idsOrAll.all ? { all: true } : { ids: ("ids" in idsOrAll && idsOrAll.ids) || [] };
    return this.command("mark-notification-read", data);
  }

  ackNotification(id: string): Promise<{ id: string; ackedAt: string }> {
    return this.command("ack-notification", { id });
  }

  /** Turn on Web Push for this user (see push.ts enablePush); call it from a click. */
  enablePush(opts: EnablePushOptions = {}): Promise<EnablePushResult> {
    return enablePush(this, opts);
  }

  /** Unsubscribe this browser from Web Push and remove the subscription on the server. */
  disablePush(opts: EnablePushOptions = {}): Promise<boolean> {
    return disablePush(this, opts);
  }

  /** Subscribe to presence changes; re-subscribed after reconnects. */
  subscribePresence(userIds: string[]): Promise<{ presence: Presence[] }> {
    for (const u of userIds) this.presenceSubs.add(u);
    this.log("presence", "subscribe", userIds);
    return this.command("subscribe-presence", { userIds });
  }

  unsubscribePresence(userIds: string[]): Promise<Record<string, never>> {
    for (const u of userIds) this.presenceSubs.delete(u);
    if (this.status !== "connected") return Promise.resolve({});
    return this.command("unsubscribe-presence", { userIds });
  }

  setStatus(status: SettableStatus): Promise<{ status: SettableStatus }> {
    this.desiredStatus = status === "online" ? null : status;
    return this.command("set-status", { status });
  }

  /** Shorthand: the handler gets the message object. */
  onChatMessage(fn: (message: ChatMessage, meta: ChatMeta) => void): Unsubscribe {
    return this.on("chat-message", (data, meta) => fn(data.message, meta));
  }

  /** Shorthand: the handler gets the notification object. */
  onNotification(fn: (notification: TalimNotification) => void): Unsubscribe {
    return this.on("notification", (data) => fn(data.notification));
  }

  /** Shorthand: server `error` events without a command id, and the `error` status. */
  onError(fn: (error: TalimError) => void): Unsubscribe {
    const a = this.on("error", (data) => fn(new TalimError(data.code, data.message, { retryAfterMs: data.retryAfterMs, data })));
    const b = this.on("status", (status, detail) => {
      if (status === "error" && detail.error) fn(detail.error);
    });
    return () => {
      a();
      b();
    };
  }
}

export default TalimClient;

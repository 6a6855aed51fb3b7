// Per-room resume state (like pkg/client/rooms.go): the client delivers each message of
// a joined room once, in seq order, across reconnects.
import type { ChatMessage, HistoryResult } from "./types.js";
import type { Deferred } from "./util.js";

export const MAX_HISTORY_LIMIT = 200;
export const SEEN_IDS_LIMIT = 5000;

export interface RoomState {
  roomId: string;
  /** the app asked to be in this room */
  wanted: boolean;
  limit: number | undefined;
  /** highest contiguous seq delivered to the app (null: unknown yet) */
  lastSeq: number | null;
  /** highest seq known to exist */
  targetSeq: number;
  /** out-of-order messages waiting for a gap fill */
  pending: Map<number, ChatMessage>;
  /** waiting for chat-room-history */
  awaiting: null | { mode: "latest" | "since"; gen: number };
  filling: boolean;
  joinWaiters: Array<Deferred<JoinAck>>;
  historyGen: number;
  /** the chat-room-history answering the current join */
  lastHistory: (HistoryResult & { mode: "latest" | "since" }) | null;
  historyWaiter?: Deferred<(HistoryResult & { mode: "latest" | "since" }) | null>;
}

export interface JoinAck {
  roomId: string;
  lastSeq: number;
  lastReadSeq: number;
  unread: number;
  messages: ChatMessage[];
  hasMore: boolean;
}

export function newRoom(roomId: string): RoomState {
  return {
    roomId,
    wanted: false,
    limit: undefined,
    lastSeq: null,
    targetSeq: 0,
    pending: new Map(),
    awaiting: null,
    filling: false,
    joinWaiters: [],
    historyGen: 0,
    lastHistory: null,
  };
}

/** Bounded set of delivered message ids (messages outside joined rooms). */
export class SeenIds {
  private readonly ids = new Set<string>();
  has(id: string | undefined): boolean {
    return !!id && this.ids.has(id);
  }
  add(id: string | undefined): void {
    if (!id) return;
    this.ids.add(id);
    if (this.ids.size > SEEN_IDS_LIMIT) {
      const first = this.ids.values().next().value;
      if (first !== undefined) this.ids.delete(first);
    }
  }
}

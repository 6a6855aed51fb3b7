import type { ChatMessage, HistoryResult } from "./types.js";
import type { Deferred } from "./util.js";
export declare const MAX_HISTORY_LIMIT = 200;
export declare const SEEN_IDS_LIMIT = 5000;
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
    awaiting: null | {
        mode: "latest" | "since";
        gen: number;
    };
    filling: boolean;
    joinWaiters: Array<Deferred<JoinAck>>;
    historyGen: number;
    /** the chat-room-history answering the current join */
    lastHistory: (HistoryResult & {
        mode: "latest" | "since";
    }) | null;
    historyWaiter?: Deferred<(HistoryResult & {
        mode: "latest" | "since";
    }) | null>;
}
export interface JoinAck {
    roomId: string;
    lastSeq: number;
    lastReadSeq: number;
    unread: number;
    messages: ChatMessage[];
    hasMore: boolean;
}
export declare function newRoom(roomId: string): RoomState;
/** Bounded set of delivered message ids (messages outside joined rooms). */
export declare class SeenIds {
    private readonly ids;
    has(id: string | undefined): boolean;
    add(id: string | undefined): void;
}

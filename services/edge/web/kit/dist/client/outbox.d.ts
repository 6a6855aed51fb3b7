import type { ChatMessage } from "./types.js";
export interface OutboxEntry {
    data: {
        roomId: string;
        content: string;
        type: string;
        clientMsgId: string;
    };
    state: "queued" | "inflight";
    resolve: (m: ChatMessage) => void;
    reject: (e: unknown) => void;
}
export declare class Outbox {
    entries: OutboxEntry[];
    get length(): number;
    hasQueued(): boolean;
    hasInflight(): boolean;
    nextQueued(): OutboxEntry | undefined;
    push(e: OutboxEntry): void;
    remove(e: OutboxEntry): void;
    /** Take every entry out (disconnect with dropOutbox). */
    drain(): OutboxEntry[];
}

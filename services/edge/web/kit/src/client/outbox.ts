// The outbox (like pkg/client/outbox.go): chat sends wait here while disconnected and are
// written after reconnect + rejoin, oldest first, one per ack, with their clientMsgId.
import type { ChatMessage } from "./types.js";

export interface OutboxEntry {
  data: { roomId: string; content: string; type: string; clientMsgId: string };
  state: "queued" | "inflight";
  resolve: (m: ChatMessage) => void;
  reject: (e: unknown) => void;
}

export class Outbox {
  entries: OutboxEntry[] = [];

  get length(): number {
    return this.entries.length;
  }
  hasQueued(): boolean {
    return this.entries.some((e) => e.state === "queued");
  }
  hasInflight(): boolean {
    return this.entries.some((e) => e.state === "inflight");
  }
  nextQueued(): OutboxEntry | undefined {
    return this.entries.find((e) => e.state === "queued");
  }
  push(e: OutboxEntry): void {
    this.entries.push(e);
  }
  remove(e: OutboxEntry): void {
    const i = this.entries.indexOf(e);
    if (i >= 0) this.entries.splice(i, 1);
  }
  /** Take every entry out (disconnect with dropOutbox). */
  drain(): OutboxEntry[] {
    const all = this.entries;
    this.entries = [];
    return all;
  }
}

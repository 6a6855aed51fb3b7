export class Outbox {
    entries = [];
    get length() {
        return this.entries.length;
    }
    hasQueued() {
        return this.entries.some((e) => e.state === "queued");
    }
    hasInflight() {
        return this.entries.some((e) => e.state === "inflight");
    }
    nextQueued() {
        return this.entries.find((e) => e.state === "queued");
    }
    push(e) {
        this.entries.push(e);
    }
    remove(e) {
        const i = this.entries.indexOf(e);
        if (i >= 0)
            this.entries.splice(i, 1);
    }
    /** Take every entry out (disconnect with dropOutbox). */
    drain() {
        const all = this.entries;
        this.entries = [];
        return all;
    }
}

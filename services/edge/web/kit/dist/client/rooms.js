export const MAX_HISTORY_LIMIT = 200;
export const SEEN_IDS_LIMIT = 5000;
export function newRoom(roomId) {
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
    ids = new Set();
    has(id) {
        return !!id && this.ids.has(id);
    }
    add(id) {
        if (!id)
            return;
        this.ids.add(id);
        if (this.ids.size > SEEN_IDS_LIMIT) {
            const first = this.ids.values().next().value;
            if (first !== undefined)
                this.ids.delete(first);
        }
    }
}

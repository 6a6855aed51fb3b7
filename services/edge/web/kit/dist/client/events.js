/** The seed's console prefixes, behind the `debug` option. */
export const DEBUG_PREFIX = {
    connection: "🔌",
    chat: "📨",
    notification: "📡",
    reconnect: "🔄",
    presence: "👥",
};
export class Emitter {
    logger;
    handlers = new Map();
    debugCats;
    constructor(logger, debug) {
        this.logger = logger || console;
        this.debugCats = new Set(debug === true ? Object.keys(DEBUG_PREFIX) : Array.isArray(debug) ? debug : []);
    }
    on(event, handler) {
        let set = this.handlers.get(event);
        if (!set)
            this.handlers.set(event, (set = new Set()));
        set.add(handler);
        return () => this.off(event, handler);
    }
    once(event, handler) {
        const off = this.on(event, (...args) => {
            off();
            handler(...args);
        });
        return off;
    }
    off(event, handler) {
        this.handlers.get(event)?.delete(handler);
    }
    emit(event, ...args) {
        const set = this.handlers.get(event);
        if (set)
            for (const fn of [...set])
                this.call(event, fn, args);
        if (event !== "*" && event !== "status") {
            const all = this.handlers.get("*");
            if (all)
                for (const fn of [...all])
                    this.call("*", fn, [event, ...args]);
        }
    }
    call(event, fn, args) {
        try {
            fn(...args);
        }
        catch (err) {
            (this.logger.error || this.logger.log).call(this.logger, `talim: "${event}" handler threw`, err);
        }
    }
    log(cat, ...args) {
        if (!this.debugCats.has(cat))
            return;
        this.logger.log(`${DEBUG_PREFIX[cat] || "•"} [talim:${cat}]`, ...args);
    }
}

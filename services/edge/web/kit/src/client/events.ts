// Event registry and debug logging (the seed's console prefixes).
import type { DebugCategory, Logger, TalimEventMap, Unsubscribe } from "./types.js";

/** The seed's console prefixes, behind the `debug` option. */
export const DEBUG_PREFIX: Record<DebugCategory, string> = {
  connection: "🔌",
  chat: "📨",
  notification: "📡",
  reconnect: "🔄",
  presence: "👥",
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyHandler = (...args: any[]) => void;

export class Emitter {
  protected logger: Logger;
  private readonly handlers = new Map<string, Set<AnyHandler>>();
  private readonly debugCats: Set<string>;

  constructor(logger: Logger | undefined, debug: boolean | DebugCategory[] | undefined) {
    this.logger = logger || console;
    this.debugCats = new Set(debug === true ? Object.keys(DEBUG_PREFIX) : Array.isArray(debug) ? debug : []);
  }

  /**
   * Subscribe to an event; returns the unsubscribe function. Server events receive the
   * envelope's `data` and a meta object; `status` receives `(status, detail)`; `*`
   * receives `(event, data, meta)`.
   */
  on<K extends keyof TalimEventMap>(event: K, handler: (...args: TalimEventMap[K]) => void): Unsubscribe;
  on(event: "*", handler: (event: string, data: unknown, meta?: unknown) => void): Unsubscribe;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, handler: (data: any, meta?: any) => void): Unsubscribe;
  on(event: string, handler: AnyHandler): Unsubscribe {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => this.off(event, handler);
  }

  once<K extends keyof TalimEventMap>(event: K, handler: (...args: TalimEventMap[K]) => void): Unsubscribe;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  once(event: string, handler: (data: any, meta?: any) => void): Unsubscribe;
  once(event: string, handler: AnyHandler): Unsubscribe {
    const off = this.on(event, (...args: unknown[]) => {
      off();
      handler(...args);
    });
    return off;
  }

  off(event: string, handler: AnyHandler): void {
    this.handlers.get(event)?.delete(handler);
  }

  protected emit(event: string, ...args: unknown[]): void {
    const set = this.handlers.get(event);
    if (set) for (const fn of [...set]) this.call(event, fn, args);
    if (event !== "*" && event !== "status") {
      const all = this.handlers.get("*");
      if (all) for (const fn of [...all]) this.call("*", fn, [event, ...args]);
    }
  }

  private call(event: string, fn: AnyHandler, args: unknown[]): void {
    try {
      fn(...args);
    } catch (err) {
      (this.logger.error || this.logger.log).call(this.logger, `talim: "${event}" handler threw`, err);
    }
  }

  protected log(cat: DebugCategory, ...args: unknown[]): void {
    if (!this.debugCats.has(cat)) return;
    this.logger.log(`${DEBUG_PREFIX[cat] || "•"} [talim:${cat}]`, ...args);
  }
}

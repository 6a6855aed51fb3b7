import type { DebugCategory, Logger, TalimEventMap, Unsubscribe } from "./types.js";
/** The seed's console prefixes, behind the `debug` option. */
export declare const DEBUG_PREFIX: Record<DebugCategory, string>;
type AnyHandler = (...args: any[]) => void;
export declare class Emitter {
    protected logger: Logger;
    private readonly handlers;
    private readonly debugCats;
    constructor(logger: Logger | undefined, debug: boolean | DebugCategory[] | undefined);
    /**
     * Subscribe to an event; returns the unsubscribe function. Server events receive the
     * envelope's `data` and a meta object; `status` receives `(status, detail)`; `*`
     * receives `(event, data, meta)`.
     */
    on<K extends keyof TalimEventMap>(event: K, handler: (...args: TalimEventMap[K]) => void): Unsubscribe;
    on(event: "*", handler: (event: string, data: unknown, meta?: unknown) => void): Unsubscribe;
    on(event: string, handler: (data: any, meta?: any) => void): Unsubscribe;
    once<K extends keyof TalimEventMap>(event: K, handler: (...args: TalimEventMap[K]) => void): Unsubscribe;
    once(event: string, handler: (data: any, meta?: any) => void): Unsubscribe;
    off(event: string, handler: AnyHandler): void;
    protected emit(event: string, ...args: unknown[]): void;
    private call;
    protected log(cat: DebugCategory, ...args: unknown[]): void;
}
export {};

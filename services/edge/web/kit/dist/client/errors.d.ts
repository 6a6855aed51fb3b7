import { type ReconnectRule } from "./closecodes.generated.js";
import type { ErrorCode } from "./types.js";
export type { ReconnectRule } from "./closecodes.generated.js";
export { CLOSE_RULES, HANDSHAKE_RULES } from "./closecodes.generated.js";
/** Error carried by rejected command promises and by the `error` status. */
export declare class TalimError extends Error {
    readonly name: "TalimError";
    code: ErrorCode | string;
    /** Set for `rate_limited`. */
    retryAfterMs?: number;
    /** The error event's data. */
    data?: unknown;
    /** The command that failed. */
    event?: string;
    constructor(code: string, message?: string, extra?: {
        retryAfterMs?: number;
        data?: unknown;
        event?: string;
    });
}
/** The reconnect rule of a WebSocket close code. */
export declare function closeRule(code: number): ReconnectRule;
/** The reconnect rule of a refused upgrade's HTTP status. */
export declare function handshakeRule(status: number): ReconnectRule;
/**
 * Whether a failure ends the reconnect loop, like terminal() of the Go client:
 * `refreshable` says whether a new token may help (getToken is set).
 */
export declare function isTerminal(rule: ReconnectRule, refreshable: boolean): boolean;

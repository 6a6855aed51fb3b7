// Errors and the reconnect rules (close-codes.json, shared with the Go client's
// terminal() in pkg/client/errors.go).
import { CLOSE_RULES, HANDSHAKE_RULES } from "./closecodes.generated.js";
export { CLOSE_RULES, HANDSHAKE_RULES } from "./closecodes.generated.js";
/** Error carried by rejected command promises and by the `error` status. */
export class TalimError extends Error {
    name = "TalimError";
    code;
    /** Set for `rate_limited`. */
    retryAfterMs;
    /** The error event's data. */
    data;
    /** The command that failed. */
    event;
    constructor(code, message, extra = {}) {
        super(message || code);
        this.code = code;
        this.retryAfterMs = extra.retryAfterMs;
        this.data = extra.data;
        this.event = extra.event;
    }
}
/** The reconnect rule of a WebSocket close code. */
export function closeRule(code) {
    return CLOSE_RULES.get(code) ?? "yes";
}
/** The reconnect rule of a refused upgrade's HTTP status. */
export function handshakeRule(status) {
    return HANDSHAKE_RULES.get(status) ?? "yes";
}
/**
 * Whether a failure ends the reconnect loop, like terminal() of the Go client:
 * `refreshable` says whether a new token may help (getToken is set).
 */
export function isTerminal(rule, refreshable) {
    return rule === "never" || (rule === "new-token" && !refreshable);
}

// Errors and the reconnect rules (close-codes.json, shared with the Go client's
// terminal() in pkg/client/errors.go).
import { CLOSE_RULES, HANDSHAKE_RULES, type ReconnectRule } from "./closecodes.generated.js";
import type { ErrorCode } from "./types.js";

export type { ReconnectRule } from "./closecodes.generated.js";
export { CLOSE_RULES, HANDSHAKE_RULES } from "./closecodes.generated.js";

/** Error carried by rejected command promises and by the `error` status. */
export class TalimError extends Error {
  override readonly name = "TalimError" as const;
  code: ErrorCode | string;
  /** Set for `rate_limited`. */
  retryAfterMs?: number;
  /** The error event's data. */
  data?: unknown;
  /** The command that failed. */
  event?: string;

  constructor(code: string, message?: string, extra: { retryAfterMs?: number; data?: unknown; event?: string } = {}) {
    super(message || code);
    this.code = code;
    this.retryAfterMs = extra.retryAfterMs;
    this.data = extra.data;
    this.event = extra.event;
  }
}

/** The reconnect rule of a WebSocket close code. */
export function closeRule(code: number): ReconnectRule {
  return CLOSE_RULES.get(code) ?? "yes";
}

/** The reconnect rule of a refused upgrade's HTTP status. */
export function handshakeRule(status: number): ReconnectRule {
  return HANDSHAKE_RULES.get(status) ?? "yes";
}

/**
 * Whether a failure ends the reconnect loop, like terminal() of the Go client:
 * `refreshable` says whether a new token may help (getToken is set).
 */
export function isTerminal(rule: ReconnectRule, refreshable: boolean): boolean {
  return rule === "never" || (rule === "new-token" && !refreshable);
}

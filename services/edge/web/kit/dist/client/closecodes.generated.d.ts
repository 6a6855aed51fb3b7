/** yes: retry with backoff; never: stop; new-token: retry only with a new token. */
export type ReconnectRule = "yes" | "never" | "new-token";
/** WebSocket close code → reconnect rule (codes not listed: "yes"). */
export declare const CLOSE_RULES: ReadonlyMap<number, ReconnectRule>;
/** HTTP status of a refused upgrade → reconnect rule (statuses not listed: "yes"). */
export declare const HANDSHAKE_RULES: ReadonlyMap<number, ReconnectRule>;

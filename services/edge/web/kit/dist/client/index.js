// @talim/realtime — the client of Talim Realtime's native WebSocket protocol
// (docs/protocol.md). The React binding is @talim/realtime/react.
export { TalimClient, default } from "./client.js";
export { TalimError, closeRule, handshakeRule, isTerminal, CLOSE_RULES, HANDSHAKE_RULES } from "./errors.js";
export { DEBUG_PREFIX } from "./events.js";
export { computeBackoff, decodeJwtPayload, toWebSocketUrl, uuid } from "./util.js";
export { enablePush, disablePush, base64UrlToBytes } from "./push.js";

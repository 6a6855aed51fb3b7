export { TalimClient, default } from "./client.js";
export { TalimError, closeRule, handshakeRule, isTerminal, CLOSE_RULES, HANDSHAKE_RULES, type ReconnectRule } from "./errors.js";
export { DEBUG_PREFIX } from "./events.js";
export { computeBackoff, decodeJwtPayload, toWebSocketUrl, uuid } from "./util.js";
export type * from "./types.js";
export { enablePush, disablePush, base64UrlToBytes, type EnablePushOptions, type EnablePushResult, type PushCommands } from "./push.js";

// talim-client.js — the client for pages without a bundler: the compiled
// @talim/realtime client (web/kit, served from ./kit/client/). One client: edit
// web/kit/src/client and run `npm run build` there.
export * from "./kit/client/index.js";
export { default } from "./kit/client/index.js";

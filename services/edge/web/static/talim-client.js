// talim-client.js — the client for pages without a bundler: the compiled
// @talim/realtime client (web/kit/dist/client: in the source tree for Node, and
// served by the edge at /kit/dist/client/ and /kit/client/). One client: edit
// web/kit/src/client and run `npm run build` there.
export * from "../kit/dist/client/index.js";
export { default } from "../kit/dist/client/index.js";

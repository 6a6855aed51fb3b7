// Types of talim-client.js: those of the compiled @talim/realtime client (web/kit).
export * from "../kit/dist/client/index.js";
export { default } from "../kit/dist/client/index.js";

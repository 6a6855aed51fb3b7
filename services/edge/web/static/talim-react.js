// talim-react.js — React binding bound to `import "react"` (use it from a
// bundler, or in the browser with an import map that maps "react").
// Without a resolvable "react", use talim-react-core.js and pass React in.
import * as ReactNS from "react";
import { createTalimReact } from "./talim-react-core.js";

// "react" is CommonJS: depending on the loader the API is on the namespace or on `default`.
const React = ReactNS.createElement ? ReactNS : ReactNS.default;

const binding = createTalimReact(React);

export const TalimContext = binding.TalimContext;
export const TalimProvider = binding.TalimProvider;
/** Same name as the original `WebSocketContext` design. */
export const WebSocketProvider = binding.TalimProvider;
export const useWebSocketContext = binding.useWebSocketContext;
export const useTalimClient = binding.useTalimClient;
export const useChatRoom = binding.useChatRoom;
export { createTalimReact };
export { TalimClient, TalimError } from "./talim-client.js";

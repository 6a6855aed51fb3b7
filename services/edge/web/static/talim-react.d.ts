// Type declarations for talim-react.js (bound to `import "react"`).
import type { ReactElement, ReactNode, Context } from "react";
import type { TalimClient } from "./talim-client.js";
import type { ChatRoomState, TalimProviderProps, WebSocketContextValue } from "./talim-react-core.js";

export type { ChatRoomState, TalimProviderProps, TalimUser, WebSocketContextValue, TalimReactBinding } from "./talim-react-core.js";
export { createTalimReact } from "./talim-react-core.js";
export { TalimClient, TalimError } from "./talim-client.js";

export declare const TalimContext: Context<WebSocketContextValue | null>;
/** Connects while a user/token is present, disconnects on logout and unmount. */
export declare function TalimProvider(props: TalimProviderProps & { children?: ReactNode }): ReactElement;
/** Alias with the original design's name. */
export declare const WebSocketProvider: typeof TalimProvider;
/** The original hook; throws outside a TalimProvider. */
export declare function useWebSocketContext(): WebSocketContextValue;
export declare function useTalimClient(): TalimClient | null;
/** Joins `roomId` while mounted and keeps its ordered, deduplicated messages. */
export declare function useChatRoom(roomId: string | null | undefined, opts?: { limit?: number }): ChatRoomState;

export { WebSocketProvider, WebSocketContext, useWebSocketContext, useWebSocket, useChatRoom, defaultWebSocketURL, type WebSocketContextValue, type WebSocketOptions, type WebSocketProviderProps, type SendChatMessageInput, type TalimUser, type ChatRoomState, } from "./provider.js";
export { WebSocketStatus, ChatRoom, NotificationToaster, NotificationInbox, STATUS_ICON, type WebSocketStatusProps, type ChatRoomProps, type NotificationToasterProps, type NotificationInboxProps, } from "./components.js";
export { TalimClient, TalimError } from "../client/index.js";
export type * from "../client/types.js";

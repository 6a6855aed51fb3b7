"use client";
// @talim/realtime/react — the seed's React API and components. "use client" (kept by
// tsc) lets a Next.js App Router app import it from a server component file.
export { WebSocketProvider, WebSocketContext, useWebSocketContext, useWebSocket, useChatRoom, defaultWebSocketURL, } from "./provider.js";
export { WebSocketStatus, ChatRoom, NotificationToaster, NotificationInbox, STATUS_ICON, } from "./components.js";
export { TalimClient, TalimError } from "../client/index.js";

// Type declarations for talim-react-core.js (React passed in) — see talim-react.d.ts.
import type {
  ChatMessage,
  ChatMeta,
  HistoryResult,
  JoinResult,
  Presence,
  RoomSummary,
  SettableStatus,
  TalimClient,
  TalimClientOptions,
  TalimError,
  TalimNotification,
  TalimStatus,
  Unsubscribe,
} from "./talim-client.js";

export interface TalimUser {
  _id?: string;
  id?: string;
  userId?: string;
  [key: string]: unknown;
}

export interface TalimProviderProps {
  /** ws(s)://host/ws (or http(s)://host). */
  url: string;
  token?: string;
  getToken?: () => string | Promise<string>;
  /**
   * The signed-in user; `null` = logged out (disconnects). When omitted, the
   * presence of token/getToken decides. Without token/getToken the user's id is
   * sent as `?userId=` (edge development mode only, as in the original design).
   */
  user?: TalimUser | string | null;
  /** Extra client options (WebSocket, debug, reconnect, ...). */
  options?: Partial<TalimClientOptions>;
  /** Use an existing client (the provider neither connects nor disconnects it). */
  client?: TalimClient;
  children?: unknown;
}

export interface WebSocketContextValue {
  client: TalimClient | null;
  isConnected: boolean;
  connectionStatus: TalimStatus;
  lastError: TalimError | null;
  connect(): void;
  disconnect(): void;

  // the original useWebSocketContext() API
  joinChatRoom(roomId: string, opts?: { limit?: number }): Promise<JoinResult>;
  leaveChatRoom(roomId: string): Promise<{ roomId: string }>;
  sendChatMessage(msg: { roomId: string; content: string; type?: string; clientMsgId?: string; senderName?: string }): Promise<ChatMessage>;
  markMessageRead(roomId: string, seqOrMessageId: number | string): Promise<{ roomId: string; lastReadSeq: number; unread: number }>;
  onChatMessage(handler: (message: ChatMessage, meta: ChatMeta) => void): Unsubscribe;
  onNotification(handler: (notification: TalimNotification) => void): Unsubscribe;

  // more chat
  onChatHistory(handler: (data: HistoryResult) => void): Unsubscribe;
  onMessageUpdated(handler: (message: ChatMessage) => void): Unsubscribe;
  onMessageRead(handler: (data: { roomId: string; userId: string; seq: number; readAt: string }) => void): Unsubscribe;
  onRoomUpdated(handler: (data: { roomId: string; lastSeq: number; lastMessage: ChatMessage | null }) => void): Unsubscribe;
  onStatus(handler: (status: TalimStatus, detail: unknown) => void): Unsubscribe;
  getHistory(roomId: string, opts?: { beforeSeq?: number; afterSeq?: number; limit?: number }): Promise<HistoryResult>;
  editChatMessage(roomId: string, messageId: string, content: string): Promise<ChatMessage>;
  deleteChatMessage(roomId: string, messageId: string): Promise<ChatMessage>;
  listRooms(): Promise<RoomSummary[]>;
  openDirectRoom(userId: string): Promise<any>;

  /** roomId → user ids currently typing (expire after 6 s). */
  typing: Record<string, string[]>;
  sendTyping(roomId: string, isTyping: boolean): Promise<{}>;

  /** userId → last known presence. */
  presence: Record<string, Presence>;
  subscribePresence(userIds: string[]): Promise<{ presence: Presence[] }>;
  unsubscribePresence(userIds: string[]): Promise<{}>;
  setStatus(status: SettableStatus): Promise<{ status: SettableStatus }>;

  /** Inbox, newest first (loaded on connect, updated live). */
  notifications: TalimNotification[];
  unreadNotifications: number;
  markNotificationsRead(idsOrAll: string[] | { all: true }): Promise<{ unread: number }>;
  ackNotification(id: string): Promise<{ id: string; ackedAt: string }>;
  refreshNotifications(opts?: { unreadOnly?: boolean; before?: string; limit?: number }): Promise<{ notifications: TalimNotification[]; hasMore: boolean; unread: number }>;
}

export interface ChatRoomState {
  messages: ChatMessage[];
  hasMore: boolean;
  error: TalimError | null;
  isConnected: boolean;
  loadOlder(): Promise<void>;
  send(content: string, opts?: { type?: string; clientMsgId?: string }): Promise<ChatMessage>;
  typingUsers: string[];
}

export interface TalimReactBinding {
  TalimContext: any;
  TalimProvider(props: TalimProviderProps): any;
  useWebSocketContext(): WebSocketContextValue;
  useTalimClient(): TalimClient | null;
  useChatRoom(roomId: string | null | undefined, opts?: { limit?: number }): ChatRoomState;
}

export declare function createTalimReact(React: unknown): TalimReactBinding;

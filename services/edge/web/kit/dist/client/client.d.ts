import { type EnablePushOptions, type EnablePushResult } from "./push.js";
import { Connection } from "./connection.js";
import { TalimError } from "./errors.js";
import { type OutboxEntry } from "./outbox.js";
import type { ChatMessage, ChatMeta, HistoryResult, JoinResult, Presence, RoomSummary, SettableStatus, TalimClientOptions, TalimNotification, Unsubscribe } from "./types.js";
type Wire = any;
export declare class TalimClient extends Connection {
    private readonly outboxLimit;
    private readonly rooms;
    private readonly seen;
    private readonly queue;
    /** rejoined after connect: the outbox may flush */
    private ready;
    private readonly presenceSubs;
    private desiredStatus;
    constructor(options: TalimClientOptions);
    protected sessionEnded(): void;
    protected connectionLost(err: TalimError, dropOutbox: boolean): void;
    protected giveUpWaiters(err: TalimError): void;
    protected resume(gen: number): Promise<void>;
    protected onServerEvent(event: string, data: Wire): void;
    private onRejoinFailed;
    private room;
    private rejectJoinWaiters;
    private forgetRoom;
    /**
     * Join a room. Resolves with the ack plus the initial `messages`/`hasMore`. When not
     * connected the join happens (and the promise resolves) after connecting. The room is
     * re-joined with `sinceSeq` after every reconnect.
     */
    joinRoom(roomId: string, opts?: {
        limit?: number;
    }): Promise<JoinResult>;
    private sendJoin;
    private onHistory;
    private applyLatestHistory;
    private onChatMessageFrame;
    /** Feed a message into the room's ordered, deduplicated stream. */
    private ingest;
    private deliver;
    private drain;
    /** Fetch the missing range with get-chat-room-history {afterSeq}. */
    private fillGap;
    /** Stop live events of a room on this connection and forget its resume state. */
    leaveRoom(roomId: string): Promise<{
        roomId: string;
    }>;
    /** Rooms the client is in (re-joined after reconnects), with their last contiguous seq. */
    get joinedRooms(): Array<{
        roomId: string;
        lastSeq: number | null;
    }>;
    /**
     * Send a chat message through the outbox: while disconnected it is queued and flushed
     * in order after reconnect + rejoin; a send whose socket dropped before its ack is
     * re-sent with the same clientMsgId. Resolves with the stored message.
     */
    sendMessage(roomId: string, content: string, opts?: {
        type?: string;
        clientMsgId?: string;
    }): Promise<ChatMessage>;
    /** Messages waiting in the outbox (queued or awaiting their ack). */
    get outbox(): Array<OutboxEntry["data"] & {
        state: OutboxEntry["state"];
    }>;
    /**
     * Write the oldest waiting send once nothing is in flight: the server handles commands
     * concurrently, so pipelining them could store them out of order.
     */
    private flushOutbox;
    private writeOutboxEntry;
    history(roomId: string, opts?: {
        beforeSeq?: number;
        afterSeq?: number;
        limit?: number;
    }): Promise<HistoryResult>;
    /** seqOrMessageId: a seq (number) or a message id (string). */
    markRead(roomId: string, seqOrMessageId: number | string): Promise<{
        roomId: string;
        lastReadSeq: number;
        unread: number;
    }>;
    typing(roomId: string, isTyping: boolean): Promise<Record<string, never>>;
    editMessage(roomId: string, messageId: string, content: string): Promise<ChatMessage>;
    deleteMessage(roomId: string, messageId: string): Promise<ChatMessage>;
    listRooms(): Promise<RoomSummary[]>;
    openDirectRoom(userId: string): Promise<RoomSummary>;
    listNotifications(opts?: {
        unreadOnly?: boolean;
        before?: string;
        limit?: number;
    }): Promise<{
        notifications: TalimNotification[];
        hasMore: boolean;
        unread: number;
    }>;
    markNotificationsRead(idsOrAll: string[] | {
        ids: string[];
    } | {
        all: true;
    }): Promise<{
        unread: number;
    }>;
    ackNotification(id: string): Promise<{
        id: string;
        ackedAt: string;
    }>;
    /** Turn on Web Push for this user (see push.ts enablePush); call it from a click. */
    enablePush(opts?: EnablePushOptions): Promise<EnablePushResult>;
    /** Unsubscribe this browser from Web Push and remove the subscription on the server. */
    disablePush(opts?: EnablePushOptions): Promise<boolean>;
    /** Subscribe to presence changes; re-subscribed after reconnects. */
    subscribePresence(userIds: string[]): Promise<{
        presence: Presence[];
    }>;
    unsubscribePresence(userIds: string[]): Promise<Record<string, never>>;
    setStatus(status: SettableStatus): Promise<{
        status: SettableStatus;
    }>;
    /** Shorthand: the handler gets the message object. */
    onChatMessage(fn: (message: ChatMessage, meta: ChatMeta) => void): Unsubscribe;
    /** Shorthand: the handler gets the notification object. */
    onNotification(fn: (notification: TalimNotification) => void): Unsubscribe;
    /** Shorthand: server `error` events without a command id, and the `error` status. */
    onError(fn: (error: TalimError) => void): Unsubscribe;
}
export default TalimClient;

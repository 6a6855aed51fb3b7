import { Emitter } from "./events.js";
import { TalimError } from "./errors.js";
import type { ConnectedData, SocketLike, StatusDetail, TalimClientOptions, TalimStatus } from "./types.js";
export declare abstract class Connection extends Emitter {
    readonly url: string;
    protected token: string | undefined;
    protected readonly getToken: (() => string | Promise<string>) | undefined;
    protected readonly query: Record<string, string>;
    private readonly WebSocketImpl;
    private readonly reconnectOptions;
    private readonly stableAfterMs;
    protected readonly commandTimeoutMs: number;
    private readonly refreshLeadMs;
    private readonly random;
    private readonly fetchImpl;
    private _status;
    /** The current socket (tests may terminate it). */
    protected ws: SocketLike | null;
    protected wsGen: number;
    private opened;
    private nextId;
    private readonly pending;
    private attempt;
    protected wanted: boolean;
    private reconnectTimer;
    private stableTimer;
    private refreshTimer;
    private currentToken;
    private nextToken;
    private lastCloseCode;
    private connectWaiters;
    private _nextRetryAt;
    private _lastError;
    /** Data of the last `connected` event. */
    session: ConnectedData | null;
    constructor(options: TalimClientOptions);
    get status(): TalimStatus;
    get isConnected(): boolean;
    /** When the next reconnect attempt starts (epoch ms), while one is scheduled. */
    get nextRetryAt(): number | null;
    /** The error that put the client in the `error` status (null otherwise). */
    get lastError(): TalimError | null;
    protected setConnStatus(status: TalimStatus, detail?: StatusDetail & {
        force?: boolean;
    }): void;
    /**
     * Start connecting (and keep reconnecting). Resolves on the server's `connected`
     * event; rejects when the client gives up or disconnect() is called first. A
     * rejection nobody awaits is not reported.
     */
    connect(): Promise<ConnectedData>;
    /**
     * Reconnect now: from `error` (with a fresh getToken), while waiting for a backoff
     * timer, or on a live connection (closed and opened again; rooms resume).
     */
    reconnect(): Promise<ConnectedData>;
    /**
     * Close the connection and stop reconnecting. Pending commands reject with
     * `disconnected`; queued sends too unless `{dropOutbox: false}`.
     */
    disconnect(opts?: {
        dropOutbox?: boolean;
    }): void;
    /** Replace the static token; sent with `auth-refresh` when connected. */
    setToken(token: string): void;
    private resolveToken;
    private socketURL;
    private open;
    private detach;
    private clearSessionTimers;
    /**
     * Ask the edge why a socket closed before it opened: the same URL without the
     * upgrade answers the refusal as JSON (docs/protocol.md, Connecting). null when
     * the check is off, the network is down or the answer is not a refusal.
     */
    private preflight;
    private onClose;
    /**
     * The token was refused: call getToken again and come back only with a token that is
     * new and not expired; otherwise stop in `error` (🔴) until reconnect().
     */
    private retryWithNewToken;
    private giveUp;
    private scheduleReconnect;
    private settleConnectWaiters;
    private onFrame;
    private onConnected;
    /** Subclass hooks. */
    protected abstract onServerEvent(event: string, data: unknown): void;
    /** After `connected`: rejoin rooms, then flush the outbox (gen = this.wsGen at connect). */
    protected abstract resume(gen: number): Promise<void>;
    /** The socket is gone: the outbox and joins must not write any more. */
    protected abstract sessionEnded(): void;
    /** Pending commands failed with err; drop the outbox when asked. */
    protected abstract connectionLost(err: TalimError, dropOutbox: boolean): void;
    /** The client stopped (error or disconnect): reject waiting joins. */
    protected abstract giveUpWaiters(err: TalimError): void;
    /**
     * Send a command with an id and resolve with the ack's data; reject with a
     * TalimError (server `error`, `timeout`, or `disconnected`).
     */
    request<T = any>(event: string, data?: unknown, opts?: {
        timeoutMs?: number;
    }): Promise<T>;
    protected command<T = any>(event: string, data: unknown, opts?: {
        timeoutMs?: number;
    }, requeue?: () => void): Promise<T>;
    /** Fire-and-forget command (no id; failures arrive as `error` events). */
    send(event: string, data?: unknown): boolean;
    /** Reject (or requeue) the commands waiting for an answer. */
    protected failPending(err: TalimError, dropOutbox: boolean): void;
    private scheduleRefresh;
    private sendAuthRefresh;
}

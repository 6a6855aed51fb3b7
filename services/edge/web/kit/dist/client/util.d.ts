/** Decode a JWT payload without verifying it; null when it is not a JWT. */
export declare function decodeJwtPayload(token: string): Record<string, unknown> | null;
/** The `exp` claim of a JWT in seconds, or undefined. */
export declare function tokenExp(token: string | undefined): number | undefined;
/** Full-jitter backoff: random(0, min(maxMs, initialMs * factor^attempt)). */
export declare function computeBackoff(attempt: number, opts?: {
    initialMs?: number;
    maxMs?: number;
    factor?: number;
}, random?: () => number): number;
/** RFC 4122 v4 id (crypto.randomUUID is missing in insecure browser contexts). */
export declare function uuid(): string;
/** http(s) → ws(s); a bare origin gets `/ws`. */
export declare function toWebSocketUrl(url: string): string;
export interface Deferred<T> {
    promise: Promise<T>;
    resolve: (v: T) => void;
    reject: (e: unknown) => void;
}
export declare function deferred<T>(): Deferred<T>;

/** The part of TalimClient enablePush needs (any client with `request`). */
export interface PushCommands {
    request<T = any>(event: string, data?: unknown, opts?: {
        timeoutMs?: number;
    }): Promise<T>;
}
export interface EnablePushOptions {
    /** Service worker script URL; default "/talim-sw.js". */
    serviceWorkerUrl?: string;
    /** Service worker scope; default "/". */
    scope?: string;
}
export type EnablePushResult = {
    ok: true;
    endpoint: string;
    id: string;
} | {
    ok: false;
    reason: "unsupported" | "denied" | "not-configured";
};
/** Decode base64url (the VAPID public key) into the bytes pushManager.subscribe takes. */
export declare function base64UrlToBytes(s: string): Uint8Array;
/**
 * Turn on Web Push for the signed-in user: ask permission (call it from a click),
 * register the service worker, subscribe with the server's VAPID public key
 * (`get-push-config`) and send `register-push-subscription`. Safe to call again:
 * an existing subscription is re-registered.
 */
export declare function enablePush(client: PushCommands, opts?: EnablePushOptions): Promise<EnablePushResult>;
/** Unsubscribe the browser and remove the subscription on the server. */
export declare function disablePush(client: PushCommands, opts?: EnablePushOptions): Promise<boolean>;

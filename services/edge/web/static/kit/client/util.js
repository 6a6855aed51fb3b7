// Small helpers without state.
/** Decode a JWT payload without verifying it; null when it is not a JWT. */
export function decodeJwtPayload(token) {
    if (typeof token !== "string")
        return null;
    const part = token.split(".")[1];
    if (part === undefined)
        return null;
    try {
        let b64 = part.replace(/-/g, "+").replace(/_/g, "/");
        while (b64.length % 4)
            b64 += "=";
        const bin = atob(b64);
        const bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++)
            bytes[i] = bin.charCodeAt(i);
        const payload = JSON.parse(new TextDecoder().decode(bytes));
        return payload && typeof payload === "object" ? payload : null;
    }
    catch {
        return null;
    }
}
/** The `exp` claim of a JWT in seconds, or undefined. */
export function tokenExp(token) {
    if (!token)
        return undefined;
    const exp = decodeJwtPayload(token)?.["exp"];
    return typeof exp === "number" ? exp : undefined;
}
/** Full-jitter backoff: random(0, min(maxMs, initialMs * factor^attempt)). */
export function computeBackoff(attempt, opts = {}, random = Math.random) {
    const initialMs = opts.initialMs ?? 500;
    const maxMs = opts.maxMs ?? 15000;
    const factor = opts.factor ?? 2;
    const cap = Math.min(maxMs, initialMs * Math.pow(factor, Math.max(0, attempt)));
    return Math.floor(random() * cap);
}
/** RFC 4122 v4 id (crypto.randomUUID is missing in insecure browser contexts). */
export function uuid() {
    const c = globalThis.crypto;
    if (c && typeof c.randomUUID === "function")
        return c.randomUUID();
    const b = new Uint8Array(16);
    if (c && typeof c.getRandomValues === "function")
        c.getRandomValues(b);
    else
        for (let i = 0; i < 16; i++)
            b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
/** http(s) → ws(s); a bare origin gets `/ws`. */
export function toWebSocketUrl(url) {
    let u = String(url);
    if (/^http(s?):\/\//i.test(u))
        u = u.replace(/^http/i, "ws");
    if (/^wss?:\/\/[^/]+\/?$/i.test(u))
        u = u.replace(/\/?$/, "/ws");
    return u;
}
export function deferred() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
        resolve = res;
        reject = rej;
    });
    return { promise, resolve, reject };
}

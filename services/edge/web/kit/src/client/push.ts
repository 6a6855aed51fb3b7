// Web Push for @talim/realtime (docs/protocol.md "Web Push"): enablePush asks the
// user for permission, subscribes the browser with the server's VAPID key and
// registers the subscription; the service worker (web/static/talim-sw.js, served by
// the edge at /talim-sw.js) shows each push and opens its room or inbox item.

/** The part of TalimClient enablePush needs (any client with `request`). */
export interface PushCommands {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  request<T = any>(event: string, data?: unknown, opts?: { timeoutMs?: number }): Promise<T>;
}

export interface EnablePushOptions {
  /** Service worker script URL; default "/talim-sw.js". */
  serviceWorkerUrl?: string;
  /** Service worker scope; default "/". */
  scope?: string;
}

export type EnablePushResult =
  | { ok: true; endpoint: string; id: string }
  | { ok: false; reason: "unsupported" | "denied" | "not-configured" };

/** Decode base64url (the VAPID public key) into the bytes pushManager.subscribe takes. */
export function base64UrlToBytes(s: string): Uint8Array {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Turn on Web Push for the signed-in user: ask permission (call it from a click),
 * register the service worker, subscribe with the server's VAPID public key
 * (`get-push-config`) and send `register-push-subscription`. Safe to call again:
 * an existing subscription is re-registered.
 */
export async function enablePush(client: PushCommands, opts: EnablePushOptions = {}): Promise<EnablePushResult> {
  const g = globalThis as unknown as { navigator?: Navigator; Notification?: typeof Notification };
  if (!g.navigator?.serviceWorker || !g.Notification || !("PushManager" in globalThis)) return { ok: false, reason: "unsupported" };
  const permission = g.Notification.permission === "granted" ? "granted" : await g.Notification.requestPermission();
  if (permission !== "granted") return { ok: false, reason: "denied" };
  const { vapidPublicKey } = await client.request<{ vapidPublicKey: string }>("get-push-config", {});
  if (!vapidPublicKey) return { ok: false, reason: "not-configured" };
  const reg = await g.navigator.serviceWorker.register(opts.serviceWorkerUrl ?? "/talim-sw.js", { scope: opts.scope ?? "/" });
  await g.navigator.serviceWorker.ready;
  const key = base64UrlToBytes(vapidPublicKey);
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameKey(sub.options.applicationServerKey, key)) {
    await sub.unsubscribe(); // the server's key changed: the old subscription is useless
    sub = null;
  }
  sub ??= await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key as BufferSource });
  const json = sub.toJSON();
  const ack = await client.request<{ id: string }>("register-push-subscription", { endpoint: json.endpoint, keys: json.keys });
  return { ok: true, endpoint: sub.endpoint, id: ack.id };
}

/** Unsubscribe the browser and remove the subscription on the server. */
export async function disablePush(client: PushCommands, opts: EnablePushOptions = {}): Promise<boolean> {
  const sw = (globalThis as unknown as { navigator?: Navigator }).navigator?.serviceWorker;
  const reg = sw && (await sw.getRegistration(opts.scope ?? "/"));
  const sub = reg && (await reg.pushManager.getSubscription());
  if (!sub) return false;
  await client.request("remove-push-subscription", { endpoint: sub.endpoint });
  return sub.unsubscribe();
}

function sameKey(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (!a) return false;
  const x = new Uint8Array(a);
  return x.length === b.length && x.every((v, i) => v === b[i]);
}

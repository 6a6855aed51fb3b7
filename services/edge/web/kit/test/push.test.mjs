// enablePush with fake browser APIs: the permission, service worker, subscribe and
// register-push-subscription steps, and the outcomes without support or permission.
import { test } from "node:test";
import assert from "node:assert/strict";
import { enablePush, base64UrlToBytes } from "../dist/client/index.js";

const KEY = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";

function fakeBrowser({ permission = "default", answer = "granted" } = {}) {
  const calls = [];
  const sub = {
    endpoint: "https://push.example/sub/1",
    options: { applicationServerKey: base64UrlToBytes(KEY).buffer },
    toJSON: () => ({ endpoint: "https://push.example/sub/1", keys: { p256dh: "p", auth: "a" } }),
  };
  const reg = {
    pushManager: {
      getSubscription: async () => null,
      subscribe: async (o) => {
        calls.push(["subscribe", o.userVisibleOnly, o.applicationServerKey.length]);
        return sub;
      },
    },
  };
  globalThis.PushManager = function () {};
  globalThis.Notification = { permission, requestPermission: async () => (calls.push(["permission"]), answer) };
  Object.defineProperty(globalThis, "navigator", {
    configurable: true,
    value: { serviceWorker: { register: async (url, o) => (calls.push(["register", url, o.scope]), reg), ready: Promise.resolve(reg) } },
  });
  return calls;
}

function fakeClient(vapidPublicKey = KEY) {
  const sent = [];
  return {
    sent,
    async request(event, data) {
      sent.push([event, data]);
      if (event === "get-push-config") return { vapidPublicKey };
      return { id: "ps_1" };
    },
  };
}

test("base64UrlToBytes decodes an unpadded VAPID key", () => {
  const b = base64UrlToBytes(KEY);
  assert.equal(b.length, 65);
  assert.equal(b[0], 4);
});

test("enablePush asks permission, subscribes with the VAPID key and registers", async () => {
  const calls = fakeBrowser();
  const c = fakeClient();
  const r = await enablePush(c);
  assert.deepEqual(r, { ok: true, endpoint: "https://push.example/sub/1", id: "ps_1" });
  assert.deepEqual(calls, [["permission"], ["register", "/talim-sw.js", "/"], ["subscribe", true, 65]]);
  assert.deepEqual(c.sent[1], ["register-push-subscription", { endpoint: "https://push.example/sub/1", keys: { p256dh: "p", auth: "a" } }]);
});

test("enablePush reports denied permission and a server without push", async () => {
  fakeBrowser({ answer: "denied" });
  assert.deepEqual(await enablePush(fakeClient()), { ok: false, reason: "denied" });
  fakeBrowser({ permission: "granted" });
  assert.deepEqual(await enablePush(fakeClient("")), { ok: false, reason: "not-configured" });
  delete globalThis.PushManager;
  assert.deepEqual(await enablePush(fakeClient()), { ok: false, reason: "unsupported" });
});

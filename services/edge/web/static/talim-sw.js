// talim-sw.js — the service worker of Talim Realtime's Web Push (docs/protocol.md
// "Web Push"). Register it at the site root (enablePush does): it shows each push
// and, on click, focuses an open tab of the app or opens the push's url (the room,
// or the inbox item).
/* eslint-env serviceworker */

self.addEventListener("push", (event) => {
  let p = {};
  try {
    p = event.data ? event.data.json() : {};
  } catch {
    p = { title: "Talim", body: event.data ? event.data.text() : "" };
  }
  const count = Number(p.count) > 1 ? Number(p.count) : 1;
  const title = count > 1 ? `${p.title || "Talim"} (${count})` : p.title || "Talim";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: p.body || "",
      tag: p.tag || undefined, // a newer push of the same room or category replaces the shown one
      renotify: Boolean(p.tag),
      data: { url: safeUrl(p.url), kind: p.kind, roomId: p.roomId, notificationId: p.notificationId },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil(
    (async () => {
      const wins = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const w of wins) {
        if (new URL(w.url).origin === self.location.origin && "focus" in w) {
          w.postMessage({ type: "talim-push-click", url, data: event.notification.data });
          await w.focus();
          if ("navigate" in w) await w.navigate(url);
          return;
        }
      }
      await self.clients.openWindow(url);
    })(),
  );
});

// Only same-origin paths: a push cannot send the user elsewhere.
function safeUrl(u) {
  try {
    const url = new URL(u || "/", self.location.origin);
    return url.origin === self.location.origin ? url.pathname + url.search : "/";
  } catch {
    return "/";
  }
}

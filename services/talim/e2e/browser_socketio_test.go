package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// sioBundle is the browser build of socket.io-client, from the npm package pinned in
// services/edge/web/sio-test/package-lock.json (scripts/siotest.sh installs it).
const sioBundle = "../../edge/web/sio-test/node_modules/socket.io-client/dist/socket.io.min.js"

// loadSIOBundle returns the socket.io-client browser bundle, installing the pinned
// package with `npm ci` when it is missing (a fresh clone runs the Go tests first).
func loadSIOBundle(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(sioBundle); err != nil {
		npm, lerr := exec.LookPath("npm")
		if lerr != nil {
			t.Skipf("%s missing and no npm to install it (scripts/siotest.sh does)", sioBundle)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(sioBundle))))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", cmd.Dir, err, out)
		}
	}
	b, err := os.ReadFile(sioBundle)
	if err != nil {
		t.Fatalf("read the socket.io-client bundle: %v", err)
	}
	return string(b)
}

// The real socket.io-client in headless Chromium, with nothing set but the token: it
// connects over long-polling, upgrades to WebSocket on the same socket, joins a room
// and sends a chat message with emitWithAck; a second socket of the page on
// transports: ["polling"] (as behind a proxy that blocks WebSockets) receives it.
func TestBrowserSocketIODefaultOptions(t *testing.T) {
	st := newStack(t, nil)
	bundle := loadSIOBundle(t)
	b := newBrowser(t)
	// Same origin as the edge: the page is one of the edge's own URLs.
	p := b.open("s1", st.EdgeURL+"/healthz")
	p.run("load socket.io-client", chromedp.Evaluate[chromedp.Void](bundle))
	if !eval[bool](p, "io is defined", `typeof io === "function"`) {
		t.Fatal("socket.io-client bundle did not define io")
	}
	content := fmt.Sprintf("browser socket.io %d", time.Now().UnixNano())
	script := fmt.Sprintf(`(async () => {
  const base = %s, content = %s;
  const until = (pred, what, ms = 10000) => new Promise((resolve, reject) => {
    const end = Date.now() + ms;
    const tick = () => pred() ? resolve() : Date.now() > end ? reject(new Error("timed out: " + what)) : setTimeout(tick, 20);
    tick();
  });
  const connected = (s) => new Promise((resolve, reject) => { s.once("connect", resolve); s.once("connect_error", reject); });
  window.__step = "connect";
  const s = io(base, { auth: { token: %s } });
  const opened = [];
  s.io.on("open", () => opened.push(s.io.engine.transport.name));
  await connected(s);
  window.__step = "upgrade";
  const first = opened[0], id = s.id;
  await until(() => s.io.engine.transport.name === "websocket", "the upgrade");
  window.__step = "polling socket";
  const p = io(base, { auth: { token: %s }, transports: ["polling"], forceNew: true });
  window.__pev = [];
  p.onAny((ev) => window.__pev.push(ev));
  await connected(p);
  window.__step = "join";
  const joinS = await s.timeout(5000).emitWithAck("join-chat-room", { roomId: "room-123", limit: 1 });
  const joinP = await p.timeout(5000).emitWithAck("join-chat-room", { roomId: "room-123", limit: 1 });
  const got = new Promise((resolve) => p.on("chat-message", ({ message }) => { if (message.content === content) resolve(message); }));
  const sent = await s.timeout(5000).emitWithAck("send-chat-message", { roomId: "room-123", content, clientMsgId: "browser-sio-" + Date.now() });
  if (sent.error) throw new Error("send-chat-message: " + JSON.stringify(sent.error));
  window.__step = "receive";
  const received = await got;
  const out = { first, upgraded: s.io.engine.transport.name, sameSocket: s.id === id, pollTransport: p.io.engine.transport.name,
    joinS: joinS.roomId, joinP: joinP.roomId, sentId: sent.message && sent.message.id, sentError: sent.error, receivedId: received.id };
  s.disconnect(); p.disconnect();
  return JSON.stringify(out);
})()`, strconv.Quote(st.EdgeURL), strconv.Quote(content), strconv.Quote(token(t, st, "s1")), strconv.Quote(token(t, st, "s2")))
	// One script for the whole session, with its own deadline (a loaded machine makes
	// the steps slow); window.__step tells where it stopped.
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
	if err != nil {
		sctx, scancel := context.WithTimeout(p.ctx, 5*time.Second)
		defer scancel()
		step, _ := chromedp.Run(sctx, chromedp.Evaluate[string](`String(window.__step) + " " + JSON.stringify(window.__pev)`))
		t.Fatalf("socket.io-client session in the browser: %v (last step: %s)", err, step)
	}
	var got struct {
		First, Upgraded, PollTransport, JoinS, JoinP, SentID, ReceivedID string
		SameSocket                                                       bool
		SentError                                                        any
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("result %s: %v", raw, err)
	}
	t.Logf("browser: %s", raw)
	switch {
	case got.First != "polling":
		t.Errorf("first transport %q, want polling (the default options)", got.First)
	case got.Upgraded != "websocket" || !got.SameSocket:
		t.Errorf("after the upgrade: transport %q, same socket %v", got.Upgraded, got.SameSocket)
	case got.PollTransport != "polling":
		t.Errorf("polling-only socket on %q", got.PollTransport)
	case got.JoinS != "room-123" || got.JoinP != "room-123":
		t.Errorf("joins %q %q", got.JoinS, got.JoinP)
	case got.SentError != nil || got.SentID == "" || got.ReceivedID != got.SentID:
		t.Errorf("sent %q (error %v), received %q", got.SentID, got.SentError, got.ReceivedID)
	}
}

package e2e

// Real-browser tests of the demo page (/ → the React demo at /kit/), built only from @talim/realtime's
// components (services/edge/web/kit): WebSocketStatus, ChatRoom, NotificationToaster and
// NotificationInbox against a real stack, in Debian's Chromium.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/talim/realtime/services/edge/edgetest"
	"github.com/talim/realtime/services/notification"
)

// kitURL is the React demo page of base signed in as userID, with extra query pairs.
func kitURL(base, userID string, extra ...string) string {
	q := url.Values{"user": {userID}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return base + "/kit/?" + q.Encode()
}

// kitStatus waits for WebSocketStatus to show status and its icon.
func (p *page) kitStatus(status string) {
	p.b.t.Helper()
	icon := map[string]string{"connected": "🟢", "connecting": "🟡", "disconnected": "⚫", "error": "🔴"}[status]
	p.waitJS("status "+status+" "+icon, fmt.Sprintf(
		`document.querySelector('[data-testid=ws-status]')?.dataset.status === %q && document.querySelector('[data-testid=ws-status] .talim-status-icon').textContent === %q`,
		status, icon))
}

// kitRoomOpen waits until the page is connected and has joined roomID.
func (p *page) kitRoomOpen(roomID string) {
	p.b.t.Helper()
	p.kitStatus("connected")
	p.waitJS("room "+roomID+" joined", fmt.Sprintf(
		`document.querySelector('[data-testid=chat-room]')?.dataset.room === %q && window.talim && window.talim.joinedRooms.some(r => r.roomId === %q && r.lastSeq !== null)`,
		roomID, roomID))
}

func (p *page) kitSay(text string) {
	p.b.t.Helper()
	p.run("send "+text,
		chromedp.SendKeys(chromedp.CSS(`[data-testid=message-input]`), text),
		chromedp.Click(chromedp.CSS(`[data-testid=send-button]`)),
	)
}

func (p *page) kitWaitMessage(sender, text string) {
	p.b.t.Helper()
	p.waitJS(fmt.Sprintf("message %q from %s", text, sender), fmt.Sprintf(
		`[...document.querySelectorAll('[data-testid=message]')].some(li => li.dataset.sender === %q && li.querySelector('.talim-message-content').textContent === %q)`,
		sender, text))
}

func (p *page) kitMessages() []renderedMessage {
	p.b.t.Helper()
	return eval[[]renderedMessage](p, "read messages", `[...document.querySelectorAll('[data-testid=message]')].map(li => ({id: li.dataset.id, seq: Number(li.dataset.seq), sender: li.dataset.sender, content: li.querySelector('.talim-message-content').textContent}))`)
}

// kitRecordStatuses records every status WebSocketStatus shows ("connected 🟢", ...).
func (p *page) kitRecordStatuses() {
	p.b.t.Helper()
	eval[bool](p, "record statuses", `(() => {
		window.__statuses = [];
		const note = () => {
			const box = document.querySelector('[data-testid=ws-status]');
			if (!box) return;
			const s = box.dataset.status + ' ' + box.querySelector('.talim-status-icon').textContent;
			if (window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
		};
		note();
		new MutationObserver(note).observe(document.body, {attributes: true, childList: true, subtree: true, characterData: true});
		return true;
	})()`)
}

// checkOnceInOrder fails when a message is shown twice or out of seq order.
func checkOnceInOrder(t *testing.T, who string, msgs []renderedMessage) {
	t.Helper()
	seen := map[string]bool{}
	for i, m := range msgs {
		if seen[m.ID] {
			t.Errorf("%s: message %s (%q) shown twice", who, m.ID, m.Content)
		}
		seen[m.ID] = true
		if i > 0 && m.Seq <= msgs[i-1].Seq {
			t.Errorf("%s: seq %d shown after %d", who, m.Seq, msgs[i-1].Seq)
		}
	}
}

// Two users chat through the package's ChatRoom: each sees the other's messages once,
// the typing indicator and the read receipt; the status shows 🟢.
func TestBrowserKitChat(t *testing.T) {
	start := time.Now()
	st := newStack(t, nil)
	b := newBrowser(t)
	// The teacher opens the edge's root, what `make run` prints: the React demo.
	teacher := b.open("t1", pageURL(st.EdgeURL, "t1"))
	student := b.open("s1", kitURL(st.EdgeURL, "s1"))
	teacher.kitRoomOpen("room-123")
	student.kitRoomOpen("room-123")
	teacher.waitJS("/ is the React demo at /kit/", `location.pathname === '/kit/' && new URLSearchParams(location.search).get('user') === 't1'`)
	teacher.waitJS("user picker on t1", `document.querySelector('[data-testid=user-picker]').value === 't1'`)
	teacher.waitJS("t1's rooms from list-rooms", `['room-123', 'class-7a', 'announcements'].every(r => document.querySelector('[data-testid="room-' + r + '"]'))`)

	student.run("type", chromedp.SendKeys(chromedp.CSS(`[data-testid=message-input]`), "hello Ms. Yusuf"))
	teacher.waitJS("typing indicator", `document.querySelector('[data-testid=typing]').textContent.includes('is typing')`)
	student.run("send", chromedp.Click(chromedp.CSS(`[data-testid=send-button]`)))
	teacher.kitWaitMessage("s1", "hello Ms. Yusuf")
	student.kitWaitMessage("s1", "hello Ms. Yusuf")
	student.waitJS("no pending copy", `document.querySelectorAll('[data-testid=message-pending]').length === 0`)

	teacher.kitSay("welcome, Bilal")
	student.kitWaitMessage("t1", "welcome, Bilal")
	// s1's ChatRoom marks what it shows as read; t1 sees the receipt on its message.
	teacher.waitJS("read receipt", `[...document.querySelectorAll('[data-testid=message][data-sender=t1]')].some(li => li.querySelector('[data-testid=receipt]')?.textContent.includes('Read by'))`)

	// A message in another room shows up as an unread badge (room-updated).
	eval[float64](student, "post in class-7a", `window.talim.sendMessage('class-7a', 'study group at 4pm?').then(m => m.seq)`)
	teacher.waitJS("unread badge on class-7a", `document.querySelector('[data-testid="room-class-7a"] [data-testid=unread]')?.textContent === '1'`)

	for _, p := range []*page{teacher, student} {
		msgs := p.kitMessages()
		checkOnceInOrder(t, p.name, msgs)
		if len(msgs) != 2 {
			t.Errorf("%s: %d messages, want 2: %+v", p.name, len(msgs), msgs)
		}
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// A bad token (what a revoked or forged one looks like to the edge): the page shows 🔴
// with the edge's reason instead of retrying forever; Retry calls getToken again, and
// with a good token the page connects.
func TestBrowserKitBadToken(t *testing.T) {
	st := newStack(t, nil)
	b := newBrowser(t)
	p := b.open("s1", kitURL(st.EdgeURL, "s1", "token", "forged.not-a.jwt"))
	p.kitStatus("error")
	p.waitJS("the reason", `document.querySelector('[data-testid=ws-error]')?.textContent.includes('invalid token')`)
	p.waitJS("a retry button", `!!document.querySelector('[data-testid=ws-retry]')`)
	// One pre-flight GET explained the refusal (the socket itself is not a resource entry).
	attempts := eval[float64](p, "pre-flight requests", `performance.getEntriesByType('resource').filter(e => e.name.includes('/ws?')).length`)
	if attempts != 1 {
		t.Errorf("%v pre-flight requests of /ws, want 1", attempts)
	}
	p.kitRecordStatuses()

	eval[bool](p, "use the demo user's token from now on", `(window.talimDemo.useDemoToken(), true)`)
	p.run("retry", chromedp.Click(chromedp.CSS(`[data-testid=ws-retry]`)))
	p.kitRoomOpen("room-123")
	p.kitSay("back in")
	p.kitWaitMessage("s1", "back in")
	statuses := eval[[]string](p, "statuses", `window.__statuses`)
	t.Logf("pre-flight fetches while in error: %v; status after retry: %s", attempts, strings.Join(statuses, " → "))
	if len(statuses) < 2 || statuses[0] != "error 🔴" || statuses[len(statuses)-1] != "connected 🟢" {
		t.Errorf("statuses %q: want error 🔴 … connected 🟢", statuses)
	}
}

// `talim notify` (the gRPC API) shows a toast from NotificationToaster and fills the
// NotificationInbox; acknowledge and mark-all-read work from the page.
func TestBrowserKitNotifications(t *testing.T) {
	st := newStack(t, nil)
	b := newBrowser(t)
	p := b.open("s1", kitURL(st.EdgeURL, "s1"))
	p.kitRoomOpen("room-123")
	p.run("open inbox", chromedp.Click(chromedp.CSS(`[data-testid=inbox-toggle]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid=inbox]`)))
	p.waitJS("empty inbox", `!document.querySelector('[data-testid=inbox-count]')`)

	notify := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		var out, errb bytes.Buffer
		args = append([]string{"--to", "s1", "--addr", st.GRPCAddr, "--token", st.ServiceToken}, args...)
		if code := notification.NotifyCommand(ctx, args, &out, &errb); code != 0 {
			t.Fatalf("talim notify %v: exit %d: %s", args, code, errb.String())
		}
	}
	notify("--title", "Assignment due", "--body", "Read chapter 3 by Friday", "--category", "assignment")
	p.waitJS("toast", `[...document.querySelectorAll('[data-testid=toast]')].some(t => t.textContent.includes('Assignment due') && t.textContent.includes('Read chapter 3 by Friday') && t.getAttribute('role') === 'status')`)
	p.waitJS("inbox count 1", `document.querySelector('[data-testid=inbox-count]')?.textContent === '1'`)

	notify("--title", "Fire drill at 11:00", "--priority", "high", "--require-ack")
	p.waitJS("high-priority toast is an alert", `[...document.querySelectorAll('[data-testid=toast]')].some(t => t.textContent.includes('Fire drill') && t.getAttribute('role') === 'alert')`)
	p.waitJS("inbox count 2, newest first", `document.querySelector('[data-testid=inbox-count]')?.textContent === '2' && document.querySelectorAll('[data-testid=notification]')[0].textContent.includes('Fire drill')`)

	p.run("acknowledge from the toast", chromedp.Click(chromedp.CSS(`[data-testid=toast-ack]`)))
	p.waitJS("acknowledged in the inbox", `[...document.querySelectorAll('[data-testid=notification]')].some(n => n.textContent.includes('Fire drill') && n.textContent.includes('✓ acknowledged'))`)
	p.waitJS("ack toast gone", `![...document.querySelectorAll('[data-testid=toast]')].some(t => t.textContent.includes('Fire drill'))`)
	p.run("mark all read", chromedp.Click(chromedp.CSS(`[data-testid=mark-all-read]`)))
	p.waitJS("nothing unread", `!document.querySelector('[data-testid=inbox-count]') && ![...document.querySelectorAll('[data-testid=notification]')].some(n => n.dataset.unread === 'true')`)

	p.run("reload", chromedp.Reload())
	p.kitRoomOpen("room-123")
	p.run("open inbox again", chromedp.Click(chromedp.CSS(`[data-testid=inbox-toggle]`)))
	p.waitJS("inbox after reload", `document.querySelectorAll('[data-testid=notification]').length === 2 && !document.querySelector('[data-testid=inbox-count]')`)
}

// The edge the page is connected to stops and comes back: ⚫/🟡 then 🟢, the messages
// sent meanwhile through another edge appear once and in order, and a message written
// while offline is sent once.
func TestBrowserKitEdgeRestart(t *testing.T) {
	st := newStack(t, nil)
	extra := newExtraEdge(t, st)
	b := newBrowser(t)
	p := b.open("s1", kitURL(extra.url(), "s1"))
	p.kitRoomOpen("room-123")

	teacher := edgetest.Dial(t, st.WSURL, token(t, st, "t1", "teacher"))
	defer teacher.Close()
	if _, perr := teacher.Request("join-chat-room", map[string]any{"roomId": "room-123"}); perr != nil {
		t.Fatalf("t1 join: %v", perr)
	}
	send := func(content string) {
		t.Helper()
		if _, perr := teacher.Request("send-chat-message", map[string]any{"roomId": "room-123", "content": content, "clientMsgId": "kit-restart-" + strings.ReplaceAll(content, " ", "-")}); perr != nil {
			t.Fatalf("t1 send %q: %v", content, perr)
		}
	}
	send("before the restart")
	p.kitWaitMessage("t1", "before the restart")
	p.kitRecordStatuses()

	extra.stop()
	p.waitJS("page notices the outage", `document.querySelector('[data-testid=ws-status]').dataset.status !== 'connected'`)
	for i := range 3 {
		send(fmt.Sprintf("during the outage %d", i))
	}
	p.kitSay("written while offline")
	p.waitJS("pending copy", `[...document.querySelectorAll('[data-testid=message-pending]')].some(li => li.textContent.includes('written while offline'))`)
	p.waitJS("a ⚫ countdown or 🟡 attempt during the outage", `window.__statuses.includes('connecting 🟡') || window.__statuses.includes('disconnected ⚫')`)

	restartAt := time.Now()
	extra.start()
	p.waitJSWithin(30*time.Second, "🟢 after the restart", `document.querySelector('[data-testid=ws-status]').dataset.status === 'connected'`)
	t.Logf("page connected %s after the restart", time.Since(restartAt).Round(time.Millisecond))
	for i := range 3 {
		p.kitWaitMessage("t1", fmt.Sprintf("during the outage %d", i))
	}
	p.kitWaitMessage("s1", "written while offline")
	p.waitJS("no pending copy left", `document.querySelectorAll('[data-testid=message-pending]').length === 0`)

	statuses := eval[[]string](p, "statuses", `window.__statuses`)
	t.Logf("status indicator: %s", strings.Join(statuses, " → "))
	if len(statuses) < 3 || statuses[0] != "connected 🟢" || statuses[len(statuses)-1] != "connected 🟢" {
		t.Errorf("status sequence %q: want it to start and end with connected 🟢", statuses)
	}
	msgs := p.kitMessages()
	checkOnceInOrder(t, "s1", msgs)
	var contents []string
	for _, m := range msgs {
		contents = append(contents, m.Content)
	}
	want := []string{"before the restart", "during the outage 0", "during the outage 1", "during the outage 2", "written while offline"}
	if !slices.Equal(contents, want) {
		t.Errorf("page shows %q, want %q", contents, want)
	}
	raw, perr := teacher.Request("get-chat-room-history", map[string]any{"roomId": "room-123", "afterSeq": 0, "limit": 50})
	if perr != nil {
		t.Fatalf("history: %v", perr)
	}
	var hist struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(raw, &hist); err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, m := range hist.Messages {
		if m.Content == "written while offline" {
			stored++
		}
	}
	if stored != 1 {
		t.Errorf("offline message stored %d times, want 1", stored)
	}
}

// The page's token expires while it is connected (talim has no revocation list: an
// expired token is what a revoked session looks like to a page; docs/protocol.md,
// "Liveness and tokens"). With a getToken that returns a fresh token the client sends
// auth-refresh and the page stays 🟢 past exp; when getToken has nothing newer the edge
// closes with 4001 at exp and the page stops in 🔴 "token expired" (no retry loop with a
// dead token) until Retry gets a fresh one.
func TestBrowserKitTokenExpiry(t *testing.T) {
	st := newStack(t, nil)
	b := newBrowser(t)
	const ttl = 5 * time.Second
	shortToken := func(userID string) (string, time.Time) {
		t.Helper()
		tok, err := st.Token(userID, "User "+userID, ttl)
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		// exp is whole seconds (RFC 7519 NumericDate): the edge closes at the truncated time.
		return tok, time.Now().Add(ttl).Truncate(time.Second)
	}

	t.Run("getToken has a fresh one: stays 🟢", func(t *testing.T) {
		tok, exp := shortToken("s1")
		p := b.open("s1-refresh", kitURL(st.EdgeURL, "s1", "token", tok))
		p.kitRoomOpen("room-123")
		p.kitRecordStatuses()
		eval[bool](p, "getToken returns the demo user's token from now on; note the refresh", `(window.__refreshed = false, window.talim.on('token-refreshed', () => { window.__refreshed = true }), window.talimDemo.useDemoToken(), true)`)
		p.waitJS("auth-refresh acknowledged before exp", `window.__refreshed === true`)
		if time.Now().After(exp) {
			t.Fatalf("the refresh came after exp")
		}
		p.waitJSWithin(ttl+10*time.Second, "exp has passed", fmt.Sprintf(`Date.now() > %d`, exp.Add(time.Second).UnixMilli()))
		p.kitSay("after exp")
		p.kitWaitMessage("s1", "after exp")
		statuses := eval[[]string](p, "statuses", `window.__statuses`)
		t.Logf("statuses across exp: %s", strings.Join(statuses, " → "))
		if !slices.Equal(statuses, []string{"connected 🟢"}) {
			t.Errorf("statuses %q: want only connected 🟢 (refreshed on the open connection)", statuses)
		}
	})

	t.Run("nothing newer: 🔴 at exp, Retry with a fresh token: 🟢", func(t *testing.T) {
		tok, exp := shortToken("s2")
		p := b.open("s2-expire", kitURL(st.EdgeURL, "s2", "token", tok))
		p.kitStatus("connected")
		p.kitRecordStatuses()
		p.waitJSWithin(ttl+15*time.Second, "🔴 after exp", `document.querySelector('[data-testid=ws-status]').dataset.status === 'error'`)
		closedAfter := time.Since(exp)
		p.kitStatus("error")
		p.waitJS("the reason", `document.querySelector('[data-testid=ws-error]')?.textContent.includes('token expired')`)
		t.Logf("🔴 %s after exp", closedAfter.Round(time.Millisecond))
		if closedAfter < 0 {
			t.Errorf("🔴 %s before exp", -closedAfter)
		}
		statuses := eval[[]string](p, "statuses", `window.__statuses`)
		t.Logf("statuses at exp: %s", strings.Join(statuses, " → "))
		if len(statuses) < 2 || statuses[0] != "connected 🟢" || statuses[len(statuses)-1] != "error 🔴" || slices.Contains(statuses[1:], "connected 🟢") || slices.Contains(statuses, "connecting 🟡") {
			t.Errorf("statuses %q: want connected 🟢 … error 🔴 with no reconnect attempt in between", statuses)
		}

		eval[bool](p, "getToken returns the demo user's token from now on", `(window.talimDemo.useDemoToken(), true)`)
		p.run("retry", chromedp.Click(chromedp.CSS(`[data-testid=ws-retry]`)))
		p.kitRoomOpen("room-123")
		p.kitSay("back after expiry")
		p.kitWaitMessage("s2", "back after expiry")
	})
}

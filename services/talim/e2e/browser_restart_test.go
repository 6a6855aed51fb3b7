package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/services/edge/edgetest"
)

// The edge the browser is connected to stops (drains: close 1012) and comes back on
// the same address: the page shows 🟡 connecting, then 🟢 connected, and nothing is
// lost: messages t1 sent through the stack's main edge meanwhile appear once and in
// order, and a message s1 wrote while offline is sent once after the reconnect.
func TestBrowserEdgeRestart(t *testing.T) {
	start := time.Now()
	st := newStack(t, nil)
	extra := newExtraEdge(t, st)
	b := newBrowser(t)
	student := b.open("s1", pageURL(extra.url(), "s1"))
	student.waitRoomOpen("room-123")

	teacher := edgetest.Dial(t, st.WSURL, token(t, st, "t1", "teacher"))
	defer teacher.Close()
	if _, perr := teacher.Request("join-chat-room", map[string]any{"roomId": "room-123"}); perr != nil {
		t.Fatalf("t1 join: %v", perr)
	}
	send := func(content string) int64 {
		t.Helper()
		raw, perr := teacher.Request("send-chat-message", map[string]any{"roomId": "room-123", "content": content, "clientMsgId": "browser-restart-" + strings.ReplaceAll(content, " ", "-")})
		if perr != nil {
			t.Fatalf("t1 send %q: %v", content, perr)
		}
		var ack struct {
			Message struct {
				Seq int64 `json:"seq"`
			} `json:"message"`
		}
		if err := json.Unmarshal(raw, &ack); err != nil {
			t.Fatal(err)
		}
		return ack.Message.Seq
	}
	first := send("before the restart")
	student.waitMessage("t1", "before the restart")
	student.recordStatuses()

	// Stop the edge: the page goes ⚫/🟡 and keeps retrying against a closed port.
	stopAt := time.Now()
	extra.stop()
	student.waitJS("page notices the outage", `document.querySelector('[data-testid=status]').dataset.status !== 'connected'`)
	t.Logf("edge stopped; page noticed after %s", time.Since(stopAt).Round(time.Millisecond))

	// Meanwhile t1 keeps talking through the main edge, and s1 writes a message that
	// waits in the outbox.
	var outage []int64
	for i := range 3 {
		outage = append(outage, send(fmt.Sprintf("during the outage %d", i)))
	}
	student.say("written while offline")
	student.waitJS("queued copy", `[...document.querySelectorAll('[data-testid=pending-message]')].some(li => li.textContent.includes('written while offline'))`)
	// At least one reconnect attempt has shown 🟡 against the stopped edge.
	student.waitJS("a 🟡 attempt during the outage", `window.__statuses.includes('connecting 🟡')`)

	restartAt := time.Now()
	extra.start()
	student.waitJSWithin(30*time.Second, "🟢 after the restart", `document.querySelector('[data-testid=status]').dataset.status === 'connected'`)
	student.waitStatus("connected")
	t.Logf("edge restarted; page connected after %s", time.Since(restartAt).Round(time.Millisecond))

	for i := range 3 {
		student.waitMessage("t1", fmt.Sprintf("during the outage %d", i))
	}
	student.waitMessage("s1", "written while offline")
	student.waitJS("no pending copy left", `document.querySelectorAll('[data-testid=pending-message]').length === 0`)

	statuses := student.statuses()
	t.Logf("status indicator: %s", strings.Join(statuses, " → "))
	if len(statuses) < 3 || statuses[0] != "connected 🟢" || statuses[len(statuses)-1] != "connected 🟢" {
		t.Errorf("status sequence %q: want it to start and end with connected 🟢", statuses)
	}
	yellow := slices.Index(statuses, "connecting 🟡")
	if yellow < 1 || yellow >= len(statuses)-1 {
		t.Errorf("status sequence %q: want connecting 🟡 between the two connected 🟢", statuses)
	}

	// Nothing lost, nothing twice, in seq order, no hole between t1's first and last.
	msgs := student.messages()
	var seqs []int64
	seen := map[string]bool{}
	var offline int
	for i, m := range msgs {
		if seen[m.ID] {
			t.Errorf("message %s (%q) shown twice", m.ID, m.Content)
		}
		seen[m.ID] = true
		if i > 0 && m.Seq <= msgs[i-1].Seq {
			t.Errorf("seq %d shown after %d", m.Seq, msgs[i-1].Seq)
		}
		if m.Content == "written while offline" {
			offline++
		}
		seqs = append(seqs, m.Seq)
	}
	if offline != 1 {
		t.Errorf("s1's offline message shown %d times, want 1", offline)
	}
	want := append([]int64{first}, outage...)
	for _, s := range want {
		if !slices.Contains(seqs, s) {
			t.Errorf("seq %d missing from the page: %v", s, seqs)
		}
	}
	if len(msgs) != 5 {
		t.Errorf("%d messages on the page, want 5: %+v", len(msgs), msgs)
	}

	// The store has s1's offline message exactly once (same clientMsgId on any re-send).
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
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

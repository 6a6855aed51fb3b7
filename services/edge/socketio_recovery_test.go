package edge_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"

	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

// fakeChat plays the chat service for recovery tests: rooms with members and a
// message log numbered by seq; join-chat-room checks membership and answers
// chat-room-history with the messages after sinceSeq.
type fakeChat struct {
	t       *testing.T
	h       *harness
	mu      sync.Mutex
	members map[string][]string // room -> users
	msgs    map[string][]string // room -> message JSON, index seq-1
}

func newFakeChat(t *testing.T, h *harness, members map[string][]string) *fakeChat {
	f := &fakeChat{t: t, h: h, members: members, msgs: map[string][]string{}}
	edgetest.NewResponder(t, h.nc, "chat", f.reply)
	return f
}

func (f *fakeChat) reply(cmd *edgev1.Command) *edgev1.Reply {
	var d struct {
		RoomID   string `json:"roomId"`
		SinceSeq *int64 `json:"sinceSeq"`
		AfterSeq int64  `json:"afterSeq"`
	}
	_ = json.Unmarshal(cmd.GetData(), &d)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.members[d.RoomID], cmd.GetIdentity().GetUserId()) {
		return edgetest.Fail("forbidden", "not a member")
	}
	msgs := f.msgs[d.RoomID]
	switch cmd.GetEvent() {
	case "join-chat-room":
		var since int64
		if d.SinceSeq != nil {
			since = *d.SinceSeq
		}
		page := fmt.Sprintf(`{"roomId":%q,"messages":[%s],"hasMore":false}`, d.RoomID, strings.Join(msgs[min(int(since), len(msgs)):], ","))
		return &edgev1.Reply{
			Data:      []byte(fmt.Sprintf(`{"roomId":%q,"lastSeq":%d}`, d.RoomID, len(msgs))),
			JoinRooms: []string{d.RoomID},
			Frames:    []*edgev1.Frame{{Event: "chat-room-history", Data: []byte(page)}},
		}
	}
	return edgetest.Echo(cmd)
}

// post stores a message in room and publishes it to the members (as chat does).
func (f *fakeChat) post(room, content string) int64 {
	f.mu.Lock()
	seq := int64(len(f.msgs[room]) + 1)
	m := fmt.Sprintf(`{"roomId":%q,"seq":%d,"content":%q}`, room, seq, content)
	f.msgs[room] = append(f.msgs[room], m)
	members := slices.Clone(f.members[room])
	f.mu.Unlock()
	for _, u := range members {
		edgetest.PublishOutbound(f.t, f.h.nc, u, &edgev1.Outbound{
			Event: "chat-message", Data: []byte(`{"message":` + m + `}`), RoomId: room, Seq: seq,
		})
	}
	return seq
}

// sioConnect sends CONNECT with auth and returns the pid of the reply.
func sioConnect(t *testing.T, c *sioClient, auth string) string {
	t.Helper()
	c.send("40" + auth)
	f := c.expectPrefix("40")
	var ok struct{ SID, PID string }
	if err := json.Unmarshal([]byte(f[2:]), &ok); err != nil || ok.PID == "" {
		t.Fatalf("CONNECT reply %q has no pid", f)
	}
	c.expectEvent("connected")
	return ok.PID
}

func dialRecover(t *testing.T, h *harness, user, pid, offset string) (*sioClient, string) {
	t.Helper()
	c, err := dialSIO(t, h.sioURL(""))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	auth := fmt.Sprintf(`{"token":%q,"pid":%q,"offset":%q}`, h.token(user, time.Hour), pid, offset)
	return c, sioConnect(t, c, auth)
}

// expectChat waits for chat-message and returns its content and offset argument.
func (c *sioClient) expectChat() (content, offset string) {
	c.t.Helper()
	f := c.expectPrefix(`42["chat-message"`)
	var arr []json.RawMessage
	if err := json.Unmarshal([]byte(f[2:]), &arr); err != nil || len(arr) != 3 {
		c.t.Fatalf("chat-message frame %q has no offset", f)
	}
	var d struct{ Message struct{ Content string } }
	_ = json.Unmarshal(arr[1], &d)
	_ = json.Unmarshal(arr[2], &offset)
	return d.Message.Content, offset
}

// noChat fails when a chat-message is queued (after a later event proved ordering).
func (c *sioClient) noChat() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.frames {
		if strings.HasPrefix(f, `42["chat-message"`) {
			c.t.Fatalf("unexpected %q", f)
		}
	}
}

// joinAndDrop connects user, joins room, receives one live message, then drops the
// TCP connection; it returns the pid and the last offset seen.
func joinAndDrop(t *testing.T, h *harness, f *fakeChat, user, room string) (pid, offset string) {
	t.Helper()
	c, err := dialSIO(t, h.sioURL(""))
	if err != nil {
		t.Fatal(err)
	}
	pid = sioConnect(t, c, fmt.Sprintf(`{"token":%q}`, h.token(user, time.Hour)))
	c.send(`421["join-chat-room",{"roomId":"` + room + `"}]`)
	c.expectAck(1)
	c.expectEvent("chat-room-history")
	f.post(room, "before")
	if got, off := c.expectChat(); got != "before" || !strings.HasSuffix(off, ":"+room) {
		t.Fatalf("live message %q offset %q", got, off)
	} else {
		offset = off
	}
	before := edge.SIORecoverySessions(h.edge)
	_ = c.conn.Close() // the transport drops
	eventually(t, 5*time.Second, func() bool { return edge.SIORecoverySessions(h.edge) == before+1 }, "session kept for recovery")
	return pid, offset
}

func TestSocketIO_RecoveryRestoresRoomsAndMissedMessages(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	f := newFakeChat(t, h, map[string][]string{"r1": {"alice", "bob"}})
	pid, offset := joinAndDrop(t, h, f, "alice", "r1")

	f.post("r1", "missed-1")
	f.post("r1", "missed-2")

	c, got := dialRecover(t, h, "alice", pid, offset)
	if got != pid {
		t.Fatalf("recovered CONNECT reply pid %q, want the same %q", got, pid)
	}
	for i, want := range []string{"missed-1", "missed-2"} {
		content, off := c.expectChat()
		if content != want || off != fmt.Sprintf("%d:r1", i+2) {
			t.Fatalf("missed message %d: %q offset %q", i, content, off)
		}
	}
	// The room is joined again: a new message arrives, once; nothing was repeated.
	f.post("r1", "after")
	if content, _ := c.expectChat(); content != "after" {
		t.Fatalf("live after recovery: %q", content)
	}
	c.send(`422["ping",{}]`)
	c.expectAck(2)
	c.noChat()
	if n := edge.SIORecoverySessions(h.edge); n != 0 {
		t.Fatalf("session still kept after recovery: %d", n)
	}
}

func TestSocketIO_RecoveryAfterWebSocketClose(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	f := newFakeChat(t, h, map[string][]string{"r1": {"alice"}})
	f.post("r1", "old") // history the join hands out: never replayed by recovery
	c, err := dialSIO(t, h.sioURL(""))
	if err != nil {
		t.Fatal(err)
	}
	pid := sioConnect(t, c, fmt.Sprintf(`{"token":%q}`, h.token("alice", time.Hour)))
	c.send(`421["join-chat-room",{"roomId":"r1"}]`)
	c.expectAck(1)
	// engine.close(): a WebSocket close frame, no Socket.IO DISCONNECT.
	if err := c.write(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "")); err != nil {
		t.Fatal(err)
	}
	c.expectClose(1000, 5*time.Second)
	eventually(t, 5*time.Second, func() bool { return edge.SIORecoverySessions(h.edge) == 1 }, "session kept for recovery")
	f.post("r1", "missed")
	r, got := dialRecover(t, h, "alice", pid, "")
	if got != pid {
		t.Fatal("not recovered after a WebSocket close")
	}
	if content, _ := r.expectChat(); content != "missed" {
		t.Fatalf("got %q", content)
	}
}

func TestSocketIO_RecoveryRefusals(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	f := newFakeChat(t, h, map[string][]string{"r1": {"alice", "bob", "mallory"}})

	t.Run("another user's pid", func(t *testing.T) {
		pid, offset := joinAndDrop(t, h, f, "alice", "r1")
		f.post("r1", "secret")
		c, got := dialRecover(t, h, "mallory", pid, offset)
		if got == pid {
			t.Fatal("another user's pid recovered the session")
		}
		f.post("r1", "later") // mallory did not join: nothing arrives
		c.send(`421["ping",{}]`)
		c.expectAck(1)
		c.noChat()
		// The owner can still recover it.
		a, got := dialRecover(t, h, "alice", pid, offset)
		if got != pid {
			t.Fatal("owner lost the session after another user tried its pid")
		}
		if content, _ := a.expectChat(); content != "secret" {
			t.Fatalf("owner got %q", content)
		}
	})
	t.Run("forged pid", func(t *testing.T) {
		c, got := dialRecover(t, h, "bob", "AAAAAAAAAAAAAAAAAAAAAA", "1:r1")
		if got == "AAAAAAAAAAAAAAAAAAAAAA" {
			t.Fatal("forged pid accepted")
		}
		f.post("r1", "x")
		c.send(`421["ping",{}]`)
		c.expectAck(1)
		c.noChat()
	})
	t.Run("expired window", func(t *testing.T) {
		pid, offset := joinAndDrop(t, h, f, "bob", "r1")
		edge.AdvanceSIORecoveryClock(h.edge, 3*time.Minute)
		c, got := dialRecover(t, h, "bob", pid, offset)
		if got == pid {
			t.Fatal("expired session recovered")
		}
		f.post("r1", "y")
		c.send(`421["ping",{}]`)
		c.expectAck(1)
		c.noChat()
	})
	t.Run("socket.disconnect is not recoverable", func(t *testing.T) {
		c, err := dialSIO(t, h.sioURL(""))
		if err != nil {
			t.Fatal(err)
		}
		pid := sioConnect(t, c, fmt.Sprintf(`{"token":%q}`, h.token("bob", time.Hour)))
		c.send("41")
		c.expectClose(1000, 5*time.Second)
		// The edge ends the session before it answers the close: nothing was kept.
		if _, got := dialRecover(t, h, "bob", pid, ""); got == pid {
			t.Fatal("a session closed by socket.disconnect() was recovered")
		}
	})
	t.Run("membership removed meanwhile", func(t *testing.T) {
		pid, offset := joinAndDrop(t, h, f, "mallory", "r1")
		f.mu.Lock()
		f.members["r1"] = []string{"alice", "bob"}
		f.mu.Unlock()
		f.post("r1", "not for mallory")
		c, got := dialRecover(t, h, "mallory", pid, offset)
		if got != pid {
			t.Fatal("session not recovered")
		}
		c.send(`421["ping",{}]`)
		c.expectAck(1)
		c.noChat()
	})
}

package chat_test

import (
	"fmt"
	"sync"
	"time"

	"testing"

	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
)

func TestChat_TwoUsersChat(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("r1", chatv1.RoomType_ROOM_TYPE_GROUP, "alice=owner", "bob")
	alice, bob := h.user("alice"), h.user("bob")
	aliceIn, bobIn := h.inbox("alice"), h.inbox("bob")

	ack, hist := alice.join(map[string]any{"roomId": "r1"})
	if ack.LastSeq != 0 || len(hist.Messages) != 0 || hist.HasMore {
		t.Fatalf("empty room join: %+v %+v", ack, hist)
	}
	m1 := alice.send("r1", "  Hello Bob!  ", "c1")
	if m1.Seq != 1 || m1.Content != "Hello Bob!" || m1.SenderID != "alice" || m1.SenderName != "Name alice" || m1.Type != "text" || m1.ID == "" || m1.EditedAt != nil {
		t.Fatalf("message: %+v", m1)
	}
	m2 := bob.send("r1", "Hi Alice", "c1")
	if m2.Seq != 2 {
		t.Fatalf("seq = %d", m2.Seq)
	}
	for _, in := range []*inbox{aliceIn, bobIn} {
		evs := in.wait("chat-message", 2)
		for i, ev := range evs {
			got := decode[struct{ Message message }](t, ev.GetData()).Message
			if got.Seq != int64(i+1) || ev.GetRoomId() != "r1" || ev.GetSeq() != got.Seq || ev.GetAltEvent() != "room-updated" {
				t.Fatalf("event %d: %+v %v", i, got, ev)
			}
			alt := decode[struct {
				RoomID      string `json:"roomId"`
				LastSeq     int64  `json:"lastSeq"`
				LastMessage message
			}](t, ev.GetAltData())
			if alt.RoomID != "r1" || alt.LastSeq != got.Seq || alt.LastMessage.ID != got.ID {
				t.Fatalf("alt data: %+v", alt)
			}
		}
	}
	ack, hist = bob.join(map[string]any{"roomId": "r1"})
	if ack.LastSeq != 2 || ack.LastReadSeq != 2 || ack.Unread != 0 || len(hist.Messages) != 2 || hist.Messages[0].Content != "Hello Bob!" {
		t.Fatalf("bob join: %+v %+v", ack, hist)
	}
	var rooms struct {
		Rooms []struct {
			RoomID      string `json:"roomId"`
			Role        string `json:"role"`
			LastSeq     int64  `json:"lastSeq"`
			LastReadSeq int64  `json:"lastReadSeq"`
			Unread      int64  `json:"unread"`
			LastMessage *message
		}
	}
	alice.ok("list-rooms", nil, &rooms)
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].Role != "owner" || rooms.Rooms[0].LastSeq != 2 || rooms.Rooms[0].Unread != 1 || rooms.Rooms[0].LastMessage.Content != "Hi Alice" {
		t.Fatalf("list-rooms: %+v", rooms)
	}
	r := alice.ok("leave-chat-room", map[string]any{"roomId": "r1"}, nil)
	if len(r.GetLeaveRooms()) != 1 || r.GetLeaveRooms()[0] != "r1" || string(r.GetData()) != `{"roomId":"r1"}` {
		t.Fatalf("leave: %v", r)
	}
}

func seqs(ms []message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func wantSeqs(t *testing.T, what string, p page, from, to int64, more bool) {
	t.Helper()
	got := seqs(p.Messages)
	ok := len(got) == int(to-from+1) && p.HasMore == more
	for i := range got {
		ok = ok && got[i] == from+int64(i)
	}
	if !ok {
		t.Fatalf("%s: seqs %v hasMore %v, want %d..%d hasMore %v", what, got, p.HasMore, from, to, more)
	}
}

func TestChat_HistoryPagingAndRecovery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("r1", chatv1.RoomType_ROOM_TYPE_CLASS, "alice=teacher", "bob")
	alice, bob := h.user("alice"), h.user("bob")
	for i := 1; i <= 12; i++ {
		alice.send("r1", fmt.Sprintf("m%d", i), fmt.Sprintf("c%d", i))
	}
	_, p := bob.join(map[string]any{"roomId": "r1", "limit": 5})
	wantSeqs(t, "join latest 5", p, 8, 12, true)
	var hp page
	bob.ok("get-chat-room-history", map[string]any{"roomId": "r1", "beforeSeq": 8, "limit": 5}, &hp)
	wantSeqs(t, "before 8", hp, 3, 7, true)
	bob.ok("get-chat-room-history", map[string]any{"roomId": "r1", "beforeSeq": 3, "limit": 5}, &hp)
	wantSeqs(t, "before 3", hp, 1, 2, false)
	bob.ok("get-chat-room-history", map[string]any{"roomId": "r1", "afterSeq": 0, "limit": 5}, &hp)
	wantSeqs(t, "after 0", hp, 1, 5, true)
	bob.ok("get-chat-room-history", map[string]any{"roomId": "r1", "afterSeq": 10, "limit": 5}, &hp)
	wantSeqs(t, "after 10", hp, 11, 12, false)
	bob.ok("get-chat-room-history", map[string]any{"roomId": "r1", "limit": 1000}, &hp)
	wantSeqs(t, "latest, limit clamped", hp, 1, 12, false)

	// Recovery: bob held up to seq 9 when he disconnected; others kept sending.
	ack, p := bob.join(map[string]any{"roomId": "r1", "sinceSeq": 9})
	wantSeqs(t, "since 9", p, 10, 12, false)
	if ack.LastSeq != 12 || ack.Unread != 12 {
		t.Fatalf("join ack %+v", ack)
	}
	_, p = bob.join(map[string]any{"roomId": "r1", "sinceSeq": 2, "limit": 5})
	wantSeqs(t, "since 2 paged", p, 3, 7, true)
	_, p = bob.join(map[string]any{"roomId": "r1", "sinceSeq": 12})
	wantSeqs(t, "since 12", p, 1, 0, false)
}

func TestChat_IdempotentRetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("r1", chatv1.RoomType_ROOM_TYPE_GROUP, "alice", "bob")
	alice, bob := h.user("alice"), h.user("bob")
	bobIn := h.inbox("bob")
	first := alice.send("r1", "once", "same")
	again := alice.send("r1", "once (retry)", "same")
	if again != first {
		t.Fatalf("retry returned %+v, want %+v", again, first)
	}
	// A different sender may use the same clientMsgId.
	if m := bob.send("r1", "other", "same"); m.Seq != 2 {
		t.Fatalf("bob seq %d", m.Seq)
	}
	// Racing duplicates: the same send many times at once.
	var wg sync.WaitGroup
	got := make([]message, 16)
	for i := range got {
		wg.Go(func() { got[i] = alice.send("r1", "racing", "race-1") })
	}
	wg.Wait()
	for _, m := range got {
		if m.ID != got[0].ID || m.Seq != 3 {
			t.Fatalf("racing duplicates diverged: %+v vs %+v", m, got[0])
		}
	}
	var hp page
	alice.ok("get-chat-room-history", map[string]any{"roomId": "r1"}, &hp)
	wantSeqs(t, "history", hp, 1, 3, false)
	// Delivered once per stored message.
	bobIn.wait("chat-message", 3)
	if n := len(bobIn.events("chat-message")); n != 3 {
		t.Fatalf("bob got %d chat-message events", n)
	}
}

func TestChat_EditAndDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("r1", chatv1.RoomType_ROOM_TYPE_CLASS, "owner=owner", "alice", "bob", "tina", "ted=teacher")
	alice, bob, owner := h.user("alice"), h.user("bob"), h.user("owner")
	tina := h.user("tina", "teacher") // teacher by token, member by room role
	ted := h.user("ted")              // teacher by room role
	bobIn := h.inbox("bob")
	m1 := alice.send("r1", "original", "c1")
	m2 := alice.send("r1", "second", "c2")
	m3 := alice.send("r1", "third", "c3")
	m4 := alice.send("r1", "fourth", "c4")

	var ack struct{ Message message }
	alice.ok("edit-chat-message", map[string]any{"roomId": "r1", "messageId": m1.ID, "content": " edited "}, &ack)
	if ack.Message.Content != "edited" || ack.Message.EditedAt == nil || ack.Message.Seq != 1 {
		t.Fatalf("edit ack %+v", ack.Message)
	}
	ev := bobIn.wait("chat-message-updated", 1)[0]
	if got := decode[struct{ Message message }](t, ev.GetData()).Message; got.Content != "edited" || ev.GetRoomId() != "r1" {
		t.Fatalf("updated event %+v", got)
	}
	bob.fail("forbidden", "edit-chat-message", map[string]any{"roomId": "r1", "messageId": m1.ID, "content": "hijack"})
	owner.fail("forbidden", "edit-chat-message", map[string]any{"roomId": "r1", "messageId": m1.ID, "content": "owner edit"})
	bob.fail("forbidden", "delete-chat-message", map[string]any{"roomId": "r1", "messageId": m1.ID})
	alice.fail("not_found", "edit-chat-message", map[string]any{"roomId": "r1", "messageId": "m_nope", "content": "x"})

	for _, c := range []struct {
		who *user
		m   message
	}{{alice, m1}, {owner, m2}, {tina, m3}, {ted, m4}} {
		c.who.ok("delete-chat-message", map[string]any{"roomId": "r1", "messageId": c.m.ID}, &ack)
		if !ack.Message.Deleted || ack.Message.Content != "" || ack.Message.Seq != c.m.Seq {
			t.Fatalf("%s delete: %+v", c.who.id, ack.Message)
		}
	}
	alice.fail("forbidden", "edit-chat-message", map[string]any{"roomId": "r1", "messageId": m1.ID, "content": "undelete"})
	var hp page
	bob.ok("get-chat-room-history", map[string]any{"roomId": "r1"}, &hp)
	wantSeqs(t, "history keeps tombstones", hp, 1, 4, false)
	for _, m := range hp.Messages {
		if !m.Deleted || m.Content != "" {
			t.Fatalf("tombstone %+v", m)
		}
	}
	bobIn.wait("chat-message-updated", 5)
}

func TestChat_ReadReceiptsNeverMoveBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("r1", chatv1.RoomType_ROOM_TYPE_GROUP, "alice", "bob")
	alice, bob := h.user("alice"), h.user("bob")
	aliceIn := h.inbox("alice")
	var ms []message
	for i := range 5 {
		ms = append(ms, alice.send("r1", "m", fmt.Sprint(i)))
	}
	type readAck struct {
		RoomID      string `json:"roomId"`
		LastReadSeq int64  `json:"lastReadSeq"`
		Unread      int64  `json:"unread"`
	}
	var a readAck
	bob.ok("mark-message-read", map[string]any{"roomId": "r1", "seq": 3}, &a)
	if a.LastReadSeq != 3 || a.Unread != 2 || a.RoomID != "r1" {
		t.Fatalf("ack %+v", a)
	}
	ev := aliceIn.wait("message-read", 1)[0]
	got := decode[struct {
		RoomID string `json:"roomId"`
		UserID string `json:"userId"`
		Seq    int64  `json:"seq"`
		ReadAt string `json:"readAt"`
	}](t, ev.GetData())
	if got.UserID != "bob" || got.Seq != 3 || got.RoomID != "r1" || got.ReadAt == "" || ev.GetRoomId() != "r1" {
		t.Fatalf("message-read %+v", got)
	}
	bob.ok("mark-message-read", map[string]any{"roomId": "r1", "seq": 2}, &a)
	if a.LastReadSeq != 3 || a.Unread != 2 {
		t.Fatalf("moved back: %+v", a)
	}
	bob.ok("mark-message-read", map[string]any{"roomId": "r1", "messageId": ms[3].ID}, &a)
	if a.LastReadSeq != 4 {
		t.Fatalf("by id: %+v", a)
	}
	bob.ok("mark-message-read", map[string]any{"roomId": "r1", "seq": 99}, &a)
	if a.LastReadSeq != 5 || a.Unread != 0 {
		t.Fatalf("clamped: %+v", a)
	}
	aliceIn.wait("message-read", 3)
	if n := len(aliceIn.events("message-read")); n != 3 {
		t.Fatalf("%d message-read events, want 3 (no event when the marker does not move)", n)
	}
}

func TestChat_TypingThrottledNotEchoed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("r1", chatv1.RoomType_ROOM_TYPE_GROUP, "alice", "bob")
	alice := h.user("alice")
	aliceIn, bobIn := h.inbox("alice"), h.inbox("bob")
	start := time.Now()
	for range 5 {
		if r := alice.ok("typing", map[string]any{"roomId": "r1", "isTyping": true}, nil); string(r.GetData()) != "{}" {
			t.Fatalf("typing ack %s", r.GetData())
		}
	}
	alice.ok("typing", map[string]any{"roomId": "r1", "isTyping": false}, nil)
	evs := bobIn.wait("typing", 2) // the leading "true", then the trailing "false"
	first := decode[struct {
		RoomID   string `json:"roomId"`
		UserID   string `json:"userId"`
		IsTyping bool   `json:"isTyping"`
	}](t, evs[0].GetData())
	last := decode[struct{ IsTyping bool }](t, evs[1].GetData())
	if !first.IsTyping || first.UserID != "alice" || first.RoomID != "r1" || last.IsTyping || evs[0].GetRoomId() != "r1" {
		t.Fatalf("typing events %+v %+v", first, last)
	}
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond {
		t.Fatalf("second typing event after %v, want >= ~1s", elapsed)
	}
	if n := len(bobIn.events("typing")); n != 2 {
		t.Fatalf("bob got %d typing events", n)
	}
	if n := len(aliceIn.events("typing")); n != 0 {
		t.Fatalf("typing echoed to the sender (%d events)", n)
	}
}

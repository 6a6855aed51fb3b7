package chat_test

import (
	"fmt"
	"sync"
	"testing"

	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
)

// Two chat instances in one queue group write one room concurrently: every acked
// message is stored exactly once and seqs are 1..N without gap or duplicate.
func TestChat_TwoInstancesKeepSeqGapFree(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2)
	const senders, perSender = 8, 25
	members := []string{}
	for i := range senders {
		members = append(members, fmt.Sprintf("s%d", i))
	}
	h.room("busy", chatv1.RoomType_ROOM_TYPE_GROUP, members...)
	var mu sync.Mutex
	acked := map[string]message{}
	var wg sync.WaitGroup
	for i := range senders {
		u := h.user(fmt.Sprintf("s%d", i))
		wg.Go(func() {
			for j := range perSender {
				m := u.send("busy", fmt.Sprintf("%s-%d", u.id, j), fmt.Sprintf("k%d", j))
				if j%5 == 0 { // a retry lands on any instance and returns the original
					if again := u.send("busy", "retry", fmt.Sprintf("k%d", j)); again != m {
						t.Errorf("retry returned %+v, want %+v", again, m)
					}
				}
				mu.Lock()
				acked[m.ID] = m
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	const n = senders * perSender
	if len(acked) != n {
		t.Fatalf("%d distinct acked messages, want %d", len(acked), n)
	}
	var stored []message
	reader := h.user("s0")
	for after := int64(0); ; {
		var p page
		reader.ok("get-chat-room-history", map[string]any{"roomId": "busy", "afterSeq": after, "limit": 200}, &p)
		stored = append(stored, p.Messages...)
		if !p.HasMore {
			break
		}
		after = p.Messages[len(p.Messages)-1].Seq
	}
	if len(stored) != n {
		t.Fatalf("stored %d messages, want %d", len(stored), n)
	}
	for i, m := range stored {
		if m.Seq != int64(i+1) {
			t.Fatalf("position %d holds seq %d", i, m.Seq)
		}
		a, ok := acked[m.ID]
		if !ok || a.Seq != m.Seq || a.Content != m.Content {
			t.Fatalf("stored %+v was acked as %+v (%v)", m, a, ok)
		}
	}
	res, err := h.admin.GetRoom(h.ctx(), &chatv1.GetRoomRequest{RoomId: "busy"})
	if err != nil || res.GetRoom().GetLastSeq() != n {
		t.Fatalf("room summary %v %v", res, err)
	}
}

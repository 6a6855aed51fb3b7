package chat_test

import (
	"strings"
	"testing"

	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
)

// TestChat_AckCarriesZeroLastSeq: the join ack always has lastSeq, lastReadSeq and
// unread (docs/protocol.md, "Chat"), also when they are 0 in a room without messages.
func TestChat_AckCarriesZeroLastSeq(t *testing.T) {
	h := newHarness(t, 1)
	h.room("empty", chatv1.RoomType_ROOM_TYPE_GROUP, "ann")
	ann := h.user("ann")
	r := ann.ok("join-chat-room", map[string]any{"roomId": "empty"}, nil)
	for _, field := range []string{`"lastSeq":0`, `"lastReadSeq":0`, `"unread":0`} {
		if !strings.Contains(string(r.GetData()), field) {
			t.Fatalf("join ack %s lacks %s", r.GetData(), field)
		}
	}
}

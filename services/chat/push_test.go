package chat_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
)

// Chat asks notification for a push after storing a direct-room message (the other
// member) or a mention of members (docs/protocol.md "Web Push"); other messages and
// mentions of non-members ask nothing.
func TestPushRequests_DirectAndMentions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	reqs := make(chan *nats.Msg, 16)
	sub, err := h.nc.ChanSubscribe(subject.NotificationChatPush, reqs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	h.room("dm", chatv1.RoomType_ROOM_TYPE_DIRECT, "alice", "bob")
	h.room("class", chatv1.RoomType_ROOM_TYPE_CLASS, "alice", "bob", "carol")
	next := func() *notificationv1.ChatPushRequest {
		t.Helper()
		select {
		case m := <-reqs:
			var r notificationv1.ChatPushRequest
			if err := proto.Unmarshal(m.Data, &r); err != nil {
				t.Fatal(err)
			}
			return &r
		case <-time.After(5 * time.Second):
			t.Fatal("no push request")
			return nil
		}
	}
	alice := h.user("alice")
	alice.send("dm", "hello", "c1")
	if r := next(); r.GetRoomId() != "dm" || !slices.Equal(r.GetRecipientIds(), []string{"bob"}) ||
		r.GetReason() != notificationv1.ChatPushReason_CHAT_PUSH_REASON_DIRECT || r.GetText() != "hello" || r.GetSenderId() != "alice" {
		t.Fatalf("direct: %v", r)
	}
	alice.send("class", "no mention here", "c2")
	alice.send("class", "@carol @mallory @alice see this", "c3")
	if r := next(); !slices.Equal(r.GetRecipientIds(), []string{"carol"}) || r.GetReason() != notificationv1.ChatPushReason_CHAT_PUSH_REASON_MENTION {
		t.Fatalf("mention: %v", r)
	}
	alice.send("dm", "hello", "c1") // a retry of a stored message asks nothing again
	alice.send("dm", "last", "c4")
	if r := next(); r.GetText() != "last" {
		t.Fatalf("after the retry: %v", r)
	}
}

package chat_test

import (
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

func TestChat_ForbiddenCases(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("g", chatv1.RoomType_ROOM_TYPE_GROUP, "alice=owner", "bob", "reader=readonly")
	h.room("ann", chatv1.RoomType_ROOM_TYPE_ANNOUNCEMENT, "boss=owner", "teach=teacher", "bob")
	h.room("arch", chatv1.RoomType_ROOM_TYPE_GROUP, "alice", "bob")
	alice, bob, eve, reader := h.user("alice"), h.user("bob"), h.user("eve"), h.user("reader")
	boss, teach := h.user("boss"), h.user("teach")
	tokenTeacher := h.user("eve", "teacher") // teacher by token but not a member
	m := alice.send("g", "hi", "c1")
	arch := alice.send("arch", "before archiving", "c1")
	if _, err := h.admin.ArchiveRoom(h.ctx(), &chatv1.ArchiveRoomRequest{RoomId: "arch"}); err != nil {
		t.Fatal(err)
	}
	boss.send("ann", "announcement", "a1")
	teach.send("ann", "from the teacher", "a2")

	cases := []struct {
		name  string
		who   *user
		event string
		data  map[string]any
	}{
		{"non-member joins", eve, "join-chat-room", map[string]any{"roomId": "g"}},
		{"non-member sends", eve, "send-chat-message", map[string]any{"roomId": "g", "content": "x", "clientMsgId": "e1"}},
		{"non-member reads history", eve, "get-chat-room-history", map[string]any{"roomId": "g"}},
		{"non-member marks read", eve, "mark-message-read", map[string]any{"roomId": "g", "seq": 1}},
		{"non-member types", eve, "typing", map[string]any{"roomId": "g", "isTyping": true}},
		{"non-member edits", eve, "edit-chat-message", map[string]any{"roomId": "g", "messageId": m.ID, "content": "x"}},
		{"token teacher outside the room deletes", tokenTeacher, "delete-chat-message", map[string]any{"roomId": "g", "messageId": m.ID}},
		{"readonly sends", reader, "send-chat-message", map[string]any{"roomId": "g", "content": "x", "clientMsgId": "r1"}},
		{"member posts in announcement room", bob, "send-chat-message", map[string]any{"roomId": "ann", "content": "x", "clientMsgId": "b1"}},
		{"member edits another's message", bob, "edit-chat-message", map[string]any{"roomId": "g", "messageId": m.ID, "content": "x"}},
		{"member deletes another's message", bob, "delete-chat-message", map[string]any{"roomId": "g", "messageId": m.ID}},
		{"send to archived room", bob, "send-chat-message", map[string]any{"roomId": "arch", "content": "x", "clientMsgId": "b1"}},
		{"edit in archived room", alice, "edit-chat-message", map[string]any{"roomId": "arch", "messageId": arch.ID, "content": "x"}},
		{"delete in archived room", alice, "delete-chat-message", map[string]any{"roomId": "arch", "messageId": arch.ID}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) { c.who.fail("forbidden", c.event, c.data) })
	}
	// Archived rooms stay readable.
	bob.join(map[string]any{"roomId": "arch"})
	eve.fail("not_found", "join-chat-room", map[string]any{"roomId": "nope"})
	bob.fail("not_found", "send-chat-message", map[string]any{"roomId": "nope", "content": "x", "clientMsgId": "1"})
	bob.fail("not_found", "delete-chat-message", map[string]any{"roomId": "g", "messageId": arch.ID}) // message of another room
}

func TestChat_InputValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("r1", chatv1.RoomType_ROOM_TYPE_GROUP, "alice")
	alice := h.user("alice")
	long := strings.Repeat("é", 4001)
	cases := []struct {
		name, event, data string
	}{
		{"empty content", "send-chat-message", `{"roomId":"r1","content":"","clientMsgId":"c"}`},
		{"whitespace-only content", "send-chat-message", `{"roomId":"r1","content":" \n\t ","clientMsgId":"c"}`},
		{"4001-character content", "send-chat-message", `{"roomId":"r1","content":"` + long + `","clientMsgId":"c"}`},
		{"missing content", "send-chat-message", `{"roomId":"r1","clientMsgId":"c"}`},
		{"missing roomId", "send-chat-message", `{"content":"x","clientMsgId":"c"}`},
		{"missing clientMsgId", "send-chat-message", `{"roomId":"r1","content":"x"}`},
		{"long clientMsgId", "send-chat-message", `{"roomId":"r1","content":"x","clientMsgId":"` + strings.Repeat("a", 65) + `"}`},
		{"operator as roomId", "send-chat-message", `{"roomId":{"$gt":""},"content":"x","clientMsgId":"c"}`},
		{"operator as clientMsgId", "send-chat-message", `{"roomId":"r1","content":"x","clientMsgId":{"$ne":null}}`},
		{"dollar roomId", "join-chat-room", `{"roomId":"$where"}`},
		{"bad characters in roomId", "join-chat-room", `{"roomId":"a b"}`},
		{"129-character roomId", "join-chat-room", `{"roomId":"` + strings.Repeat("a", 129) + `"}`},
		{"number as roomId", "join-chat-room", `{"roomId":17}`},
		{"string as sinceSeq", "join-chat-room", `{"roomId":"r1","sinceSeq":"5"}`},
		{"negative sinceSeq", "join-chat-room", `{"roomId":"r1","sinceSeq":-1}`},
		{"zero limit", "get-chat-room-history", `{"roomId":"r1","limit":0}`},
		{"both directions", "get-chat-room-history", `{"roomId":"r1","beforeSeq":5,"afterSeq":1}`},
		{"operator as messageId", "delete-chat-message", `{"roomId":"r1","messageId":{"$gt":""}}`},
		{"missing messageId", "edit-chat-message", `{"roomId":"r1","content":"x"}`},
		{"neither seq nor messageId", "mark-message-read", `{"roomId":"r1"}`},
		{"missing isTyping", "typing", `{"roomId":"r1"}`},
		{"system type", "send-chat-message", `{"roomId":"r1","content":"x","clientMsgId":"c","type":"system"}`},
		{"data not an object", "send-chat-message", `[1,2]`},
		{"malformed JSON", "send-chat-message", `{"roomId":`},
		{"direct room with self", "open-direct-room", `{"userId":"alice"}`},
		{"direct room operator", "open-direct-room", `{"userId":{"$gt":""}}`},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) { alice.fail("bad_request", c.event, c.data) })
	}
	// Exactly 4000 characters is fine.
	if m := alice.send("r1", strings.Repeat("é", 4000), "c4000"); len([]rune(m.Content)) != 4000 {
		t.Fatalf("4000-character content stored as %d", len([]rune(m.Content)))
	}
}

func TestChat_RemovedMemberCutOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2) // the removal and the sends may hit different instances
	h.room("r1", chatv1.RoomType_ROOM_TYPE_GROUP, "alice", "bob")
	alice, bob := h.user("alice"), h.user("bob")
	bobIn := h.inbox("bob")
	bob.join(map[string]any{"roomId": "r1"})
	alice.send("r1", "before", "c1")
	bobIn.wait("chat-message", 1)
	if _, err := h.admin.RemoveMembers(h.ctx(), &chatv1.RemoveMembersRequest{RoomId: "r1", UserIds: []string{"bob", "ghost"}}); err != nil {
		t.Fatal(err)
	}
	// Bob may also see the "added" of the room's creation (published just before
	// his inbox subscribed): take the removal.
	var ev *edgev1.Outbound
	for n := 1; ev == nil; n++ {
		for _, e := range bobIn.wait("room-membership", n) {
			if len(e.GetControl().GetRemoveRooms()) > 0 {
				ev = e
			}
		}
	}
	if rr := ev.GetControl().GetRemoveRooms(); len(rr) != 1 || rr[0] != "r1" {
		t.Fatalf("removal control %v", ev.GetControl())
	}
	if d := decode[map[string]string](t, ev.GetData()); d["roomId"] != "r1" || d["change"] != "removed" || d["role"] != "member" {
		t.Fatalf("removal event %v", d)
	}
	for i := range 5 {
		alice.send("r1", "after", "after"+string(rune('a'+i)))
	}
	bob.fail("forbidden", "send-chat-message", map[string]any{"roomId": "r1", "content": "x", "clientMsgId": "b"})
	bob.fail("forbidden", "join-chat-room", map[string]any{"roomId": "r1"})
	// Bob's inbox got nothing more from the room; use a marker published after the
	// sends to know everything before it has arrived.
	h.room("marker", chatv1.RoomType_ROOM_TYPE_GROUP, "bob")
	bobIn.wait("room-membership", 2)
	if n := len(bobIn.events("chat-message")); n != 1 {
		t.Fatalf("removed member received %d chat-message events (%s)", n, summary(bobIn.events("")))
	}
}

func TestChat_OpenRoomAndDirectRoom(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2)
	h.room("lobby", chatv1.RoomType_ROOM_TYPE_OPEN)
	carol := h.user("carol")
	carolIn := h.inbox("carol")
	ack, _ := carol.join(map[string]any{"roomId": "lobby"})
	if ack.RoomID != "lobby" {
		t.Fatalf("join open: %+v", ack)
	}
	if d := decode[map[string]string](t, carolIn.wait("room-membership", 1)[0].GetData()); d["change"] != "added" || d["role"] != "member" {
		t.Fatalf("membership event %v", d)
	}
	carol.send("lobby", "hello lobby", "c1")

	// Direct room: concurrent calls from both sides converge on one room.
	dan, erin := h.user("dan"), h.user("erin")
	ids := make([]string, 12)
	var wg sync.WaitGroup
	for i := range ids {
		who, other := dan, "erin"
		if i%2 == 1 {
			who, other = erin, "dan"
		}
		wg.Go(func() {
			var r struct {
				Room struct {
					RoomID string `json:"roomId"`
					Type   string `json:"type"`
					Role   string `json:"role"`
				}
			}
			who.ok("open-direct-room", map[string]any{"userId": other}, &r)
			if r.Room.Type != "direct" || r.Room.Role != "member" {
				t.Errorf("direct room %+v", r.Room)
			}
			ids[i] = r.Room.RoomID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Fatalf("direct room ids differ: %v", ids)
		}
	}
	dan.send(ids[0], "hi erin", "d1")
	erin.join(map[string]any{"roomId": ids[0]})
	res, err := h.admin.GetRoom(h.ctx(), &chatv1.GetRoomRequest{RoomId: ids[0]})
	if err != nil || res.GetRoom().GetMemberCount() != 2 || res.GetRoom().GetLastSeq() != 1 {
		t.Fatalf("direct room %v %v", res, err)
	}
	h.user("frank").fail("forbidden", "join-chat-room", map[string]any{"roomId": ids[0]})
}

func TestChat_SharedRooms(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("a", chatv1.RoomType_ROOM_TYPE_GROUP, "u1", "u2")
	h.room("b", chatv1.RoomType_ROOM_TYPE_GROUP, "u1", "u3")
	h.room("c", chatv1.RoomType_ROOM_TYPE_GROUP, "u4", "u5")
	ask := func(user string, others ...string) []string {
		b, _ := proto.Marshal(&chatv1.SharedRoomsRequest{UserId: user, OtherUserIds: others})
		m, err := h.nc.Request("talim.chat.v1.shared-rooms", b, 5e9)
		if err != nil {
			t.Fatal(err)
		}
		var resp chatv1.SharedRoomsResponse
		if err := proto.Unmarshal(m.Data, &resp); err != nil || resp.GetError() != "" {
			t.Fatalf("shared rooms: %v %q", err, resp.GetError())
		}
		return resp.GetVisibleUserIds()
	}
	got := ask("u1", "u2", "u3", "u4", "u5", "nobody", "$bad")
	if len(got) != 2 || !(got[0] == "u2" && got[1] == "u3" || got[0] == "u3" && got[1] == "u2") {
		t.Fatalf("u1 shares with %v", got)
	}
	if got := ask("u2", "u3", "u4"); len(got) != 0 {
		t.Fatalf("u2 shares with %v", got)
	}
	if got := ask("lonely", "u1"); len(got) != 0 {
		t.Fatalf("lonely shares with %v", got)
	}
}

package chat_test

import (
	"encoding/json"
	"testing"

	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
)

// TestChat_UnreadDirect: the digest's question (talim.chat.v1.unread-direct) lists
// only direct rooms with unread messages, only the asker's, and refuses bad ids.
func TestChat_UnreadDirect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("g", chatv1.RoomType_ROOM_TYPE_GROUP, "gina", "hal")
	gina := h.user("gina")
	h.user("hal")
	var r struct {
		Room struct {
			RoomID string `json:"roomId"`
		}
	}
	gina.ok("open-direct-room", map[string]any{"userId": "hal"}, &r)
	gina.send(r.Room.RoomID, "one", "m1")
	gina.send(r.Room.RoomID, "two", "m2")
	gina.send("g", "group message", "m3")
	type room struct {
		RoomID string `json:"roomId"`
		Unread int64  `json:"unread"`
	}
	ask := func(data string) ([]room, string) {
		m, err := h.nc.Request("talim.chat.v1.unread-direct", []byte(data), 5e9)
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			Rooms []room `json:"rooms"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			t.Fatal(err)
		}
		return resp.Rooms, resp.Error
	}
	got, e := ask(`{"userId":"hal"}`)
	if e != "" || len(got) != 1 || got[0].RoomID != r.Room.RoomID || got[0].Unread != 2 {
		t.Fatalf("hal: %+v %q", got, e)
	}
	if got, e := ask(`{"userId":"gina"}`); e != "" || len(got) != 0 {
		t.Fatalf("gina (sender, nothing unread): %+v %q", got, e)
	}
	for _, bad := range []string{`{"userId":{"$gt":""}}`, `{"userId":""}`, `[]`, `x`} {
		if got, e := ask(bad); e == "" || len(got) != 0 {
			t.Fatalf("%s: %+v %q", bad, got, e)
		}
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	"github.com/talim/realtime/services/edge/edgetest"
	"github.com/talim/realtime/services/talim"
)

type chatMessage struct {
	ID       string `json:"id"`
	RoomID   string `json:"roomId"`
	Seq      int64  `json:"seq"`
	SenderID string `json:"senderId"`
	Content  string `json:"content"`
}

type chatHistory struct {
	RoomID   string        `json:"roomId"`
	Messages []chatMessage `json:"messages"`
	HasMore  bool          `json:"hasMore"`
}

const chatWait = 5 * time.Second

func chatRoom(t *testing.T, st *talim.Stack, id string, members ...string) {
	t.Helper()
	conn, err := st.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := &chatv1.CreateRoomRequest{RoomId: id, Name: id, Type: chatv1.RoomType_ROOM_TYPE_GROUP}
	for _, m := range members {
		req.Members = append(req.Members, &chatv1.Member{UserId: m, Role: chatv1.Role_ROLE_MEMBER})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := chatv1.NewChatAdminServiceClient(conn).CreateRoom(ctx, req); err != nil {
		t.Fatalf("create room: %v", err)
	}
}

func chatJoin(t *testing.T, c *edgetest.Client, data map[string]any) chatHistory {
	t.Helper()
	if _, perr := c.Request("join-chat-room", data); perr != nil {
		t.Fatalf("join: %v", perr)
	}
	var h chatHistory
	if err := json.Unmarshal(c.Expect(t, "chat-room-history", chatWait), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func chatSend(t *testing.T, c *edgetest.Client, room, content, clientMsgID string) chatMessage {
	t.Helper()
	data, perr := c.Request("send-chat-message", map[string]any{"roomId": room, "content": content, "clientMsgId": clientMsgID})
	if perr != nil {
		t.Fatalf("send: %v", perr)
	}
	var ack struct{ Message chatMessage }
	if err := json.Unmarshal(data, &ack); err != nil {
		t.Fatal(err)
	}
	return ack.Message
}

func expectChatMessage(t *testing.T, c *edgetest.Client, event string, wantSeq int64) {
	t.Helper()
	var ev struct {
		Message     chatMessage `json:"message"`
		LastSeq     int64       `json:"lastSeq"`
		LastMessage chatMessage `json:"lastMessage"`
	}
	if err := json.Unmarshal(c.Expect(t, event, chatWait), &ev); err != nil {
		t.Fatal(err)
	}
	if seq := max(ev.Message.Seq, ev.LastSeq); seq != wantSeq {
		t.Fatalf("%s seq %d, want %d", event, seq, wantSeq)
	}
}

func TestChatE2E(t *testing.T) {
	st := newStack(t, nil)
	dial := func(user string) *edgetest.Client { return edgetest.Dial(t, st.WSURL, token(t, st, user)) }

	t.Run("TwoUsersChat", func(t *testing.T) {
		chatRoom(t, st, "e2e-two", "ann", "ben")
		ann, ben := dial("ann"), dial("ben")
		chatJoin(t, ann, map[string]any{"roomId": "e2e-two"})
		chatJoin(t, ben, map[string]any{"roomId": "e2e-two"})
		m := chatSend(t, ann, "e2e-two", "hello ben", "a1")
		if m.Seq != 1 || m.SenderID != "ann" {
			t.Fatalf("ack %+v", m)
		}
		expectChatMessage(t, ben, "chat-message", 1)
		expectChatMessage(t, ann, "chat-message", 1)
		chatSend(t, ben, "e2e-two", "hi ann", "b1")
		expectChatMessage(t, ann, "chat-message", 2)
	})

	t.Run("ThreeConnectionsOfOneUser", func(t *testing.T) {
		chatRoom(t, st, "e2e-three", "cat", "dov")
		cat := dial("cat")
		joined1, joined2, other := dial("dov"), dial("dov"), dial("dov")
		chatJoin(t, cat, map[string]any{"roomId": "e2e-three"})
		chatJoin(t, joined1, map[string]any{"roomId": "e2e-three"})
		chatJoin(t, joined2, map[string]any{"roomId": "e2e-three"})
		chatSend(t, cat, "e2e-three", "to every connection", "c1")
		expectChatMessage(t, joined1, "chat-message", 1)
		expectChatMessage(t, joined2, "chat-message", 1)
		expectChatMessage(t, other, "room-updated", 1)
		other.ExpectNone(t, "chat-message", 300*time.Millisecond)
	})

	t.Run("RecoveryAfterDisconnect", func(t *testing.T) {
		chatRoom(t, st, "e2e-recover", "eli", "fay")
		eli, fay := dial("eli"), dial("fay")
		chatJoin(t, eli, map[string]any{"roomId": "e2e-recover"})
		chatJoin(t, fay, map[string]any{"roomId": "e2e-recover"})
		chatSend(t, eli, "e2e-recover", "first", "e1")
		expectChatMessage(t, fay, "chat-message", 1)
		fay.Close()
		for i := 2; i <= 4; i++ {
			chatSend(t, eli, "e2e-recover", fmt.Sprintf("while away %d", i), fmt.Sprintf("e%d", i))
		}
		fay = dial("fay")
		h := chatJoin(t, fay, map[string]any{"roomId": "e2e-recover", "sinceSeq": 1})
		if len(h.Messages) != 3 || h.Messages[0].Seq != 2 || h.Messages[2].Seq != 4 || h.HasMore {
			t.Fatalf("recovered %+v", h)
		}
		chatSend(t, eli, "e2e-recover", "live again", "e5")
		expectChatMessage(t, fay, "chat-message", 5)
	})

	t.Run("RemovedMemberStopsAtOnce", func(t *testing.T) {
		chatRoom(t, st, "e2e-remove", "gil", "hal")
		gil, hal := dial("gil"), dial("hal")
		chatJoin(t, gil, map[string]any{"roomId": "e2e-remove"})
		chatJoin(t, hal, map[string]any{"roomId": "e2e-remove"})
		chatSend(t, gil, "e2e-remove", "before", "g1")
		expectChatMessage(t, hal, "chat-message", 1)
		expectChatMessage(t, gil, "chat-message", 1)
		conn, err := st.Dial()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := chatv1.NewChatAdminServiceClient(conn).RemoveMembers(ctx, &chatv1.RemoveMembersRequest{RoomId: "e2e-remove", UserIds: []string{"hal"}}); err != nil {
			t.Fatal(err)
		}
		var ev struct{ RoomID, Change string }
		if err := json.Unmarshal(hal.Expect(t, "room-membership", chatWait), &ev); err != nil || ev.Change != "removed" {
			t.Fatalf("membership event %+v %v", ev, err)
		}
		chatSend(t, gil, "e2e-remove", "after", "g2")
		expectChatMessage(t, gil, "chat-message", 2)
		hal.ExpectNone(t, "chat-message", 300*time.Millisecond)
		if _, perr := hal.Request("send-chat-message", map[string]any{"roomId": "e2e-remove", "content": "x", "clientMsgId": "h1"}); perr == nil || perr.Code != "forbidden" {
			t.Fatalf("removed member send: %v", perr)
		}
	})
}

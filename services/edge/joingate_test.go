package edge_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge/edgetest"
)

// gatedJoinResponder answers join-chat-room like chat when messages are stored
// while the join is in flight: it publishes room events to the user first (seq 5,
// which the history holds, seq 6, which it does not, and a typing event), then
// answers with lastSeq 5 and the history. refuse answers forbidden instead.
func gatedJoinResponder(t *testing.T, h *harness, user string, refuse bool) {
	edgetest.NewResponder(t, h.nc, "chat", func(cmd *edgev1.Command) *edgev1.Reply {
		if cmd.GetEvent() != "join-chat-room" {
			return edgetest.Echo(cmd)
		}
		var d struct{ RoomID string }
		_ = json.Unmarshal(cmd.GetData(), &d)
		for _, out := range []*edgev1.Outbound{
			roomEvent(d.RoomID, 5), roomEvent(d.RoomID, 6),
			{Event: "typing", Data: []byte(`{"isTyping":true}`), RoomId: d.RoomID},
		} {
			b, _ := proto.Marshal(out)
			_ = h.nc.Publish(subject.User(user), b)
		}
		_ = h.nc.Flush()
		if refuse {
			return edgetest.Fail("forbidden", "not a member")
		}
		return &edgev1.Reply{
			Data:      []byte(fmt.Sprintf(`{"roomId":%q,"lastSeq":5,"lastReadSeq":0,"unread":5}`, d.RoomID)),
			JoinRooms: []string{d.RoomID},
			Frames:    []*edgev1.Frame{{Event: "chat-room-history", Data: []byte(fmt.Sprintf(`{"roomId":%q,"messages":[],"hasMore":false}`, d.RoomID))}},
		}
	})
}

// nextFrames reads n frames in the order the edge wrote them.
func nextFrames(t *testing.T, c *edgetest.Client, n int) []edgetest.Frame {
	t.Helper()
	var got []edgetest.Frame
	for range n {
		f, err := c.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d frames: %v", len(got), err)
		}
		got = append(got, f)
	}
	return got
}

// A message stored between the join's history read and its answer reaches the
// connection after the ack and the history, as a chat-message, not as a badge;
// one the history already covers is not sent twice.
func TestJoinGate_EventsDuringJoinFollowTheHistory(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	gatedJoinResponder(t, h, "u1", false)
	c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour))
	for i := range 5 { // a few rounds: the race is in the edge's scheduling
		room := fmt.Sprintf("r%d", i)
		if err := c.Send(fmt.Sprintf(`{"event":"join-chat-room","id":%d,"data":{"roomId":%q}}`, i+1, room)); err != nil {
			t.Fatal(err)
		}
		got := nextFrames(t, c, 4)
		var events []string
		for _, f := range got {
			events = append(events, f.Event)
		}
		if got[0].Event != "ack" || got[1].Event != "chat-room-history" || got[2].Event != "chat-message" || got[3].Event != "typing" {
			t.Fatalf("round %d: frames %v, want ack, chat-room-history, chat-message, typing", i, events)
		}
		var m struct{ Message struct{ Seq int } }
		if err := json.Unmarshal(got[2].Data, &m); err != nil || m.Message.Seq != 6 {
			t.Fatalf("round %d: held message %s, want seq 6 (seq 5 is in the history)", i, got[2].Data)
		}
	}
	c.ExpectNone(t, "room-updated", 100*time.Millisecond)
}

// A refused join releases what it held as the events of a room not joined.
func TestJoinGate_RefusedJoinReleasesBadges(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	gatedJoinResponder(t, h, "u1", true)
	c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour))
	if _, perr := c.Request("join-chat-room", map[string]any{"roomId": "r1"}); perr == nil || perr.Code != "forbidden" {
		t.Fatalf("join: %v, want forbidden", perr)
	}
	c.Expect(t, "room-updated", 5*time.Second)
	c.Expect(t, "room-updated", 5*time.Second)
	c.ExpectNone(t, "chat-message", 100*time.Millisecond)
	c.ExpectNone(t, "typing", 50*time.Millisecond)
}

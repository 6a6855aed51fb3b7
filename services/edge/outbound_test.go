package edge_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

// joinResponder makes join-chat-room join data.roomId and leave-chat-room leave it.
func joinResponder(t *testing.T, h *harness) {
	edgetest.NewResponder(t, h.nc, "chat", func(cmd *edgev1.Command) *edgev1.Reply {
		var d struct{ RoomID string }
		_ = json.Unmarshal(cmd.GetData(), &d)
		switch cmd.GetEvent() {
		case "join-chat-room":
			return &edgev1.Reply{Data: cmd.GetData(), JoinRooms: []string{d.RoomID}}
		case "leave-chat-room":
			return &edgev1.Reply{Data: cmd.GetData(), LeaveRooms: []string{d.RoomID}}
		}
		return edgetest.Echo(cmd)
	})
}

func roomEvent(room string, seq int) *edgev1.Outbound {
	return &edgev1.Outbound{
		Event: "chat-message", Data: []byte(fmt.Sprintf(`{"message":{"roomId":%q,"seq":%d}}`, room, seq)),
		RoomId: room, Seq: int64(seq),
		AltEvent: "room-updated", AltData: []byte(fmt.Sprintf(`{"roomId":%q,"lastSeq":%d}`, room, seq)),
	}
}

func TestOutbound_JoinedRoomFiltering(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	joinResponder(t, h)
	tok := h.token("u1", time.Hour)
	a := edgetest.Dial(t, h.wsURL(), tok)
	b := edgetest.Dial(t, h.wsURL(), tok)
	if _, perr := a.Request("join-chat-room", map[string]any{"roomId": "r1"}); perr != nil {
		t.Fatal(perr)
	}

	edgetest.PublishOutbound(t, h.nc, "u1", roomEvent("r1", 1))
	a.Expect(t, "chat-message", 5*time.Second)
	b.Expect(t, "room-updated", 5*time.Second)
	a.ExpectNone(t, "room-updated", 100*time.Millisecond)
	b.ExpectNone(t, "chat-message", 100*time.Millisecond)

	// Events without a room go to every connection; only/except select connections.
	edgetest.PublishOutbound(t, h.nc, "u1", edgetest.Event("notification", map[string]any{"n": 1}))
	a.Expect(t, "notification", 5*time.Second)
	b.Expect(t, "notification", 5*time.Second)
	out := edgetest.Event("notification-read", map[string]any{"all": true})
	out.ExceptConnection = a.Connected.ConnectionID
	edgetest.PublishOutbound(t, h.nc, "u1", out)
	b.Expect(t, "notification-read", 5*time.Second)
	out = edgetest.Event("only-a", map[string]any{})
	out.OnlyConnections = []string{a.Connected.ConnectionID}
	edgetest.PublishOutbound(t, h.nc, "u1", out)
	a.Expect(t, "only-a", 5*time.Second)
	a.ExpectNone(t, "notification-read", 100*time.Millisecond)
	b.ExpectNone(t, "only-a", 100*time.Millisecond)

	// A room event without alt goes to joined connections only.
	edgetest.PublishOutbound(t, h.nc, "u1", &edgev1.Outbound{Event: "typing", Data: []byte(`{}`), RoomId: "r1"})
	a.Expect(t, "typing", 5*time.Second)
	b.ExpectNone(t, "typing", 100*time.Millisecond)

	// remove_rooms applies before the delivery in the same message.
	out = roomEvent("r1", 2)
	out.Control = &edgev1.Control{RemoveRooms: []string{"r1"}}
	edgetest.PublishOutbound(t, h.nc, "u1", out)
	a.Expect(t, "room-updated", 5*time.Second)
	b.Expect(t, "room-updated", 5*time.Second)
	a.ExpectNone(t, "chat-message", 100*time.Millisecond)

	// Re-join, then leave-chat-room stops room events.
	if _, perr := a.Request("join-chat-room", map[string]any{"roomId": "r1"}); perr != nil {
		t.Fatal(perr)
	}
	edgetest.PublishOutbound(t, h.nc, "u1", roomEvent("r1", 3))
	a.Expect(t, "chat-message", 5*time.Second)
	if _, perr := a.Request("leave-chat-room", map[string]any{"roomId": "r1"}); perr != nil {
		t.Fatal(perr)
	}
	edgetest.PublishOutbound(t, h.nc, "u1", roomEvent("r1", 4))
	a.Expect(t, "room-updated", 5*time.Second)
}

func TestOutbound_ControlClose(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	tok := h.token("u1", time.Hour)
	a := edgetest.Dial(t, h.wsURL(), tok)
	b := edgetest.Dial(t, h.wsURL(), tok)
	other := edgetest.Dial(t, h.wsURL(), h.token("u2", time.Hour))
	edgetest.PublishOutbound(t, h.nc, "u1", &edgev1.Outbound{Control: &edgev1.Control{CloseCode: 4001, CloseReason: "revoked"}})
	a.ExpectClose(t, 4001, 5*time.Second)
	b.ExpectClose(t, 4001, 5*time.Second)
	if _, perr := other.Request("ping", nil); perr != nil {
		t.Fatalf("other user affected: %v", perr)
	}
}

// userSubs counts the NATS server's subscriptions that would receive user's subject.
func userSubs(t *testing.T, ns *natsserver.Server, user string) int {
	t.Helper()
	sz, err := ns.Subsz(&natsserver.SubszOptions{Subscriptions: true, Test: subject.User(user), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(sz.Subs)
}

func TestOutbound_OneSubscriptionPerUser(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	tok := h.token("u1", time.Hour)
	var cs []*edgetest.Client
	for i := 0; i < 3; i++ {
		cs = append(cs, edgetest.Dial(t, h.wsURL(), tok))
	}
	if n := userSubs(t, h.ns, "u1"); n != 1 {
		t.Fatalf("NATS subscriptions for u1 with 3 connections: %d", n)
	}
	if n := edge.UserSubscriptions(h.edge); n != 1 {
		t.Fatalf("edge user subscriptions: %d", n)
	}
	edgetest.PublishOutbound(t, h.nc, "u1", edgetest.Event("hello", map[string]any{}))
	for _, c := range cs {
		c.Expect(t, "hello", 5*time.Second)
	}
	cs[0].Close()
	cs[1].Close()
	eventually(t, 5*time.Second, func() bool { return edge.UserSubscriptions(h.edge) == 1 }, "still one subscription")
	if n := userSubs(t, h.ns, "u1"); n != 1 {
		t.Fatalf("subscriptions with 1 connection left: %d", n)
	}
	cs[2].Close()
	eventually(t, 5*time.Second, func() bool { return userSubs(t, h.ns, "u1") == 0 }, "unsubscribed after the last close")
	if n := edge.UserSubscriptions(h.edge); n != 0 {
		t.Fatalf("edge user subscriptions after last close: %d", n)
	}
}

func TestOutbound_SlowConsumer(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) {
		c.QueueBytes = 128 << 10
		c.QueueFrames = 256
		c.WriteTimeout = 10 * time.Second
	})
	tok := h.token("u1", time.Hour)
	slow := edgetest.Dial(t, h.wsURL(), tok, edgetest.Paused())
	fast := edgetest.Dial(t, h.wsURL(), tok)
	pad := strings.Repeat("x", 4000)
	seq := 0
	deadline := time.Now().Add(20 * time.Second)
	for edge.SlowConsumerCloses(h.edge) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slow consumer not detected after %d frames", seq)
		}
		for i := 0; i < 10; i++ {
			seq++
			edgetest.PublishOutbound(t, h.nc, "u1", edgetest.Event("tick", map[string]any{"seq": seq, "pad": pad}))
		}
		// The fast client keeps up and sees every frame in order.
		for want := seq - 9; want <= seq; want++ {
			var d struct{ Seq int }
			_ = json.Unmarshal(fast.Expect(t, "tick", 5*time.Second), &d)
			if d.Seq != want {
				t.Fatalf("fast client got seq %d, want %d", d.Seq, want)
			}
		}
	}
	slow.Resume()
	slow.ExpectClose(t, 4008, 15*time.Second)
	if _, perr := fast.Request("ping", nil); perr != nil {
		t.Fatalf("fast client affected: %v", perr)
	}
}

// A batch (chat's group delivery) is applied item by item, in order, with the
// same rule as single events: joined connections get chat-message, the user's
// others room-updated.
func TestOutbound_BatchAppliedInOrder(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	joinResponder(t, h)
	tok := h.token("u1", time.Hour)
	a := edgetest.Dial(t, h.wsURL(), tok)
	b := edgetest.Dial(t, h.wsURL(), tok)
	if _, perr := a.Request("join-chat-room", map[string]any{"roomId": "r1"}); perr != nil {
		t.Fatal(perr)
	}
	batch := &edgev1.Outbound{}
	for seq := 1; seq <= 5; seq++ {
		batch.Batch = append(batch.Batch, roomEvent("r1", seq))
	}
	edgetest.PublishOutbound(t, h.nc, "u1", batch)
	for seq := 1; seq <= 5; seq++ {
		var got struct {
			Message struct{ Seq int } `json:"message"`
		}
		if err := json.Unmarshal(a.Expect(t, "chat-message", 5*time.Second), &got); err != nil || got.Message.Seq != seq {
			t.Fatalf("chat-message %d: got seq %d (%v)", seq, got.Message.Seq, err)
		}
		var alt struct{ LastSeq int }
		if err := json.Unmarshal(b.Expect(t, "room-updated", 5*time.Second), &alt); err != nil || alt.LastSeq != seq {
			t.Fatalf("room-updated %d: got %d (%v)", seq, alt.LastSeq, err)
		}
	}
	a.ExpectNone(t, "room-updated", 100*time.Millisecond)
}

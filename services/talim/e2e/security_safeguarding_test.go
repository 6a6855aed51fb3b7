package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	sgv1 "github.com/talim/realtime/proto/talim/safeguarding/v1"
	"github.com/talim/realtime/services/edge/edgetest"
)

// TestSecurity_Safeguarding_ThroughEdge: the messaging policy rows, reports,
// blocks and held messages through the real edge and chat's gRPC
// (docs/protocol.md "Safeguarding").
func TestSecurity_Safeguarding_ThroughEdge(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(nil)
	url := wsURL(b.Edge)
	sg := sgv1.NewSafeguardingServiceClient(rg.grpcConn(b.Chat.GRPCAddr()))
	ctx, cancel := context.WithTimeout(context.Background(), rigWait)
	defer cancel()

	rolesColl := mongoClient(t, rg.MongoURI).Database(rg.DB).Collection("user_roles")
	dial := func(user string, roles ...string) *edgetest.Client {
		c := edgetest.Dial(t, url, rg.token(user, roles...))
		t.Cleanup(c.Close)
		if _, perr := c.Request("list-rooms", nil); perr != nil { // chat learns the token's roles
			t.Fatalf("%s list-rooms: %v", user, perr)
		}
		deadline := time.Now().Add(rigWait) // recorded in the background: wait for it
		for rolesColl.FindOne(ctx, bson.D{{Key: "_id", Value: user}}).Err() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("roles of %s never recorded", user)
			}
			time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
		}
		return c
	}
	t1, s1, s2, g1 := dial("t1", "teacher"), dial("s1", "student"), dial("s2", "student"), dial("g1", "guardian")
	dsl := dial("dsl", "safeguarding")
	clients := map[string]*edgetest.Client{"t1": t1, "s1": s1, "s2": s2, "g1": g1}
	open := func(from, to string) (string, *edgetest.ProtoError) {
		data, perr := clients[from].Request("open-direct-room", map[string]any{"userId": to})
		var r struct{ Room struct{ RoomID string } }
		_ = json.Unmarshal(data, &r)
		return r.Room.RoomID, perr
	}
	for _, row := range []struct {
		from, to string
		ok       bool
	}{{"s1", "s2", false}, {"t1", "s1", true}, {"s1", "t1", true}, {"g1", "t1", true}, {"g1", "s1", false}} {
		_, perr := open(row.from, row.to)
		if row.ok != (perr == nil) || (perr != nil && perr.Code != "forbidden") {
			t.Errorf("open-direct-room %s→%s: %v, want allowed=%v", row.from, row.to, perr, row.ok)
		}
	}

	// The policy through gRPC: leads and student↔student on; the next command sees it.
	cur, err := sg.GetPolicy(ctx, &sgv1.GetPolicyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p := cur.GetPolicy()
	p.Leads, p.DirectPairs = []string{"dsl"}, append(p.DirectPairs, "student:student")
	if _, err := sg.SetPolicy(ctx, &sgv1.SetPolicyRequest{Policy: p, ExpectedVersion: p.GetVersion(), Actor: "dsl"}); err != nil {
		t.Fatal(err)
	}
	room, perr := open("s1", "s2")
	if perr != nil {
		t.Fatalf("after the change: %v", perr)
	}
	m := chatSend(t, s2, room, "hello", "m1")

	// Someone else's room: no report. A member's report lands in the queue.
	if _, perr := t1.Request("report-message", map[string]any{"roomId": room, "messageId": m.ID, "reason": "spam"}); perr == nil || perr.Code != "forbidden" {
		t.Errorf("outsider report: %v", perr)
	}
	if _, perr := s1.Request("report-message", map[string]any{"roomId": room, "messageId": m.ID, "reason": "nonsense"}); perr == nil || perr.Code != "bad_request" {
		t.Errorf("unknown reason: %v", perr)
	}
	if _, perr := s1.Request("report-message", map[string]any{"roomId": room, "messageId": m.ID, "reason": "bullying"}); perr != nil {
		t.Fatal(perr)
	}
	q, err := sg.ListReports(ctx, &sgv1.ListReportsRequest{})
	if err != nil || len(q.GetReports()) != 1 {
		t.Fatalf("queue %v %v", q, err)
	}

	// Block: s1 blocks s2, who can no longer send in their direct room.
	if _, perr := s1.Request("block-user", map[string]any{"userId": "s2"}); perr != nil {
		t.Fatal(perr)
	}
	if _, perr := s2.Request("send-chat-message", map[string]any{"roomId": room, "content": "x", "clientMsgId": "m2"}); perr == nil || perr.Code != "forbidden" {
		t.Errorf("blocked send: %v", perr)
	}
	if _, perr := s1.Request("unblock-user", map[string]any{"userId": "s2"}); perr != nil {
		t.Fatal(perr)
	}

	// Hold: pending for the sender, nothing for the room until the lead releases it.
	if _, perr := s1.Request("join-chat-room", map[string]any{"roomId": room}); perr != nil {
		t.Fatal(perr)
	}
	s1.Expect(t, "chat-room-history", chatWait)
	data, perr := s2.Request("send-chat-message", map[string]any{"roomId": room, "content": "it's our little secret", "clientMsgId": "h1"})
	if perr != nil || !strings.Contains(string(data), `"held"`) {
		t.Fatalf("hold: %s %v", data, perr)
	}
	var held struct{ Held struct{ HeldID string } }
	_ = json.Unmarshal(data, &held)
	s1.ExpectNone(t, "chat-message", 300*time.Millisecond)
	if _, perr := t1.Request("release-held-message", map[string]any{"heldId": held.Held.HeldID, "release": true}); perr == nil || perr.Code != "forbidden" {
		t.Errorf("non-lead release: %v", perr)
	}
	if _, perr := dsl.Request("release-held-message", map[string]any{"heldId": held.Held.HeldID, "release": true}); perr != nil {
		t.Fatal(perr)
	}
	if got := s1.Expect(t, "chat-message", chatWait); !strings.Contains(string(got), "little secret") {
		t.Fatalf("released: %s", got)
	}
	s2.Expect(t, "held-message-resolved", chatWait)
}

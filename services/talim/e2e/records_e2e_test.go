package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/talim/realtime/pkg/devstack/testkit"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	sgv1 "github.com/talim/realtime/proto/talim/safeguarding/v1"
	"github.com/talim/realtime/services/edge/edgetest"
	"github.com/talim/realtime/services/talim"
)

// TestRecordsE2E_OversightExportErase runs issue 19's records through the real
// edge and gRPC with every service: a lead's oversight read of edited and
// deleted messages (and a pupil refused), then export and erasure of a user
// with data in chat, notification and presence, a legal hold winning first.
func TestRecordsE2E_OversightExportErase(t *testing.T) {
	t.Parallel()
	st := newStack(t, nil)
	s1 := edgetest.Dial(t, st.WSURL, token(t, st, "s1"))
	t1 := edgetest.Dial(t, st.WSURL, token(t, st, "t1", "teacher"))
	lead := edgetest.Dial(t, st.WSURL, token(t, st, "dsl", "safeguarding"))
	req := func(c *edgetest.Client, event string, data any) json.RawMessage {
		t.Helper()
		b, perr := c.Request(event, data)
		if perr != nil {
			t.Fatalf("%s %v: %v", event, data, perr)
		}
		return b
	}
	var sent struct {
		Message struct {
			ID string `json:"id"`
		} `json:"message"`
	}
	req(s1, "join-chat-room", map[string]any{"roomId": "class-7a"})
	_ = json.Unmarshal(req(s1, "send-chat-message", map[string]any{"roomId": "class-7a", "content": "meet me after school", "clientMsgId": "r1"}), &sent)
	req(s1, "edit-chat-message", map[string]any{"roomId": "class-7a", "messageId": sent.Message.ID, "content": "see you in class"})
	_ = json.Unmarshal(req(s1, "send-chat-message", map[string]any{"roomId": "class-7a", "content": "my number is 0700 000000", "clientMsgId": "r2"}), &sent)
	req(t1, "delete-chat-message", map[string]any{"roomId": "class-7a", "messageId": sent.Message.ID})

	// Oversight through the edge: the lead sees the originals; a pupil and a teacher are refused.
	page := string(req(lead, "oversight-room-history", map[string]any{"roomId": "class-7a", "reason": "concern raised by a parent"}))
	for _, want := range []string{"meet me after school", "see you in class", "my number is 0700 000000", `"change":"delete"`, `"replacedBy":"t1"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("oversight page lacks %q: %s", want, page)
		}
	}
	for _, c := range []*edgetest.Client{s1, t1} {
		if _, perr := c.Request("oversight-room-history", map[string]any{"roomId": "class-7a", "reason": "curious"}); perr == nil || perr.Code != "forbidden" {
			t.Fatalf("non-lead oversight: %v, want forbidden", perr)
		}
	}
	if _, perr := lead.Request("oversight-room-history", map[string]any{"roomId": "class-7a"}); perr == nil || perr.Code != "bad_request" {
		t.Fatalf("oversight without a reason: %v, want bad_request", perr)
	}
	if _, perr := lead.Request("oversight-room-history", map[string]any{"roomId": "class-7a", "reason": map[string]any{"$gt": ""}}); perr == nil || perr.Code != "bad_request" {
		t.Fatalf("oversight with an operator reason: %v, want bad_request", perr)
	}

	// s1's data in the other services: a notification and a chosen status.
	conn, err := st.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := notificationv1.NewNotificationServiceClient(conn).Send(ctx, &notificationv1.SendRequest{
		Recipients: []string{"s1"}, Category: "homework", Title: "Homework", Body: "Chapter 3", IdempotencyKey: "rec-1"}); err != nil {
		t.Fatal(err)
	}
	s1.Expect(t, "notification", 10*time.Second)
	req(s1, "set-status", map[string]any{"status": "away"})
	db := mongoClient(t, st.MongoURI).Database(st.Database)
	count := func(coll string, filter bson.D) int64 {
		t.Helper()
		n, err := db.Collection(coll).CountDocuments(ctx, filter)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return count("presence", bson.D{{Key: "_id", Value: "s1"}}) == 1 }, "presence document of s1")

	rc := sgv1.NewRecordsServiceClient(conn)
	dpo := &sgv1.Actor{UserId: "dpo"}
	kinds := map[string]int{}
	stream, err := rc.ExportUser(ctx, &sgv1.ExportUserRequest{Actor: dpo, UserId: "s1", Reason: "subject access request"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range chunk.GetLines() {
			var line struct{ Kind string }
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("line %s: %v", l, err)
			}
			kinds[line.Kind]++
		}
	}
	if kinds["message"] != 2 || kinds["membership"] != 3 || kinds["notification"] != 1 || kinds["presence"] != 1 {
		t.Fatalf("export kinds = %v", kinds)
	}

	// A legal hold on s1 wins over erasure; without it everything goes.
	if _, err := rc.SetLegalHold(ctx, &sgv1.SetLegalHoldRequest{Actor: dpo, Scope: sgv1.HoldScope_HOLD_SCOPE_USER, Id: "s1", Reason: "police"}); err != nil {
		t.Fatal(err)
	}
	er, err := rc.EraseUser(ctx, &sgv1.EraseUserRequest{Actor: dpo, UserId: "s1", Reason: "left the school"})
	if err != nil || len(er.GetRemoved()) != 0 || er.GetKept()[0].GetWhat() != "everything" {
		t.Fatalf("erase under hold = %v, %v", er, err)
	}
	if count("notifications", bson.D{{Key: "userId", Value: "s1"}}) != 1 {
		t.Fatal("hold did not keep the notification")
	}
	if _, err := rc.ReleaseLegalHold(ctx, &sgv1.ReleaseLegalHoldRequest{Actor: dpo, Scope: sgv1.HoldScope_HOLD_SCOPE_USER, Id: "s1", Reason: "closed"}); err != nil {
		t.Fatal(err)
	}
	er, err = rc.EraseUser(ctx, &sgv1.EraseUserRequest{Actor: dpo, UserId: "s1", Reason: "left the school"})
	if err != nil {
		t.Fatal(err)
	}
	rm := er.GetRemoved()
	if rm["messages"] != 2 || rm["revisions"] != 2 || rm["memberships"] != 3 || rm["notifications"] != 1 || rm["presence"] != 1 {
		t.Fatalf("removed = %v", rm)
	}
	if n := count("notifications", bson.D{{Key: "userId", Value: "s1"}}); n != 0 {
		t.Fatalf("%d notifications of s1 left", n)
	}
	if n := count("revisions", bson.D{{Key: "senderId", Value: "s1"}}); n != 0 {
		t.Fatalf("%d revisions of s1 left", n)
	}
	if n := count("memberships", bson.D{{Key: "userId", Value: "s1"}}); n != 0 {
		t.Fatalf("%d memberships of s1 left", n)
	}
	// The lead now sees tombstones, seq unchanged.
	page = string(req(lead, "oversight-room-history", map[string]any{"roomId": "class-7a", "reason": "after erasure"}))
	if strings.Contains(page, "meet me") || strings.Contains(page, "0700") || !strings.Contains(page, `"redacted":"erasure"`) || !strings.Contains(page, `"seq":2`) {
		t.Fatalf("page after erasure: %s", page)
	}

	// The audit log holds every step and verifies, also from the command line.
	var out, errOut bytes.Buffer
	if code := talim.Main([]string{"audit", "verify", "--addr", st.GRPCAddr, "--token", st.ServiceToken}, &out, &errOut); code != 0 {
		t.Fatalf("talim audit verify = %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.HasPrefix(out.String(), "OK: ") {
		t.Fatalf("talim audit verify: %s", out.String())
	}
	// Tampering is reported by the command too.
	if _, err := db.Collection("audit").UpdateOne(ctx, bson.D{{Key: "seq", Value: int64(2)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "reason", Value: "routine"}}}}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := talim.Main([]string{"audit", "verify", "--addr", st.GRPCAddr, "--token", st.ServiceToken}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "entry 2") {
		t.Fatalf("talim audit verify after tampering = %d: %s", code, out.String())
	}
}

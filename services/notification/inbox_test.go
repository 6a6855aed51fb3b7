package notification_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/talim/realtime/pkg/devstack/testkit"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/notification"
	"github.com/talim/realtime/services/notification/internal/store"
)

func TestListNotifications_PagesNewestFirst(t *testing.T) {
	t.Parallel()
	e := start(t)
	var want []string
	for i := range 5 {
		e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Title: fmt.Sprintf("n%d", i), IdempotencyKey: fmt.Sprintf("k%d", i)})
		want = append([]string{fmt.Sprintf("n%d", i)}, want...)
	}
	var got []string
	before := ""
	for page := 0; ; page++ {
		req := map[string]any{"limit": 2}
		if before != "" {
			req["before"] = before
		}
		lr := e.list(t, "u1", req)
		if lr.Unread != 5 {
			t.Fatalf("unread = %d", lr.Unread)
		}
		for _, n := range lr.Notifications {
			got = append(got, n.Title)
		}
		if !lr.HasMore {
			break
		}
		before = lr.Notifications[len(lr.Notifications)-1].ID
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("titles = %v, want %v", got, want)
	}
	errCode(t, e.cmd(t, "u1", "c1", "list-notifications", `{"limit":500}`), "bad_request")
	errCode(t, e.cmd(t, "u1", "c1", "list-notifications", `{"before":"n_unknown"}`), "not_found")
}

func TestMarkRead_SyncsOtherConnections(t *testing.T) {
	t.Parallel()
	e := start(t)
	r1 := e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Title: "a", IdempotencyKey: "a"})
	_ = r1
	e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Title: "b", IdempotencyKey: "b"})
	e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Title: "c", IdempotencyKey: "c"})
	lr := e.list(t, "u1", nil)
	sub := e.subscribe(t, "u1")

	var ack struct {
		Unread int64 `json:"unread"`
	}
	id := lr.Notifications[0].ID
	ok(t, e.cmd(t, "u1", "conn-A", "mark-notification-read", map[string]any{"ids": []string{id, id}}), &ack)
	if ack.Unread != 2 {
		t.Fatalf("unread = %d", ack.Unread)
	}
	out := sub.next(t)
	var ev struct {
		IDs    []string `json:"ids"`
		All    bool     `json:"all"`
		Unread int64    `json:"unread"`
	}
	if err := json.Unmarshal(out.GetData(), &ev); err != nil {
		t.Fatal(err)
	}
	if out.GetEvent() != "notification-read" || out.GetExceptConnection() != "conn-A" || len(ev.IDs) != 1 || ev.IDs[0] != id || ev.Unread != 2 {
		t.Fatalf("sync = %v %+v", out, ev)
	}
	if lr := e.list(t, "u1", map[string]any{"unreadOnly": true}); len(lr.Notifications) != 2 {
		t.Fatalf("unread only = %+v", lr)
	}
	if got := e.list(t, "u1", nil); got.Notifications[0].ReadAt == nil || !timeRE.MatchString(*got.Notifications[0].ReadAt) {
		t.Fatalf("readAt = %v", got.Notifications[0].ReadAt)
	}

	ok(t, e.cmd(t, "u1", "conn-B", "mark-notification-read", map[string]any{"all": true}), &ack)
	if ack.Unread != 0 {
		t.Fatalf("unread after all = %d", ack.Unread)
	}
	out = sub.next(t)
	ev.IDs = nil
	_ = json.Unmarshal(out.GetData(), &ev)
	if out.GetExceptConnection() != "conn-B" || !ev.All || ev.Unread != 0 || ev.IDs != nil {
		t.Fatalf("sync all = %v %s", out, out.GetData())
	}
	for _, bad := range []string{`{}`, `{"ids":[]}`, `{"ids":["x"],"all":true}`, `{"ids":[""]}`} {
		errCode(t, e.cmd(t, "u1", "c", "mark-notification-read", bad), "bad_request")
	}
}

func TestAck_TrackedByAckStatus(t *testing.T) {
	t.Parallel()
	e := start(t)
	resp := e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1", "u2", "u3"}, Title: "sign the form", RequireAck: true, IdempotencyKey: "form"})
	e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Title: "fyi", IdempotencyKey: "fyi"})
	lr := e.list(t, "u1", nil)
	var ackID, plainID string
	for _, n := range lr.Notifications {
		if n.RequireAck {
			ackID = n.ID
		} else {
			plainID = n.ID
		}
	}
	sub := e.subscribe(t, "u1")
	var a1, a2 struct {
		ID      string `json:"id"`
		AckedAt string `json:"ackedAt"`
	}
	ok(t, e.cmd(t, "u1", "conn-A", "ack-notification", map[string]any{"id": ackID}), &a1)
	if a1.ID != ackID || !timeRE.MatchString(a1.AckedAt) {
		t.Fatalf("ack = %+v", a1)
	}
	// Acknowledging marks it read: the other connections learn it.
	if out := sub.next(t); out.GetEvent() != "notification-read" || out.GetExceptConnection() != "conn-A" {
		t.Fatalf("sync = %v", out)
	}
	ok(t, e.cmd(t, "u1", "conn-A", "ack-notification", map[string]any{"id": ackID}), &a2)
	if a2 != a1 {
		t.Fatalf("second ack = %+v, first %+v", a2, a1)
	}
	errCode(t, e.cmd(t, "u1", "c", "ack-notification", map[string]any{"id": plainID}), "bad_request")
	errCode(t, e.cmd(t, "u1", "c", "ack-notification", map[string]any{"id": "n_nope"}), "not_found")

	st, err := e.client.AckStatus(ctxT(t), &notificationv1.AckStatusRequest{SendId: resp.GetSendId()})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetTotal() != 3 || st.GetAcknowledged() != 1 || fmt.Sprint(st.GetPendingUserIds()) != "[u2 u3]" {
		t.Fatalf("status = %v", st)
	}
	if got := e.list(t, "u1", nil); got.Notifications[1].AckedAt == nil || *got.Notifications[1].AckedAt != a1.AckedAt {
		t.Fatalf("listed ackedAt = %+v", got.Notifications)
	}
}

func TestUsers_CannotTouchOthersNotifications(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.send(t, &notificationv1.SendRequest{Recipients: []string{"alice"}, Title: "private", RequireAck: true, IdempotencyKey: "p"})
	id := e.list(t, "alice", nil).Notifications[0].ID
	if lr := e.list(t, "mallory", nil); len(lr.Notifications) != 0 || lr.Unread != 0 {
		t.Fatalf("mallory sees %+v", lr)
	}
	errCode(t, e.cmd(t, "mallory", "m", "list-notifications", map[string]any{"before": id}), "not_found")
	errCode(t, e.cmd(t, "mallory", "m", "mark-notification-read", map[string]any{"ids": []string{id}}), "not_found")
	errCode(t, e.cmd(t, "mallory", "m", "ack-notification", map[string]any{"id": id}), "not_found")
	var ack struct{ Unread int64 }
	ok(t, e.cmd(t, "mallory", "m", "mark-notification-read", map[string]any{"all": true}), &ack)
	if lr := e.list(t, "alice", nil); lr.Unread != 1 || lr.Notifications[0].AckedAt != nil {
		t.Fatalf("alice's notification changed: %+v", lr)
	}
}

func TestCommands_RejectOperatorInjection(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Title: "x", RequireAck: true, IdempotencyKey: "x"})
	for _, c := range []struct{ event, data string }{
		{"ack-notification", `{"id":{"$gt":""}}`},
		{"mark-notification-read", `{"ids":[{"$gt":""}]}`},
		{"mark-notification-read", `{"ids":{"$gt":""}}`},
		{"mark-notification-read", `{"all":{"$ne":false}}`},
		{"list-notifications", `{"before":{"$gt":""}}`},
		{"list-notifications", `{"unreadOnly":{"$ne":1}}`},
		{"list-notifications", `[1]`},
	} {
		errCode(t, e.cmd(t, "u2", "c", c.event, c.data), "bad_request")
	}
	if lr := e.list(t, "u1", nil); lr.Unread != 1 || lr.Notifications[0].AckedAt != nil {
		t.Fatalf("changed: %+v", lr)
	}
}

func TestExpiry_NotListedAndCleanedUp(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *notification.Config) { c.CleanupInterval = 50 * time.Millisecond })
	e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Title: "short-lived",
		ExpiresAt: timestamppb.New(time.Now().Add(1500 * time.Millisecond)), IdempotencyKey: "short"})
	e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Title: "stays", IdempotencyKey: "stays"})
	if lr := e.list(t, "u1", nil); len(lr.Notifications) != 2 || lr.Unread != 2 {
		t.Fatalf("before expiry: %+v", lr)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		lr := e.list(t, "u1", nil)
		return len(lr.Notifications) == 1 && lr.Unread == 1 && lr.Notifications[0].Title == "stays"
	}, "expired notification still listed")
	testkit.Eventually(t, 10*time.Second, func() bool {
		return e.countDocs(t, store.NotificationsCollection, bson.D{}) == 1
	}, "expired notification not deleted")
}

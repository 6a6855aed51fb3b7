package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/subject"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/edge/edgetest"
	"github.com/talim/realtime/services/notification"
)

type wireNotification struct {
	ID         string            `json:"id"`
	Category   string            `json:"category"`
	Title      string            `json:"title"`
	Body       string            `json:"body"`
	Data       map[string]string `json:"data"`
	Priority   string            `json:"priority"`
	RequireAck bool              `json:"requireAck"`
	ReadAt     *string           `json:"readAt"`
}

// TestNotificationE2E_SendReadSync sends through the real gRPC API, receives the
// notification live on two connections of the recipient, marks it read on one and
// sees the other connection synced; another user sees nothing.
func TestNotificationE2E_SendReadSync(t *testing.T) {
	t.Parallel()
	st := newStack(t, nil)
	phone := edgetest.Dial(t, st.WSURL, token(t, st, "s1"))
	laptop := edgetest.Dial(t, st.WSURL, token(t, st, "s1"))
	other := edgetest.Dial(t, st.WSURL, token(t, st, "s2"))

	conn, err := st.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := notificationv1.NewNotificationServiceClient(conn).Send(ctx, &notificationv1.SendRequest{
		Recipients: []string{"s1"}, Category: "assignment", Title: "New assignment", Body: "Read chapter 3",
		Data: map[string]string{"courseId": "c7"}, Priority: notificationv1.Priority_PRIORITY_HIGH,
		IdempotencyKey: "e2e-assignment-1",
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if resp.GetRecipients() != 1 || resp.GetDuplicate() {
		t.Fatalf("Send = %+v", resp)
	}

	var got [2]wireNotification
	for i, c := range []*edgetest.Client{phone, laptop} {
		var ev struct {
			Notification wireNotification `json:"notification"`
		}
		if err := json.Unmarshal(c.Expect(t, "notification", 5*time.Second), &ev); err != nil {
			t.Fatal(err)
		}
		got[i] = ev.Notification
	}
	n := got[0]
	if n.ID == "" || n.ID != got[1].ID || n.Title != "New assignment" || n.Priority != "high" || n.Data["courseId"] != "c7" || n.ReadAt != nil {
		t.Fatalf("notification = %+v / %+v", got[0], got[1])
	}
	other.ExpectNone(t, "notification", 300*time.Millisecond)

	// s2 cannot mark s1's notification read.
	if _, perr := other.Request("mark-notification-read", map[string]any{"ids": []string{n.ID}}); perr == nil || perr.Code != "not_found" {
		t.Fatalf("s2 marking s1's notification: %v, want not_found", perr)
	}
	ack, perr := phone.Request("mark-notification-read", map[string]any{"ids": []string{n.ID}})
	if perr != nil {
		t.Fatalf("mark read: %v", perr)
	}
	if !strings.Contains(string(ack), `"unread":0`) {
		t.Fatalf("ack = %s", ack)
	}
	sync := laptop.Expect(t, "notification-read", 5*time.Second)
	if !strings.Contains(string(sync), n.ID) || !strings.Contains(string(sync), `"unread":0`) {
		t.Fatalf("notification-read = %s", sync)
	}
	phone.ExpectNone(t, "notification-read", 200*time.Millisecond)

	list, perr := laptop.Request("list-notifications", map[string]any{})
	if perr != nil {
		t.Fatal(perr)
	}
	if !strings.Contains(string(list), n.ID) || strings.Contains(string(list), `"readAt":null`) {
		t.Fatalf("list = %s", list)
	}
	if list, _ := other.Request("list-notifications", map[string]any{}); strings.Contains(string(list), n.ID) {
		t.Fatalf("s2 lists s1's notification: %s", list)
	}
}

// TestNotificationE2E_NotifyCommand runs `talim notify` against the stack: the CLI
// reads the service token from the data directory like it does after `talim dev`.
func TestNotificationE2E_NotifyCommand(t *testing.T) {
	t.Parallel()
	st := newStack(t, nil)
	s2 := edgetest.Dial(t, st.WSURL, token(t, st, "s2"))
	var out, errb bytes.Buffer
	args := []string{"--to", "s2", "--title", "Field trip", "--body", "Bring lunch", "--priority", "high",
		"--require-ack", "--addr", st.GRPCAddr, "--token", st.ServiceToken}
	if code := notification.NotifyCommand(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("talim notify exit %d: %s", code, errb.String())
	}
	var ev struct {
		Notification wireNotification `json:"notification"`
	}
	if err := json.Unmarshal(s2.Expect(t, "notification", 5*time.Second), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Notification.Title != "Field trip" || !ev.Notification.RequireAck {
		t.Fatalf("notification = %+v", ev.Notification)
	}
	ack, perr := s2.Request("ack-notification", map[string]any{"id": ev.Notification.ID})
	if perr != nil || !strings.Contains(string(ack), "ackedAt") {
		t.Fatalf("ack-notification: %s %v", ack, perr)
	}
	// A bad token is refused with a clear message and a non-zero exit.
	errb.Reset()
	bad := []string{"--to", "s2", "--title", "x", "--body", "y", "--addr", st.GRPCAddr, "--token", "wrong"}
	if code := notification.NotifyCommand(context.Background(), bad, &out, &errb); code == 0 {
		t.Fatal("a wrong service token must fail")
	}
}

// TestNotificationE2E_DeliveredLiveCountsOnlineRecipients: with presence answering,
// live delivery goes only to recipients with a connection and the response says how
// many were online; the offline one finds the notification in its inbox later.
func TestNotificationE2E_DeliveredLiveCountsOnlineRecipients(t *testing.T) {
	t.Parallel()
	st := newStack(t, nil)
	s1 := edgetest.Dial(t, st.WSURL, token(t, st, "s1"))
	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testkit.Eventually(t, 5*time.Second, func() bool {
		m, err := nc.Request(subject.PresenceQuery, []byte(`{"userIds":["s1"]}`), time.Second)
		return err == nil && strings.Contains(string(m.Data), `"online":["s1"]`)
	}, "presence never saw s1 online")

	conn, err := st.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := notificationv1.NewNotificationServiceClient(conn).Send(ctx, &notificationv1.SendRequest{
		Recipients: []string{"s1", "s2"}, Category: "news", Title: "Sports day", Body: "Friday", IdempotencyKey: "e2e-live-count",
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRecipients() != 2 || resp.GetDeliveredLive() != 1 {
		t.Fatalf("Send = %+v, want 2 recipients, 1 delivered live", resp)
	}
	s1.Expect(t, "notification", 5*time.Second)
	s2 := edgetest.Dial(t, st.WSURL, token(t, st, "s2"))
	list, perr := s2.Request("list-notifications", map[string]any{"unreadOnly": true})
	if perr != nil || !strings.Contains(string(list), "Sports day") {
		t.Fatalf("offline recipient's inbox: %s %v", list, perr)
	}
}

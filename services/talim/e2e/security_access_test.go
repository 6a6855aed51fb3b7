package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/edge/edgetest"
)

type secNotification struct {
	ID     string  `json:"id"`
	ReadAt *string `json:"readAt"`
}

// TestSecurity_OtherUsersData: a user reaches nothing of rooms they are not a
// member of, nothing of other users' notifications, and no presence of users they
// share no room with — whatever ids they guess.
func TestSecurity_OtherUsersData(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(nil)
	rg.createRoom(b.Chat, "s-private", "ben", "cy") // eve is not a member
	rg.createRoom(b.Chat, "s-shared", "ben", "eve")
	url := wsURL(b.Edge)
	ben := edgetest.Dial(t, url, rg.token("ben"))
	chatJoin(t, ben, map[string]any{"roomId": "s-private"})
	secret := chatSend(t, ben, "s-private", "the secret", "p-1")
	benShared := chatSend(t, ben, "s-shared", "ben's own words", "p-2")

	// ben has a notification.
	ctx, cancel := context.WithTimeout(context.Background(), rigWait)
	defer cancel()
	if _, err := notificationv1.NewNotificationServiceClient(rg.grpcConn(b.Notification.GRPCAddr())).Send(ctx, &notificationv1.SendRequest{
		Recipients: []string{"ben"}, Category: "grade", Title: "Your grade", Body: "A+", RequireAck: true, IdempotencyKey: "sec-1",
	}); err != nil {
		t.Fatal(err)
	}
	var note struct{ Notification secNotification }
	_ = json.Unmarshal(ben.Expect(t, "notification", 5*time.Second), &note)
	noteID := note.Notification.ID
	if noteID == "" {
		t.Fatal("no notification id")
	}

	eve := edgetest.Dial(t, url, rg.token("eve"))
	deny := func(event string, data map[string]any, codes ...string) {
		t.Helper()
		d, perr := eve.Request(event, data)
		if perr == nil {
			t.Fatalf("%s %v: allowed: %s", event, data, d)
		}
		for _, c := range codes {
			if perr.Code == c {
				return
			}
		}
		t.Fatalf("%s %v: %s, want one of %v", event, data, perr.Code, codes)
	}
	rows := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Room_Join", func(t *testing.T) {
			deny("join-chat-room", map[string]any{"roomId": "s-private", "sinceSeq": 0}, "forbidden", "not_found")
		}},
		{"Room_Send", func(t *testing.T) {
			deny("send-chat-message", map[string]any{"roomId": "s-private", "content": "x", "clientMsgId": "e1"}, "forbidden", "not_found")
		}},
		{"Room_History", func(t *testing.T) {
			deny("get-chat-room-history", map[string]any{"roomId": "s-private"}, "forbidden", "not_found")
		}},
		{"Room_MarkRead", func(t *testing.T) {
			deny("mark-message-read", map[string]any{"roomId": "s-private", "seq": 1}, "forbidden", "not_found")
		}},
		{"Room_Typing", func(t *testing.T) {
			deny("typing", map[string]any{"roomId": "s-private", "isTyping": true}, "forbidden", "not_found")
		}},
		{"Room_EditOthersMessage", func(t *testing.T) {
			deny("edit-chat-message", map[string]any{"roomId": "s-private", "messageId": secret.ID, "content": "x"}, "forbidden", "not_found")
			deny("edit-chat-message", map[string]any{"roomId": "s-shared", "messageId": benShared.ID, "content": "x"}, "forbidden")
		}},
		{"Room_DeleteOthersMessage", func(t *testing.T) {
			deny("delete-chat-message", map[string]any{"roomId": "s-private", "messageId": secret.ID}, "forbidden", "not_found")
			deny("delete-chat-message", map[string]any{"roomId": "s-shared", "messageId": benShared.ID}, "forbidden")
		}},
		{"Room_MessageIdOfAnotherRoom", func(t *testing.T) {
			// a message id of s-private through a room eve belongs to
			deny("edit-chat-message", map[string]any{"roomId": "s-shared", "messageId": secret.ID, "content": "x"}, "forbidden", "not_found")
			deny("mark-message-read", map[string]any{"roomId": "s-shared", "messageId": secret.ID}, "forbidden", "not_found", "bad_request")
		}},
		{"Room_NotListed", func(t *testing.T) {
			d, perr := eve.Request("list-rooms", nil)
			if perr != nil {
				t.Fatal(perr)
			}
			if strings.Contains(string(d), "s-private") || strings.Contains(string(d), "the secret") {
				t.Fatalf("list-rooms shows the private room: %s", d)
			}
		}},
		{"Room_NoLiveEvents", func(t *testing.T) {
			chatSend(t, ben, "s-private", "still secret", "p-3")
			for {
				f, err := eve.Next(300 * time.Millisecond)
				if err != nil {
					break
				}
				if strings.Contains(string(f.Raw), "s-private") {
					t.Fatalf("eve received %s", f.Raw)
				}
			}
		}},
		{"Notification_Ack", func(t *testing.T) { deny("ack-notification", map[string]any{"id": noteID}, "not_found", "forbidden") }},
		{"Notification_MarkRead", func(t *testing.T) {
			_, _ = eve.Request("mark-notification-read", map[string]any{"ids": []string{noteID}})
			d, perr := ben.Request("list-notifications", map[string]any{})
			if perr != nil {
				t.Fatal(perr)
			}
			var page struct {
				Notifications []secNotification
				Unread        int
			}
			_ = json.Unmarshal(d, &page)
			if page.Unread != 1 || len(page.Notifications) != 1 || page.Notifications[0].ReadAt != nil {
				t.Fatalf("ben's notification changed by eve: %s", d)
			}
		}},
		{"Notification_List", func(t *testing.T) {
			for _, data := range []map[string]any{{}, {"before": noteID}, {"unreadOnly": true}, {"userId": "ben"}} {
				d, perr := eve.Request("list-notifications", data)
				if perr != nil && perr.Code != "bad_request" && perr.Code != "not_found" {
					t.Fatalf("%v: %v", data, perr)
				}
				if strings.Contains(string(d), noteID) || strings.Contains(string(d), "A+") {
					t.Fatalf("eve lists ben's notification with %v: %s", data, d)
				}
			}
		}},
		{"Presence_Stranger", func(t *testing.T) {
			if got := subscribePresence(t, eve, "cy")["cy"]; got.Status != "unknown" || got.LastSeenAt != nil {
				t.Fatalf("eve sees cy (no shared room) as %+v", got)
			}
			cy := edgetest.Dial(t, url, rg.token("cy"))
			defer cy.Close()
			eve.ExpectNone(t, "presence", 2*rigGrace)
		}},
		{"Presence_Invisible", func(t *testing.T) {
			if _, perr := ben.Request("set-status", map[string]any{"status": "invisible"}); perr != nil {
				t.Fatal(perr)
			}
			if got := subscribePresence(t, eve, "ben")["ben"]; got.Status != "offline" {
				t.Fatalf("eve sees invisible ben as %+v", got)
			}
		}},
	}
	for _, row := range rows {
		t.Run(row.name, row.run)
	}
	// Nothing eve did left a trace in the private room.
	for _, m := range rg.storedMessages("s-private") {
		if m.SenderID != "ben" {
			t.Fatalf("private room holds %+v", m)
		}
	}
}

package chat_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/webhook"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
)

// Every acknowledged send and delete has its webhook event in the outbox when the
// ack arrives, in the order the commands were answered, with ids derived from the
// message id (a retried send writes no second event).
func TestWebhooks_SendAndDeleteWriteOutboxBeforeAck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1) // its producer reads the subscriptions at the first send
	client, err := mongo.Connect(options.Client().ApplyURI(h.mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	st := webhook.NewStore(client.Database(h.db))
	sub := webhook.Subscription{ID: webhook.NewSubscriptionID(), URL: "http://127.0.0.1:9/", CreatedAt: time.Now(),
		Events: []string{webhook.MessageCreated, webhook.MessageDeleted}, Keys: []webhook.SigningKey{{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}
	if err := st.CreateSubscription(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	h.room("r1", chatv1.RoomType_ROOM_TYPE_GROUP, "alice=owner", "bob")
	alice, bob := h.user("alice"), h.user("bob")

	m1 := alice.send("r1", "one", "c1")
	m2 := bob.send("r1", "two", "c2")
	again := alice.send("r1", "one", "c1") // retry of the first send
	var ack struct{ Message message }
	alice.ok("delete-chat-message", map[string]any{"roomId": "r1", "messageId": m1.ID}, &ack)
	alice.ok("delete-chat-message", map[string]any{"roomId": "r1", "messageId": m1.ID}, &ack) // idempotent
	if again.ID != m1.ID {
		t.Fatalf("retry made a new message")
	}
	pending, err := st.Pending(context.Background(), sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{webhook.EventID(webhook.MessageCreated, m1.ID), webhook.EventID(webhook.MessageCreated, m2.ID),
		webhook.EventID(webhook.MessageDeleted, m1.ID)}
	if len(pending) != len(want) {
		t.Fatalf("%d outbox entries, want %d: %+v", len(pending), len(want), pending)
	}
	for i, e := range pending {
		if e.EventID != want[i] {
			t.Fatalf("entry %d = %s (%s), want %s", i, e.EventID, e.Type, want[i])
		}
	}
	var body struct {
		Type string `json:"type"`
		Data struct {
			Message message `json:"message"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(pending[1].Body), &body); err != nil || body.Type != webhook.MessageCreated ||
		body.Data.Message.ID != m2.ID || body.Data.Message.Seq != m2.Seq || body.Data.Message.Content != "two" {
		t.Fatalf("message.created body %s (%v)", pending[1].Body, err)
	}
	if err := json.Unmarshal([]byte(pending[2].Body), &body); err != nil || body.Type != webhook.MessageDeleted ||
		!body.Data.Message.Deleted || body.Data.Message.ID != m1.ID {
		t.Fatalf("message.deleted body %s (%v)", pending[2].Body, err)
	}
}

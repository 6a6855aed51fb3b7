package presence

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/webhook"
)

// A subscription to presence.changed gets the user's online change in its outbox,
// under an id derived from (user, version): the same on every replica.
func TestWebhooks_PresenceChangedWritten(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	client, err := mongo.Connect(options.Client().ApplyURI(h.mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	st := webhook.NewStore(client.Database(h.db))
	sub := webhook.Subscription{ID: webhook.NewSubscriptionID(), URL: "http://127.0.0.1:9/", CreatedAt: time.Now(),
		Events: []string{webhook.PresenceChanged}, Keys: []webhook.SigningKey{{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}
	if err := st.CreateSubscription(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	h.start(nil)
	h.start(nil) // a second replica writes the same event
	h.edge("e1").connect("c1", "u1")
	on := h.waitChange("u1", 1, 5*time.Second)
	var pending []webhook.Entry
	testkit.Eventually(t, 10*time.Second, func() bool {
		pending, err = st.Pending(context.Background(), sub.ID)
		return err == nil && len(pending) >= 1
	}, "presence.changed in the outbox")
	if len(pending) != 1 {
		t.Fatalf("%d entries, want 1 (replicas share the event id)", len(pending))
	}
	var body struct {
		Type string `json:"type"`
		Data struct {
			UserID  string `json:"userId"`
			Status  string `json:"status"`
			Version int64  `json:"version"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(pending[0].Body), &body); err != nil || body.Type != webhook.PresenceChanged ||
		body.Data.UserID != "u1" || body.Data.Status != "online" || body.Data.Version != on.sc.GetVersion() {
		t.Fatalf("body %s (%v)", pending[0].Body, err)
	}
}

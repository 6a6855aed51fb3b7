package notification_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/types/known/timestamppb"

	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/notification/internal/core"
	"github.com/talim/realtime/services/notification/internal/store"
)

var timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestSend_LiveToOnline_OfflineListsLater(t *testing.T) {
	t.Parallel()
	e := start(t)
	online := e.subscribe(t, "u1")
	exp := time.Now().Add(time.Hour)
	resp := e.send(t, &notificationv1.SendRequest{
		Recipients: []string{"u1", "u2", "u1"}, Category: "assignment", Title: "New assignment", Body: "Read ch. 3",
		Data: map[string]string{"k": "v", "a.b": "$c"}, Priority: notificationv1.Priority_PRIORITY_HIGH,
		ExpiresAt: timestamppb.New(exp), IdempotencyKey: "k1",
	})
	if resp.GetRecipients() != 2 || resp.GetDuplicate() || resp.GetSendId() == "" {
		t.Fatalf("response = %v", resp)
	}
	out := online.next(t)
	if out.GetEvent() != "notification" || out.GetRoomId() != "" || out.GetExceptConnection() != "" {
		t.Fatalf("outbound = %v", out)
	}
	var ev struct {
		Notification wireNote `json:"notification"`
	}
	if err := json.Unmarshal(out.GetData(), &ev); err != nil {
		t.Fatal(err)
	}
	n := ev.Notification
	if n.Category != "assignment" || n.Title != "New assignment" || n.Body != "Read ch. 3" || n.Priority != "high" ||
		n.Data["a.b"] != "$c" || n.Data["k"] != "v" || n.RequireAck || n.ReadAt != nil || n.AckedAt != nil ||
		!timeRE.MatchString(n.CreatedAt) || n.ExpiresAt == nil || *n.ExpiresAt != exp.UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Fatalf("notification = %+v", n)
	}
	// The raw object has every §4 field, nulls included.
	var raw map[string]map[string]any
	_ = json.Unmarshal(out.GetData(), &raw)
	for _, f := range []string{"id", "category", "title", "body", "data", "priority", "requireAck", "createdAt", "readAt", "ackedAt", "expiresAt"} {
		if _, ok := raw["notification"][f]; !ok {
			t.Errorf("field %s missing in %s", f, out.GetData())
		}
	}
	online.none(t, e.nc)

	// The offline recipient finds it later, unread.
	lr := e.list(t, "u2", map[string]any{})
	if len(lr.Notifications) != 1 || lr.Unread != 1 || lr.HasMore || lr.Notifications[0].Title != "New assignment" {
		t.Fatalf("u2 list = %+v", lr)
	}
	if lr.Notifications[0].ID == n.ID {
		t.Fatal("two recipients share a notification id")
	}
	if got := e.list(t, "u1", nil); len(got.Notifications) != 1 || got.Notifications[0].ID != n.ID || got.Notifications[0].CreatedAt != n.CreatedAt {
		t.Fatalf("u1 list = %+v, live %+v", got, n)
	}
}

func TestSend_SameKeyIsIdempotent(t *testing.T) {
	t.Parallel()
	e := start(t)
	sub := e.subscribe(t, "u1")
	req := &notificationv1.SendRequest{Recipients: []string{"u1", "u2"}, Title: "once", IdempotencyKey: "same"}
	first := e.send(t, req)
	sub.next(t)
	second := e.send(t, req)
	if !second.GetDuplicate() || second.GetSendId() != first.GetSendId() || second.GetRecipients() != 2 || second.GetDeliveredLive() != 0 {
		t.Fatalf("second = %v, first = %v", second, first)
	}
	sub.none(t, e.nc)
	if n := e.countDocs(t, store.NotificationsCollection, bson.D{}); n != 2 {
		t.Fatalf("%d notifications stored, want 2", n)
	}
}

func TestSend_RacingSameKey_ExactlyOneSet(t *testing.T) {
	t.Parallel()
	e := start(t)
	recipients := make([]string, 120)
	for i := range recipients {
		recipients[i] = fmt.Sprintf("user-%03d", i)
	}
	const callers = 4
	var wg sync.WaitGroup
	resps := make([]*notificationv1.SendResponse, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resps[i] = e.send(t, &notificationv1.SendRequest{Recipients: recipients, Title: "race", IdempotencyKey: "racy"})
		}()
	}
	wg.Wait()
	created := 0
	for _, r := range resps {
		if r == nil {
			t.FailNow()
		}
		if !r.GetDuplicate() {
			created++
		}
		if r.GetSendId() != resps[0].GetSendId() || r.GetRecipients() != 120 {
			t.Fatalf("responses differ: %v vs %v", r, resps[0])
		}
	}
	if created != 1 {
		t.Fatalf("%d callers created the send, want 1", created)
	}
	if n := e.countDocs(t, store.NotificationsCollection, bson.D{}); n != 120 {
		t.Fatalf("%d notifications stored, want 120", n)
	}
	if n := e.countDocs(t, store.SendsCollection, bson.D{}); n != 1 {
		t.Fatalf("%d sends stored, want 1", n)
	}
}

// A send whose first writer crashed after storing part of the notifications is
// finished by the next call with the same key, without duplicates; only the missing
// recipients get a live event.
func TestSend_CompletesInterruptedSend(t *testing.T) {
	t.Parallel()
	e := start(t)
	st := store.New(e.db)
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	send := &store.Send{Key: "crashy", SendID: core.SendIDFor("crashy"), Recipients: []string{"a", "b", "c", "d"},
		Content: store.Content{Category: "general", Title: "first writer's title", Priority: "normal"}, CreatedAt: now}
	if _, created, err := st.CreateSend(ctx, send); err != nil || !created {
		t.Fatalf("create send: %v %v", created, err)
	}
	partial := []store.Notification{
		{ID: core.NotificationIDFor("crashy", "a"), UserID: "a", SendID: send.SendID, Title: send.Content.Title, CreatedAt: now, Priority: "normal"},
		{ID: core.NotificationIDFor("crashy", "b"), UserID: "b", SendID: send.SendID, Title: send.Content.Title, CreatedAt: now, Priority: "normal"},
	}
	if _, err := st.InsertNotifications(ctx, partial); err != nil {
		t.Fatal(err)
	}
	subA, subC := e.subscribe(t, "a"), e.subscribe(t, "c")
	resp := e.send(t, &notificationv1.SendRequest{Recipients: []string{"x"}, Title: "retry's title", IdempotencyKey: "crashy"})
	if !resp.GetDuplicate() || resp.GetSendId() != send.SendID || resp.GetRecipients() != 4 || resp.GetDeliveredLive() != 2 {
		t.Fatalf("response = %v", resp)
	}
	if out := subC.next(t); !json.Valid(out.GetData()) || !regexp.MustCompile(`first writer's title`).Match(out.GetData()) {
		t.Fatalf("c got %s", out.GetData())
	}
	subA.none(t, e.nc)
	if n := e.countDocs(t, store.NotificationsCollection, bson.D{}); n != 4 {
		t.Fatalf("%d notifications, want 4", n)
	}
	if n := e.countDocs(t, store.NotificationsCollection, bson.D{{Key: "userId", Value: "x"}}); n != 0 {
		t.Fatal("the retry's recipients were used instead of the stored request's")
	}
	if n := e.countDocs(t, store.SendsCollection, bson.D{{Key: "complete", Value: true}}); n != 1 {
		t.Fatal("send not marked complete")
	}
}

// TestSend_MaxRecipients sends to 10,000 recipients (2,500 under -race, where the
// embedded FerretDB is about ten times slower; the benchmark covers 10,000).
func TestSend_MaxRecipients(t *testing.T) {
	if testing.Short() {
		t.Skip("large send")
	}
	t.Parallel()
	e := start(t)
	count := core.MaxRecipients
	if raceEnabled {
		count = 2500
	}
	recipients := make([]string, count)
	for i := range recipients {
		recipients[i] = fmt.Sprintf("student-%05d", i)
	}
	sub := e.subscribe(t, recipients[count-1])
	t0 := time.Now()
	resp := e.send(t, &notificationv1.SendRequest{Recipients: recipients, Title: "school closed", IdempotencyKey: "big"})
	t.Logf("%d-recipient send took %v", count, time.Since(t0))
	if resp.GetRecipients() != int64(count) {
		t.Fatalf("response = %v", resp)
	}
	if out := sub.next(t); out.GetEvent() != "notification" {
		t.Fatalf("outbound = %v", out)
	}
	if n := e.countDocs(t, store.NotificationsCollection, bson.D{}); n != int64(count) {
		t.Fatalf("%d notifications, want %d", n, count)
	}
	if lr := e.list(t, recipients[1234], nil); len(lr.Notifications) != 1 || lr.Unread != 1 {
		t.Fatalf("list = %+v", lr)
	}
}

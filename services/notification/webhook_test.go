package notification_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/webhook"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	webhookv1 "github.com/talim/realtime/proto/talim/webhook/v1"
	"github.com/talim/realtime/services/notification"
)

// The notification service hosts WebhookService and delivers
// notification.acknowledged, signed, once per acknowledgement (a repeated ack
// produces the same webhook-id).
func TestWebhooks_AckDeliveredSigned(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *notification.Config) {
		c.Webhooks = webhook.Config{Dispatch: true, AllowPrivate: true, Poll: 10 * time.Millisecond, Timeout: 5 * time.Second}
	})
	var mu sync.Mutex
	var secret string
	var got []map[string]any
	var ids []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := webhook.Verify(secret, r.Header, body, time.Now(), webhook.DefaultTolerance); err != nil {
			t.Errorf("verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		got = append(got, m)
		ids = append(ids, r.Header.Get(webhook.HeaderID))
	}))
	t.Cleanup(rcv.Close)

	hc := webhookv1.NewWebhookServiceClient(e.conn)
	if _, err := hc.CreateSubscription(ctxT(t), &webhookv1.CreateSubscriptionRequest{Url: rcv.URL, EventTypes: []string{"chat.nope"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown type: %v", err)
	}
	res, err := hc.CreateSubscription(ctxT(t), &webhookv1.CreateSubscriptionRequest{Url: rcv.URL + "/x", EventTypes: []string{"notification.acknowledged"}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	secret = res.GetSecret()
	mu.Unlock()
	if _, err := webhookv1.NewWebhookServiceClient(dial(t, e.svc.GRPCAddr(), "wrong")).ListSubscriptions(ctxT(t), &webhookv1.ListSubscriptionsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong token: %v", err)
	}

	e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Title: "sign the form", RequireAck: true, IdempotencyKey: "form"})
	lr := e.list(t, "u1", nil)
	id := lr.Notifications[0].ID
	ok(t, e.cmd(t, "u1", "conn-A", "ack-notification", map[string]any{"id": id}), &map[string]any{})
	ok(t, e.cmd(t, "u1", "conn-A", "ack-notification", map[string]any{"id": id}), &map[string]any{})
	testkit.Eventually(t, 20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 1 }, "acknowledged webhook")
	mu.Lock()
	defer mu.Unlock()
	data, _ := got[0]["data"].(map[string]any)
	if got[0]["type"] != webhook.NotificationAcknowledged || data["notificationId"] != id || data["userId"] != "u1" {
		t.Fatalf("payload = %v", got[0])
	}
	for _, x := range ids {
		if x != webhook.EventID(webhook.NotificationAcknowledged, "u1\x00"+id) {
			t.Fatalf("webhook-ids %v: want one stable id per acknowledgement", ids)
		}
	}
}

// talim webhooks create, list, dead, replay, rotate and delete against a running service.
func TestWebhooksCommand_Lifecycle(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *notification.Config) { c.Webhooks = webhook.Config{AllowPrivate: true} })
	env := map[string]string{"TALIM_GRPC_ADDR": e.svc.GRPCAddr(), "TALIM_SERVICE_TOKEN": testToken}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	run := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := notification.WebhooksCommandEnv(ctxT(t), args, &out, &errb, lookup)
		return code, out.String(), errb.String()
	}
	code, out, errs := run("create", "--url", "http://127.0.0.1:9/h", "--events", "message.created,message.deleted")
	if code != 0 || !strings.Contains(out, "secret whsec_") {
		t.Fatalf("create: %d %q %q", code, out, errs)
	}
	id := strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "subscription ")
	if code, out, _ = run("list"); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "message.created,message.deleted") {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, out, _ = run("dead", "--id", id); code != 0 || out != "" {
		t.Fatalf("dead: %d %q", code, out)
	}
	if code, out, _ = run("replay", "--id", id); code != 0 || !strings.Contains(out, "0 dead letters") {
		t.Fatalf("replay: %d %q", code, out)
	}
	if code, out, _ = run("rotate", "--id", id, "--grace", "1h"); code != 0 || !strings.Contains(out, "secret whsec_") {
		t.Fatalf("rotate: %d %q", code, out)
	}
	if code, _, errs = run("delete", "--id", `{"$gt":""}`); code != 1 || !strings.Contains(errs, "InvalidArgument") {
		t.Fatalf("delete operator id: %d %q", code, errs)
	}
	if code, _, _ = run("delete", "--id", id); code != 0 {
		t.Fatalf("delete: %d", code)
	}
	if code, _, errs = run("delete", "--id", id); code != 1 || !strings.Contains(errs, "NotFound") {
		t.Fatalf("delete again: %d %q", code, errs)
	}
	if code, _, _ = run("create", "--url", "http://127.0.0.1:9/h"); code != 2 {
		t.Fatalf("create without events: %d", code)
	}
	if code, _, _ = run("bogus"); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
}

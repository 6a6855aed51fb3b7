package webhooktest_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/talim/realtime/pkg/webhook"
	webhookv1 "github.com/talim/realtime/proto/talim/webhook/v1"
)

func wantCode(t *testing.T, err error, c codes.Code, what string) {
	t.Helper()
	if status.Code(err) != c {
		t.Errorf("%s: %v, want %v", what, err, c)
	}
}

// Bad input gets InvalidArgument (or NotFound) and changes nothing.
func TestAPI_BadInput_ChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	sub, _ := e.subscribe(t, "http://127.0.0.1:9/hooks", webhook.MessageCreated)

	creates := map[string]*webhookv1.CreateSubscriptionRequest{
		"no url":          {EventTypes: []string{webhook.MessageCreated}},
		"ftp url":         {Url: "ftp://x/", EventTypes: []string{webhook.MessageCreated}},
		"operator as url": {Url: `{"$gt":""}`, EventTypes: []string{webhook.MessageCreated}},
		"no types":        {Url: "http://127.0.0.1:9/"},
		"unknown type":    {Url: "http://127.0.0.1:9/", EventTypes: []string{"message.exploded"}},
		"operator type":   {Url: "http://127.0.0.1:9/", EventTypes: []string{"$where"}},
		"bad secret":      {Url: "http://127.0.0.1:9/", EventTypes: []string{webhook.MessageCreated}, Secret: "hunter2"},
		"short secret":    {Url: "http://127.0.0.1:9/", EventTypes: []string{webhook.MessageCreated}, Secret: "whsec_c2hvcnQ="},
		"long desc":       {Url: "http://127.0.0.1:9/", EventTypes: []string{webhook.MessageCreated}, Description: strings.Repeat("x", 300)},
	}
	for name, req := range creates {
		_, err := e.api.CreateSubscription(ctx, req)
		wantCode(t, err, codes.InvalidArgument, "create "+name)
	}
	for _, id := range []string{"", `{"$gt":""}`, "sub_", "sub_" + strings.Repeat("a", 27), "SUB_AAAAAAAAAAAAAAAAAAAAAAAAAA", sub.GetId() + "x"} {
		_, err := e.api.DeleteSubscription(ctx, &webhookv1.DeleteSubscriptionRequest{Id: id})
		wantCode(t, err, codes.InvalidArgument, "delete "+id)
		_, err = e.api.RotateSecret(ctx, &webhookv1.RotateSecretRequest{Id: id})
		wantCode(t, err, codes.InvalidArgument, "rotate "+id)
		_, err = e.api.ListDeadLetters(ctx, &webhookv1.ListDeadLettersRequest{SubscriptionId: id})
		wantCode(t, err, codes.InvalidArgument, "dead letters "+id)
		_, err = e.api.ReplayDeadLetters(ctx, &webhookv1.ReplayDeadLettersRequest{SubscriptionId: id})
		wantCode(t, err, codes.InvalidArgument, "replay "+id)
	}
	_, err := e.api.ReplayDeadLetters(ctx, &webhookv1.ReplayDeadLettersRequest{SubscriptionId: sub.GetId(), EventIds: []string{`{"$ne":null}`}})
	wantCode(t, err, codes.InvalidArgument, "replay operator event id")
	_, err = e.api.RotateSecret(ctx, &webhookv1.RotateSecretRequest{Id: sub.GetId(), GraceSeconds: -1})
	wantCode(t, err, codes.InvalidArgument, "negative grace")
	_, err = e.api.RotateSecret(ctx, &webhookv1.RotateSecretRequest{Id: sub.GetId(), Secret: "whsec_!!"})
	wantCode(t, err, codes.InvalidArgument, "rotate bad secret")
	missing := webhook.NewSubscriptionID()
	_, err = e.api.DeleteSubscription(ctx, &webhookv1.DeleteSubscriptionRequest{Id: missing})
	wantCode(t, err, codes.NotFound, "delete missing")
	_, err = e.api.RotateSecret(ctx, &webhookv1.RotateSecretRequest{Id: missing})
	wantCode(t, err, codes.NotFound, "rotate missing")

	list, err := e.api.ListSubscriptions(ctx, &webhookv1.ListSubscriptionsRequest{})
	if err != nil || len(list.GetSubscriptions()) != 1 || list.GetSubscriptions()[0].GetActiveSecrets() != 1 {
		t.Fatalf("after bad input: %v, %v", list, err)
	}
}

// Production configuration refuses private and loopback URLs.
func TestAPI_ProductionRefusesPrivateURLs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	api := webhook.NewAPI(webhook.Config{}, nil, nil)
	api.SetStore(e.st)
	for _, u := range []string{"http://127.0.0.1/h", "http://localhost/h", "http://10.0.0.1/h", "http://[::1]/h", "http://169.254.169.254/"} {
		_, err := api.CreateSubscription(context.Background(), &webhookv1.CreateSubscriptionRequest{Url: u, EventTypes: []string{webhook.MessageCreated}})
		wantCode(t, err, codes.InvalidArgument, u)
	}
}

// Not connected: Unavailable.
func TestAPI_UnavailableUntilStore(t *testing.T) {
	t.Parallel()
	api := webhook.NewAPI(webhook.Config{}, nil, nil)
	_, err := api.ListSubscriptions(context.Background(), &webhookv1.ListSubscriptionsRequest{})
	wantCode(t, err, codes.Unavailable, "list before store")
}

// Create, list, delete: deleting removes pending entries; the producer of this
// process sees changes at once; publish is idempotent per (type, key).
func TestAPI_Lifecycle_AndIdempotentPublish(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	a, secret := e.subscribe(t, "http://127.0.0.1:9/a", webhook.MessageCreated, webhook.MessageDeleted, webhook.MessageCreated)
	if !strings.HasPrefix(secret, webhook.SecretPrefix) || len(a.GetEventTypes()) != 2 {
		t.Fatalf("created %v with secret %q", a, secret)
	}
	b, _ := e.subscribe(t, "http://127.0.0.1:9/b", webhook.PresenceChanged)
	ev := webhook.Event{Type: webhook.MessageCreated, Key: "m_1", Time: e.now(), Data: map[string]string{"messageId": "m_1"}}
	for range 3 {
		if err := e.p.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	pa, _ := e.st.Pending(ctx, a.GetId())
	pb, _ := e.st.Pending(ctx, b.GetId())
	if len(pa) != 1 || len(pb) != 0 {
		t.Fatalf("pending a=%d b=%d, want 1 and 0", len(pa), len(pb))
	}
	if _, err := e.api.DeleteSubscription(ctx, &webhookv1.DeleteSubscriptionRequest{Id: a.GetId()}); err != nil {
		t.Fatal(err)
	}
	pa, _ = e.st.Pending(ctx, a.GetId())
	if len(pa) != 0 {
		t.Fatalf("pending after delete = %d", len(pa))
	}
	if err := e.p.Publish(ctx, webhook.Event{Type: webhook.MessageCreated, Key: "m_2", Time: e.now()}); err != nil {
		t.Fatal(err)
	}
	pa, _ = e.st.Pending(ctx, a.GetId())
	if len(pa) != 0 {
		t.Fatalf("deleted subscription still receives: %d", len(pa))
	}
	list, err := e.api.ListSubscriptions(ctx, &webhookv1.ListSubscriptionsRequest{})
	if err != nil || len(list.GetSubscriptions()) != 1 || list.GetSubscriptions()[0].GetId() != b.GetId() {
		t.Fatalf("list = %v, %v", list, err)
	}
}

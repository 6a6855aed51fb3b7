package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/command"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/notification/internal/push"
)

const (
	goodKey  = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	goodAuth = "BTBZMqHH6r4Tts7J_aSIgg"
)

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	prod, dev := push.Policy{}, push.Policy{AllowLoopbackHTTP: true}
	cases := []struct {
		name      string
		pol       push.Policy
		endpoint  string
		key, auth string
		ok        bool
	}{
		{"public https", prod, "https://fcm.googleapis.com/fcm/send/abc", goodKey, goodAuth, true},
		{"padded keys", prod, "https://push.example/x", goodKey + "=", goodAuth + "==", true},
		{"http", prod, "http://push.example/x", goodKey, goodAuth, false},
		{"loopback https in production", prod, "https://127.0.0.1/x", goodKey, goodAuth, false},
		{"localhost in production", prod, "https://localhost/x", goodKey, goodAuth, false},
		{"private address", prod, "https://10.1.2.3/x", goodKey, goodAuth, false},
		{"ipv6 loopback", prod, "https://[::1]/x", goodKey, goodAuth, false},
		{"link-local metadata", prod, "https://169.254.169.254/latest", goodKey, goodAuth, false},
		{"loopback http in dev", dev, "http://127.0.0.1:8080/x", goodKey, goodAuth, true},
		{"public http in dev", dev, "http://push.example/x", goodKey, goodAuth, false},
		{"credentials", prod, "https://user:pw@push.example/x", goodKey, goodAuth, false},
		{"fragment", prod, "https://push.example/x#y", goodKey, goodAuth, false},
		{"relative", prod, "/push/x", goodKey, goodAuth, false},
		{"javascript", prod, "javascript:alert(1)", goodKey, goodAuth, false},
		{"empty", prod, "", goodKey, goodAuth, false},
		{"too long", prod, "https://push.example/" + strings.Repeat("a", push.MaxEndpointLen), goodKey, goodAuth, false},
		{"short key", prod, "https://push.example/x", goodKey[:40], goodAuth, false},
		{"key not on curve", prod, "https://push.example/x", "BA" + strings.Repeat("A", 85), goodAuth, false},
		{"key not base64", prod, "https://push.example/x", strings.Repeat("!", 87), goodAuth, false},
		{"long auth", prod, "https://push.example/x", goodKey, goodAuth + "AAAA", false},
		{"huge key", prod, "https://push.example/x", strings.Repeat("A", 10000), goodAuth, false},
	}
	for _, c := range cases {
		_, err := c.pol.Validate(c.endpoint, c.key, c.auth)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, push.ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", c.name, err)
		}
	}
}

func cmd(user, data string) *edgev1.Command {
	return &edgev1.Command{Identity: &edgev1.Identity{UserId: user}, ConnectionId: "c1", Data: []byte(data)}
}

// Bad client input gets bad_request and changes nothing.
func TestRegisterCommandRejectsBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	ep, k, a := h.ep.browser("b1")
	good, _ := json.Marshal(map[string]any{"endpoint": ep, "keys": map[string]string{"p256dh": k, "auth": a}, "expirationTime": nil})
	cases := []struct{ name, data string }{
		{"operator in endpoint", `{"endpoint":{"$gt":""},"keys":{"p256dh":"` + k + `","auth":"` + a + `"}}`},
		{"operator in keys", `{"endpoint":"` + ep + `","keys":{"p256dh":{"$ne":null},"auth":"` + a + `"}}`},
		{"keys not an object", `{"endpoint":"` + ep + `","keys":"x"}`},
		{"no keys", `{"endpoint":"` + ep + `"}`},
		{"array", `[1]`},
		{"not json", `{"endpoint":`},
		{"public http", `{"endpoint":"http://push.example/x","keys":{"p256dh":"` + k + `","auth":"` + a + `"}}`},
	}
	for _, c := range cases {
		_, err := push.HandleRegister(h.p, ctx, cmd("u1", c.data))
		var pe *command.Error
		if !errors.As(err, &pe) || pe.Code != command.CodeBadRequest {
			t.Errorf("%s: err %v, want bad_request", c.name, err)
		}
	}
	if subs, _ := h.store.Subscriptions(ctx, "u1"); len(subs) != 0 {
		t.Fatalf("bad input stored %+v", subs)
	}
	if _, err := push.HandleRegister(h.p, ctx, cmd("u1", string(good))); err != nil {
		t.Fatalf("good: %v", err)
	}
	// Another user registering the same browser takes it over.
	if _, err := push.HandleRegister(h.p, ctx, cmd("u2", string(good))); err != nil {
		t.Fatalf("good for u2: %v", err)
	}
	s1, _ := h.store.Subscriptions(ctx, "u1")
	s2, _ := h.store.Subscriptions(ctx, "u2")
	if len(s1) != 0 || len(s2) != 1 {
		t.Fatalf("after takeover: u1 %d, u2 %d", len(s1), len(s2))
	}
	// u1 cannot remove u2's subscription; u2 can.
	rm := `{"endpoint":"` + ep + `"}`
	if _, err := push.HandleRemove(h.p, ctx, cmd("u1", rm)); err != nil {
		t.Fatal(err)
	}
	if s2, _ = h.store.Subscriptions(ctx, "u2"); len(s2) != 1 {
		t.Fatal("u1 removed u2's subscription")
	}
	if _, err := push.HandleRemove(h.p, ctx, cmd("u1", `{"endpoint":{"$gt":""}}`)); err == nil {
		t.Fatal("operator accepted in remove")
	}
	if _, err := push.HandleRemove(h.p, ctx, cmd("u2", rm)); err != nil {
		t.Fatal(err)
	}
	if s2, _ = h.store.Subscriptions(ctx, "u2"); len(s2) != 0 {
		t.Fatal("remove did not remove")
	}
}

func TestAtMostTenSubscriptionsPerUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for i := range push.MaxSubscriptionsPerUser + 2 {
		h.subscribe("u1", "b"+string(rune('a'+i)))
	}
	subs, _ := h.store.Subscriptions(context.Background(), "u1")
	if len(subs) != push.MaxSubscriptionsPerUser || !strings.HasSuffix(subs[0].Endpoint, "/bc") {
		t.Fatalf("%d subscriptions, first %s", len(subs), subs[0].Endpoint)
	}
}

func TestChatRequestQueuesForRecipientsButNotTheSender(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.subscribe("alice", "alice")
	h.subscribe("bob", "bob")
	req := &notificationv1.ChatPushRequest{RoomId: "dm-1", MessageId: "m1", SenderId: "alice",
		RecipientIds: []string{"alice", "bob"}, Text: "hi @bob", Reason: notificationv1.ChatPushReason_CHAT_PUSH_REASON_MENTION}
	b, _ := proto.Marshal(req)
	if err := push.HandleChat(h.p, b); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{[]byte("\xff\xff"), mustMarshal(&notificationv1.ChatPushRequest{RoomId: "r"}), make([]byte, 20000)} {
		if err := push.HandleChat(h.p, bad); err == nil {
			t.Errorf("accepted %q", bad[:min(len(bad), 8)])
		}
	}
	h.drain(h.p)
	got := h.ep.received()
	if len(got) != 1 || got[0].Path != "/bob" || got[0].Payload.URL != "/?room=dm-1" || got[0].Payload.Title != "alice mentioned you" {
		t.Fatalf("pushes %+v", got)
	}
}

func mustMarshal(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	return b
}

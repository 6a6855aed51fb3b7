package edgetest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

// ReplyFunc answers one command. Returning nil sends no reply at all (the edge then
// times out).
type ReplyFunc func(cmd *edgev1.Command) *edgev1.Reply

// Responder plays a backing service: it serves talim.cmd.v1.<service>.> in the queue
// group <service> and answers with fn. It records the commands it received.
type Responder struct {
	sub *nats.Subscription

	mu   sync.Mutex
	cmds []*edgev1.Command
}

// NewResponder subscribes on nc and unsubscribes in t.Cleanup. The subscription is
// flushed, so the responder is live when NewResponder returns.
func NewResponder(t testing.TB, nc *nats.Conn, service string, fn ReplyFunc) *Responder {
	t.Helper()
	r := &Responder{}
	sub, err := nc.QueueSubscribe(subject.CommandWildcard(service), service, func(m *nats.Msg) {
		var cmd edgev1.Command
		if err := proto.Unmarshal(m.Data, &cmd); err != nil {
			return
		}
		r.mu.Lock()
		r.cmds = append(r.cmds, &cmd)
		r.mu.Unlock()
		rep := fn(&cmd)
		if rep == nil {
			return
		}
		b, err := proto.Marshal(rep)
		if err != nil {
			return
		}
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatalf("edgetest: responder subscribe: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("edgetest: responder flush: %v", err)
	}
	r.sub = sub
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return r
}

// Commands returns the commands received so far.
func (r *Responder) Commands() []*edgev1.Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*edgev1.Command(nil), r.cmds...)
}

// Ack is a reply whose ack data is v marshalled as JSON.
func Ack(v any) *edgev1.Reply {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return &edgev1.Reply{Data: b}
}

// Fail is a reply carrying a protocol error.
func Fail(code, message string) *edgev1.Reply {
	return &edgev1.Reply{Error: &edgev1.Error{Code: code, Message: message}}
}

// Echo acks every command with its own data.
func Echo(cmd *edgev1.Command) *edgev1.Reply { return &edgev1.Reply{Data: cmd.GetData()} }

// PublishOutbound publishes out on userID's outbound subject and flushes.
func PublishOutbound(t testing.TB, nc *nats.Conn, userID string, out *edgev1.Outbound) {
	t.Helper()
	b, err := proto.Marshal(out)
	if err != nil {
		t.Fatalf("edgetest: marshal outbound: %v", err)
	}
	if err := nc.Publish(subject.User(userID), b); err != nil {
		t.Fatalf("edgetest: publish outbound: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("edgetest: flush: %v", err)
	}
}

// Event builds a simple Outbound for every connection of the user.
func Event(event string, data any) *edgev1.Outbound {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return &edgev1.Outbound{Event: event, Data: b}
}

// Token signs an HS256 token for userID valid for ttl.
func Token(t testing.TB, secret, userID string, ttl time.Duration, roles ...string) string {
	t.Helper()
	tok, err := auth.SignHS256(secret, auth.Claims{UserID: userID, Name: "User " + userID, Roles: roles, ExpiresAt: time.Now().Add(ttl)}, "", "")
	if err != nil {
		t.Fatalf("edgetest: sign token: %v", err)
	}
	return tok
}

package edge_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/service"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

// TestUpstreamGate_PortOpensOnlyWhenServicesAnswer starts an edge that forwards to
// chat while chat answers its health request "not ready": the edge reports itself
// unready and does not listen. Once chat answers ready, the edge opens its port and
// the first command on the first connection reaches chat.
func TestUpstreamGate_PortOpensOnlyWhenServicesAnswer(t *testing.T) {
	ns := startNATS(t)
	nc := natsConn(t, ns.ClientURL())
	var chatReady atomic.Bool
	if _, err := command.ServeHealth(nc, "chat", "chat-test", "test", func(context.Context) bool { return chatReady.Load() }); err != nil {
		t.Fatal(err)
	}
	edgetest.NewResponder(t, nc, "chat", func(*edgev1.Command) *edgev1.Reply { return edgetest.Ack(map[string]any{"ok": true}) })

	srv, err := edge.New(edge.Config{
		NATS: service.NATS{URL: ns.ClientURL()}, AdminAddr: "127.0.0.1:0", Addr: "127.0.0.1:0",
		JWTSecret: secret, DrainWindow: 100 * time.Millisecond, Upstreams: []string{"chat"},
	}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// The edge answers its own health request not ready while chat is not ready.
	eventually(t, 10*time.Second, func() bool {
		hctx, hcancel := context.WithTimeout(context.Background(), time.Second)
		defer hcancel()
		h, err := command.RequestHealth(hctx, nc, "edge")
		return err == nil && !h.GetReady()
	}, "edge answers health unready")
	select {
	case <-srv.Ready():
		t.Fatal("edge ready while chat is not")
	case <-time.After(300 * time.Millisecond): // several gate polls; a negative check needs a window
	}

	chatReady.Store(true)
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("edge not ready 10s after chat")
	}
	hctx, hcancel := context.WithTimeout(context.Background(), time.Second)
	defer hcancel()
	if h, err := command.RequestHealth(hctx, nc, "edge"); err != nil || !h.GetReady() {
		t.Fatalf("edge health after chat ready = %v, %v; want ready", h, err)
	}
	if code, body := httpGet(t, "http://"+srv.AdminAddr()+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	c := edgetest.Dial(t, "ws://"+srv.Addr()+"/ws", tokenFor(t, "u1", time.Hour))
	if _, perr := c.Request("join-chat-room", map[string]string{"roomId": "r1"}); perr != nil {
		t.Fatalf("first join: %v", perr)
	}
}

// TestUpstreamGate_CancelWhileWaiting stops an edge whose services never answer:
// Run returns nil without ever listening.
func TestUpstreamGate_CancelWhileWaiting(t *testing.T) {
	ns := startNATS(t)
	srv, err := edge.New(edge.Config{
		NATS: service.NATS{URL: ns.ClientURL()}, AdminAddr: "127.0.0.1:0", Addr: "127.0.0.1:0",
		JWTSecret: secret, Upstreams: []string{"chat", "presence"},
	}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := srv.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil after ctx ends", err)
	}
	select {
	case <-srv.Ready():
		t.Fatal("Ready closed although no service answered")
	default:
	}
}

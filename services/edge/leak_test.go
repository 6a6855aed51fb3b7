package edge_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge/edgetest"
)

// TestNoGoroutineLeak runs an edge through connections, commands, deliveries and a
// drain, and checks that no goroutine of the edge survives Run. Not parallel: it
// compares goroutine snapshots.
func TestNoGoroutineLeak(t *testing.T) {
	ns := startNATS(t)
	nc := natsConn(t, ns.ClientURL())
	base := goleak.IgnoreCurrent()
	h := startEdgeOn(t, ns, nil)
	edgetest.NewResponder(t, nc, "chat", func(cmd *edgev1.Command) *edgev1.Reply {
		return &edgev1.Reply{Data: []byte(`{}`), JoinRooms: []string{"r"}}
	})
	var cs []*edgetest.Client
	for i := 0; i < 5; i++ {
		c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour))
		if _, perr := c.Request("join-chat-room", map[string]any{"roomId": "r"}); perr != nil {
			t.Fatal(perr)
		}
		cs = append(cs, c)
	}
	edgetest.PublishOutbound(t, nc, "u1", roomEvent("r", 1))
	for _, c := range cs {
		c.Expect(t, "chat-message", 5*time.Second)
	}
	cs[0].Close()
	h.stop()
	for _, c := range cs {
		<-c.Done()
		c.Close()
	}
	// The harness's own NATS connection (and its server-side client) lives until
	// t.Cleanup; the edge's connection uses the same functions but is closed by Run.
	if err := goleak.Find(base,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats%2ego.(*Conn).flusher"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats%2ego.(*Conn).readLoop"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats%2ego.(*Conn).waitForMsgs"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats%2ego.(*asyncCallbacksHandler).asyncCBDispatcher"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*client).readLoop"),
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*client).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	); err != nil {
		t.Fatal(err)
	}
}

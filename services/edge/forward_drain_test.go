package edge_test

import (
	"testing"
	"time"

	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

// TestDrain_WaitsForForwards: a command is in flight to a service that has not
// answered when the edge shuts down. Run must not return (and close NATS) before the
// forward returns; once the service answers, Run returns and no forward is left.
func TestDrain_WaitsForForwards(t *testing.T) {
	h := startEdge(t, func(c *edge.Config) { c.DrainWindow = 100 * time.Millisecond })
	release := make(chan struct{})
	received := make(chan struct{}, 1)
	edgetest.NewResponder(t, h.nc, "chat", func(*edgev1.Command) *edgev1.Reply {
		received <- struct{}{}
		<-release
		return edgetest.Ack(map[string]any{})
	})
	c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour))
	if err := c.Emit("join-chat-room", map[string]string{"roomId": "r1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-received:
	case <-time.After(10 * time.Second):
		t.Fatal("command not received")
	}
	if n := edge.ForwardsInFlight(h.edge); n != 1 {
		t.Fatalf("%d forwards in flight, want 1", n)
	}
	stopped := make(chan struct{})
	go func() { h.stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Run returned with a forward in flight")
	case <-time.After(time.Second): // drain window 100 ms + write timeout: a negative check needs a window
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the forward ended")
	}
	if n := edge.ForwardsInFlight(h.edge); n != 0 {
		t.Fatalf("%d forwards in flight after Run", n)
	}
}

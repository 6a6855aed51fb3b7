package edge_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	presencev1 "github.com/talim/realtime/proto/talim/presence/v1"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

func TestPresence_ConnectionEventsAndHeartbeats(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	nc := natsConn(t, ns.ClientURL())
	events := make(chan *nats.Msg, 64)
	beats := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe(subject.PresenceConn+">", events); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.ChanSubscribe(subject.PresenceHeartbeat+">", beats); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	h := startEdgeOn(t, ns, func(c *edge.Config) { c.PresenceHeartbeat = 100 * time.Millisecond })
	c := edgetest.Dial(t, h.wsURL(), h.token("u1", time.Hour))

	nextEvent := func() *presencev1.ConnectionEvent {
		t.Helper()
		select {
		case m := <-events:
			var ev presencev1.ConnectionEvent
			if err := proto.Unmarshal(m.Data, &ev); err != nil {
				t.Fatal(err)
			}
			if m.Subject != subject.PresenceConn+h.edge.ID() {
				t.Fatalf("subject %s", m.Subject)
			}
			return &ev
		case <-time.After(5 * time.Second):
			t.Fatal("no connection event")
		}
		return nil
	}
	ev := nextEvent()
	if ev.GetKind() != presencev1.ConnectionEvent_KIND_CONNECTED || ev.GetUserId() != "u1" ||
		ev.GetConnectionId() != c.Connected.ConnectionID || ev.GetEdgeId() != h.edge.ID() {
		t.Fatalf("connect event %v", ev)
	}
	// A heartbeat lists the connection.
	deadline := time.After(5 * time.Second)
	for found := false; !found; {
		select {
		case m := <-beats:
			var hb presencev1.Heartbeat
			_ = proto.Unmarshal(m.Data, &hb)
			for _, cn := range hb.GetConnections() {
				if cn.GetConnectionId() == c.Connected.ConnectionID && cn.GetUserId() == "u1" && hb.GetIntervalMs() == 100 {
					found = true
				}
			}
		case <-deadline:
			t.Fatal("no heartbeat listing the connection")
		}
	}
	c.Close()
	if ev := nextEvent(); ev.GetKind() != presencev1.ConnectionEvent_KIND_DISCONNECTED || ev.GetConnectionId() != c.Connected.ConnectionID {
		t.Fatalf("disconnect event %v", ev)
	}
	h.stop()
	deadline = time.After(5 * time.Second)
	for {
		select {
		case m := <-beats:
			var hb presencev1.Heartbeat
			_ = proto.Unmarshal(m.Data, &hb)
			if hb.GetStopping() {
				if len(hb.GetConnections()) != 0 {
					t.Fatalf("stopping heartbeat lists connections")
				}
				return
			}
		case <-deadline:
			t.Fatal("no final stopping heartbeat")
		}
	}
}

func TestPresence_WatchDelivery(t *testing.T) {
	t.Parallel()
	h := startEdge(t, nil)
	edgetest.NewResponder(t, h.nc, "presence", func(cmd *edgev1.Command) *edgev1.Reply {
		var d struct{ UserIDs []string }
		_ = json.Unmarshal(cmd.GetData(), &d)
		switch cmd.GetEvent() {
		case "subscribe-presence":
			return &edgev1.Reply{Data: []byte(`{"presence":[]}`), WatchUsers: d.UserIDs}
		case "unsubscribe-presence":
			return &edgev1.Reply{Data: []byte(`{}`), UnwatchUsers: d.UserIDs}
		}
		return edgetest.Echo(cmd)
	})
	a := edgetest.Dial(t, h.wsURL(), h.token("a", time.Hour))
	b := edgetest.Dial(t, h.wsURL(), h.token("b", time.Hour))
	for _, c := range []*edgetest.Client{a, b} {
		if _, perr := c.Request("subscribe-presence", map[string]any{"userIds": []string{"x"}}); perr != nil {
			t.Fatal(perr)
		}
	}
	if n := edge.PresenceSubscriptions(h.edge); n != 1 {
		t.Fatalf("presence subscriptions for one watched user: %d", n)
	}
	publish := func(status string, version int64) {
		b, _ := proto.Marshal(&presencev1.StatusChange{UserId: "x", Status: status, LastSeenAt: "2026-11-25T10:00:00.000Z", Version: version})
		if err := h.nc.Publish(subject.PresenceChangedFor("x"), b); err != nil {
			t.Fatal(err)
		}
		_ = h.nc.Flush()
	}
	publish("online", 1)
	for _, c := range []*edgetest.Client{a, b} {
		var p struct{ UserID, Status, LastSeenAt string }
		_ = json.Unmarshal(c.Expect(t, "presence", 5*time.Second), &p)
		if p.UserID != "x" || p.Status != "online" || p.LastSeenAt == "" {
			t.Fatalf("presence %+v", p)
		}
	}
	publish("online", 1) // duplicate from another replica
	publish("away", 0+1) // older-or-equal version
	a.ExpectNone(t, "presence", 150*time.Millisecond)
	publish("away", 2)
	a.Expect(t, "presence", 5*time.Second)
	b.Expect(t, "presence", 5*time.Second)

	if _, perr := a.Request("unsubscribe-presence", map[string]any{"userIds": []string{"x"}}); perr != nil {
		t.Fatal(perr)
	}
	publish("busy", 3)
	b.Expect(t, "presence", 5*time.Second)
	a.ExpectNone(t, "presence", 150*time.Millisecond)
	b.Close()
	eventually(t, 5*time.Second, func() bool { return edge.PresenceSubscriptions(h.edge) == 0 }, "presence subscription removed")
}

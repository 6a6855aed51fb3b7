package e2e

import (
	"testing"
	"time"

	"github.com/talim/realtime/services/edge/edgetest"
)

// TestFault_PresenceReplicaRestarted: two presence replicas; one is stopped, the
// survivor keeps serving; a fresh replica starts, rebuilds the state from the next
// heartbeat without announcing anyone again, and after the survivor stops too it
// alone answers queries and publishes changes correctly.
func TestFault_PresenceReplicaRestarted(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(nil)
	_, p2 := rg.startPresence("presence-2", rg.presenceConfig(ns.URL()))
	const room = "f-presence"
	rg.createRoom(b.Chat, room, "ann", "ben")
	url := wsURL(b.Edge)
	nc := natsConn(t, ns.URL())

	watcher := edgetest.Dial(t, url, rg.token("ann"))
	if got := subscribePresence(t, watcher, "ben")["ben"]; got.Status != "offline" {
		t.Fatalf("ben before connecting: %+v", got)
	}
	ben := edgetest.Dial(t, url, rg.token("ben"))
	expectPresence(t, watcher, "ben", "online", 5*time.Second)

	// Replica 1 (the stack's) stops; replica 2 carries on.
	b.PresenceProc.Stop()
	ben.Close()
	expectPresence(t, watcher, "ben", "offline", 5*time.Second)
	ben = edgetest.Dial(t, url, rg.token("ben"))
	expectPresence(t, watcher, "ben", "online", 5*time.Second)

	// A fresh replica (the restart) joins, then replica 2 stops: the fresh one is alone.
	_, p3 := rg.startPresence("presence-3", rg.presenceConfig(ns.URL()))
	_ = p3
	p2.Stop()
	// It learns ben's connection from the edge's next heartbeat and says nothing.
	waitUntil(t, "the restarted replica to know ben is online", func() bool {
		st, err := presenceQuery(nc, "ben")
		return err == nil && st["ben"] == "online"
	})
	watcher.ExpectNone(t, "presence", 3*rigHeartbeat)

	// Changes flow from the restarted replica: offline after the grace period...
	ben.Close()
	expectPresence(t, watcher, "ben", "offline", 5*time.Second)
	// ...and set-status from a new connection of ben.
	ben = edgetest.Dial(t, url, rg.token("ben"))
	expectPresence(t, watcher, "ben", "online", 5*time.Second)
	if _, perr := ben.Request("set-status", map[string]any{"status": "busy"}); perr != nil {
		t.Fatal(perr)
	}
	expectPresence(t, watcher, "ben", "busy", 5*time.Second)
	if got := subscribePresence(t, edgetest.Dial(t, url, rg.token("ann")), "ben")["ben"]; got.Status != "busy" {
		t.Fatalf("a new subscriber sees ben as %+v", got)
	}
}

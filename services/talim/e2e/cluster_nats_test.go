package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/talim/realtime/pkg/client"
	"github.com/talim/realtime/pkg/devstack"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/edge/edgetest"
)

// startNATSCluster starts n in-process NATS nodes routed to each other on loopback
// and waits until every node has a route to every other.
func startNATSCluster(t *testing.T, n int) []*devstack.NATS {
	t.Helper()
	var nodes []*devstack.NATS
	var seed string
	for i := range n {
		o := devstack.NATSOptions{Host: "127.0.0.1", Port: devstack.RandomPort, ServerName: "node-" + string(rune('a'+i)),
			Cluster: &devstack.NATSClusterOptions{Name: "talim-test", Port: devstack.RandomPort}}
		if seed != "" {
			o.Cluster.Routes = []string{seed}
		}
		ns, err := devstack.StartNATS(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Shutdown)
		if seed == "" {
			seed = ns.ClusterURL()
		}
		nodes = append(nodes, ns)
	}
	waitUntil(t, "a full mesh of routes", func() bool {
		for _, ns := range nodes {
			rz, err := ns.Server().Routez(nil)
			if err != nil {
				return false
			}
			peers := map[string]bool{}
			for _, r := range rz.Routes {
				peers[r.RemoteName] = true
			}
			if len(peers) < n-1 {
				return false
			}
		}
		return true
	})
	return nodes
}

// homeFirst is the URL list a service gets: its home node, then the others.
func homeFirst(nodes []*devstack.NATS, home int) string {
	urls := []string{nodes[home].ClientURL()}
	for i, ns := range nodes {
		if i != home {
			urls = append(urls, ns.ClientURL())
		}
	}
	return strings.Join(urls, ",")
}

// clientsOn lists the names of the client connections a node holds.
func clientsOn(t testing.TB, ns *devstack.NATS) []string {
	cz, err := ns.Server().Connz(&server.ConnzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cz.Conns {
		out = append(out, c.Name)
	}
	return out
}

// TestCluster_NATSNodeKilled: a 3-node NATS cluster; two edges, two chat
// instances, two presence replicas and notification spread over the nodes (each
// service gets every URL, its home node first). Users on different edges chat; the
// node that holds edge 1 is killed mid-traffic; every service on it fails over to
// the other nodes; nothing acked is lost and presence converges.
func TestCluster_NATSNodeKilled(t *testing.T) {
	nodes := startNATSCluster(t, 3)
	fdb := startFerretAt(t)
	rg := newRig(t, nodes[0].ClientURL(), fdb.URI())

	chat1, _ := rg.startChat("chat-1", rg.chatConfig(homeFirst(nodes, 0)))
	rg.startChat("chat-2", rg.chatConfig(homeFirst(nodes, 2)))
	notif, _ := rg.startNotification("notification", rg.notificationConfig(homeFirst(nodes, 1)))
	rg.startPresence("presence-1", rg.presenceConfig(homeFirst(nodes, 1)))
	rg.startPresence("presence-2", rg.presenceConfig(homeFirst(nodes, 2)))
	edge1, _ := rg.startEdge("edge-1", rg.edgeConfig(homeFirst(nodes, 0)))
	edge2, _ := rg.startEdge("edge-2", rg.edgeConfig(homeFirst(nodes, 1)))
	placement := map[string][]string{}
	for i, ns := range nodes {
		placement[ns.Server().Name()] = clientsOn(t, ns)
		_ = i
	}
	t.Logf("placement (nats.go shuffles the URL list): %v", placement)

	const room = "c-room"
	rg.createRoom(chat1, room, "ann", "ben", "cy", "dee")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ann := rg.newMember(ctx, wsURL(edge1), "ann", room, nil)
	ben := rg.newMember(ctx, wsURL(edge2), "ben", room, nil)
	cy := rg.newMember(ctx, wsURL(edge1), "cy", room, nil)
	members := []*member{ann, ben, cy}

	// Presence across edges: dee (edge 2) watches ann (edge 1).
	dee := edgetest.Dial(t, wsURL(edge2), rg.token("dee"))
	if got := subscribePresence(t, dee, "ann")["ann"]; got.Status != "online" {
		t.Fatalf("dee sees ann as %+v", got)
	}

	// The victim: the node holding edge 1's connection (so a failover must happen).
	victim := -1
	for i, ns := range nodes {
		for _, name := range clientsOn(t, ns) {
			if name == edge1.ID() {
				victim = i
			}
		}
	}
	if victim < 0 {
		t.Fatalf("edge 1 (%s) not found on any node: %v", edge1.ID(), placement)
	}
	moved := clientsOn(t, nodes[victim])
	l := newLedger()
	runTraffic(t, ctx, l, members, room, 5*time.Millisecond, 20, 20, func() {
		nodes[victim].Shutdown()
	})
	// Every service connection of the dead node is on a survivor now.
	waitUntil(t, "the dead node's clients on the other nodes", func() bool {
		have := map[string]bool{}
		for i, ns := range nodes {
			if i != victim {
				for _, n := range clientsOn(t, ns) {
					have[n] = true
				}
			}
		}
		for _, n := range moved {
			if n != "" && !have[n] {
				return false
			}
		}
		return true
	})
	acked, errs := l.snapshot()
	t.Logf("killed %s holding %v; %d acks; errors on the way (retried): %v", nodes[victim].Server().Name(), moved, len(acked), errs)
	stored := rg.verifyStored(room, acked)
	for _, m := range members {
		expectHistory(t, m, stored)
	}

	// A notification (gRPC → notification → NATS → the recipient's edge) after the
	// failover reaches ben on edge 2 and dee on edge 2.
	gotNote := make(chan struct{}, 1)
	ben.c.OnNotification(func(client.Notification) { gotNote <- struct{}{} })
	if _, err := notificationv1.NewNotificationServiceClient(rg.grpcConn(notif.GRPCAddr())).Send(ctx, &notificationv1.SendRequest{
		Recipients: []string{"ben", "dee"}, Category: "c", Title: "after failover", IdempotencyKey: "cluster-1",
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gotNote:
	case <-time.After(5 * time.Second):
		t.Fatal("ben got no notification after the failover")
	}
	dee.Expect(t, "notification", 5*time.Second)

	// Presence converges: ann leaves (edge 1) → dee (edge 2) sees offline; ann
	// comes back on edge 2 → online; both replicas agree.
	ann.c.Close()
	expectPresence(t, dee, "ann", "offline", 5*time.Second)
	again := edgetest.Dial(t, wsURL(edge2), rg.token("ann"))
	expectPresence(t, dee, "ann", "online", 5*time.Second)
	nc := natsConn(t, homeFirst(nodes, (victim+1)%3))
	for range 4 { // queue group: ask several times to hit both replicas
		waitUntil(t, "every replica sees ann online", func() bool {
			st, err := presenceQuery(nc, "ann")
			return err == nil && st["ann"] == "online"
		})
	}
	again.Close()
}

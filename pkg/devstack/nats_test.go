package devstack_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/devstack"
	"github.com/talim/realtime/pkg/devstack/testkit"
)

func TestNATSPublishSubscribe(t *testing.T) {
	n := testkit.NATS(t)
	nc := testkit.NATSConn(t, n.ClientURL())

	sub, err := nc.SubscribeSync("talim.test.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("talim.test.hello", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "hi" || msg.Subject != "talim.test.hello" {
		t.Fatalf("got %q on %q", msg.Data, msg.Subject)
	}
}

func TestNATSShutdownIsIdempotent(t *testing.T) {
	n, err := devstack.StartNATS(devstack.NATSOptions{Port: devstack.RandomPort})
	if err != nil {
		t.Fatal(err)
	}
	n.Shutdown()
	n.Shutdown()
	if n.Server().Running() {
		t.Fatal("server still running after Shutdown")
	}
}

func TestNATSConfigFileWithUsers(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "nats.conf")
	err := os.WriteFile(conf, []byte(`
authorization {
  users = [
    { user: "edge", password: "edgepw", permissions: { publish: ["talim.cmd.>"], subscribe: ["_INBOX.>"] } }
    { user: "chat", password: "chatpw" }
  ]
}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	n, err := devstack.StartNATS(devstack.NATSOptions{Port: devstack.RandomPort, ConfigFile: conf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)

	if nc, err := nats.Connect(n.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("anonymous connect succeeded, want authorization error")
	}
	chat := testkit.NATSConn(t, n.ClientURL(), nats.UserInfo("chat", "chatpw"))
	sub, err := chat.SubscribeSync("talim.cmd.v1.chat.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Flush(); err != nil {
		t.Fatal(err)
	}

	permErrs := make(chan error, 4)
	edge := testkit.NATSConn(t, n.ClientURL(), nats.UserInfo("edge", "edgepw"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { permErrs <- err }))
	if err := edge.Publish("talim.cmd.v1.chat.send-chat-message", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("permitted publish not delivered: %v", err)
	}
	if err := edge.Publish("talim.user.v1.x", []byte("denied")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-permErrs:
		t.Logf("denied publish reported: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no permissions violation reported for a denied publish")
	}
}

func TestNATSThreeNodeCluster(t *testing.T) {
	start := func(name string, routes ...string) *devstack.NATS {
		t.Helper()
		n, err := devstack.StartNATS(devstack.NATSOptions{
			Port:       devstack.RandomPort,
			ServerName: name,
			Cluster: &devstack.NATSClusterOptions{
				Name:   "talim-test",
				Port:   devstack.RandomPort,
				Routes: routes,
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Shutdown)
		return n
	}
	a := start("A")
	if a.ClusterURL() == "" {
		t.Fatal("no cluster URL on A")
	}
	b := start("B", a.ClusterURL())
	c := start("C", a.ClusterURL())

	// B and C learn about each other from A (gossip), giving a full mesh.
	testkit.Eventually(t, 10*time.Second, func() bool {
		return a.Server().NumRoutes() >= 2 && b.Server().NumRoutes() >= 2 && c.Server().NumRoutes() >= 2
	}, "full route mesh between A, B and C")

	ncC := testkit.NATSConn(t, c.ClientURL())
	sub, err := ncC.SubscribeSync("talim.user.v1.u1")
	if err != nil {
		t.Fatal(err)
	}
	if err := ncC.Flush(); err != nil {
		t.Fatal(err)
	}
	// Wait until the interest has propagated to A over the route.
	testkit.Eventually(t, 10*time.Second, func() bool {
		return a.Server().GlobalAccount().SubscriptionInterest("talim.user.v1.u1")
	}, "subscription interest reaching node A")

	ncA := testkit.NATSConn(t, a.ClientURL())
	if err := ncA.Publish("talim.user.v1.u1", []byte("across")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("message from A did not reach C: %v", err)
	}
	if string(msg.Data) != "across" {
		t.Fatalf("got %q", msg.Data)
	}
}

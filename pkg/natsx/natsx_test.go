package natsx

import (
	"context"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

func runServer(t *testing.T) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestConnect_HonoursURLOrder connects many times to a list of two live servers:
// every connection goes to the first URL of the list (nats.go would shuffle it,
// landing on the second about half of the time), then fails over to the second
// when the first stops.
func TestConnect_HonoursURLOrder(t *testing.T) {
	home, other := runServer(t), runServer(t)
	for _, tc := range []struct {
		name  string
		first *natsserver.Server
		list  string
	}{
		{"home first", home, home.ClientURL() + "," + other.ClientURL()},
		{"other first", other, other.ClientURL() + "," + home.ClientURL()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 20 { // a shuffled list of two would pass 20 times with p = 2^-20
				nc, err := Connect(context.Background(), Options{URL: tc.list, Name: "order-test", ConnectTimeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				got := nc.ConnectedUrl()
				nc.Close()
				if got != tc.first.ClientURL() {
					t.Fatalf("connection %d went to %s, want the first URL %s", i, got, tc.first.ClientURL())
				}
			}
		})
	}

	nc, err := Connect(context.Background(), Options{URL: home.ClientURL() + "," + other.ClientURL(), Name: "failover-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	home.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for nc.ConnectedUrl() != other.ClientURL() {
		if time.Now().After(deadline) {
			t.Fatalf("not failed over to %s (connected: %q)", other.ClientURL(), nc.ConnectedUrl())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

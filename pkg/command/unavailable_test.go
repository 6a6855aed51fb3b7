package command

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

// TestServer_MapsOwnUnavailable: a handler error wrapping a sentinel listed in
// Options.Unavailable (a store's own ErrUnavailable) is answered `unavailable`; an
// unlisted one is `internal`.
func TestServer_MapsOwnUnavailable(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	errStoreDown := errors.New("store unavailable")
	srv := New(nc, Options{Service: "svc", Unavailable: []error{errStoreDown}})
	srv.Handle("down", func(context.Context, *edgev1.Command) (*edgev1.Reply, error) {
		return nil, fmt.Errorf("load thing: %w: %w", errStoreDown, errors.New("connection refused"))
	})
	srv.Handle("broken", func(context.Context, *edgev1.Command) (*edgev1.Reply, error) {
		return nil, errors.New("bug")
	})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	for event, want := range map[string]string{"down": CodeUnavailable, "broken": CodeInternal} {
		b, _ := proto.Marshal(&edgev1.Command{Event: event, Identity: &edgev1.Identity{UserId: "u"}})
		m, err := nc.Request(subject.Command("svc", event), b, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", event, err)
		}
		var rep edgev1.Reply
		if err := proto.Unmarshal(m.Data, &rep); err != nil {
			t.Fatal(err)
		}
		if got := rep.GetError().GetCode(); got != want {
			t.Errorf("%s: code %q, want %q", event, got, want)
		}
	}
}

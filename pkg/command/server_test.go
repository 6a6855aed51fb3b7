package command

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

// natsConn starts an in-process NATS server (random port) and connects to it. pkg
// does not use pkg/devstack's test kit: that would make every service module that
// requires pkg need the embedded FerretDB's module graph to build on its own.
func natsConn(t *testing.T) *nats.Conn {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func request(t *testing.T, nc *nats.Conn, service, event string, cmd *edgev1.Command) *edgev1.Reply {
	t.Helper()
	b, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nc.Request(subject.Command(service, event), b, 5*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", event, err)
	}
	var r edgev1.Reply
	if err := proto.Unmarshal(m.Data, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestServer_DispatchAndErrors(t *testing.T) {
	t.Parallel()
	nc := natsConn(t)
	s := New(nc, Options{Service: "demo"})
	type in struct {
		RoomID string `json:"roomId"`
	}
	s.Handle("echo", func(_ context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
		var v in
		if err := Decode(cmd, &v); err != nil {
			return nil, err
		}
		return OK(map[string]string{"roomId": v.RoomID, "user": cmd.GetIdentity().GetUserId()})
	})
	s.Handle("down", func(context.Context, *edgev1.Command) (*edgev1.Reply, error) {
		return nil, fmt.Errorf("insert: %w: %w", ErrUnavailable, errors.New("connection refused"))
	})
	s.Handle("boom", func(context.Context, *edgev1.Command) (*edgev1.Reply, error) { panic("bug") })
	s.Handle("secret", func(context.Context, *edgev1.Command) (*edgev1.Reply, error) {
		return nil, errors.New("mongo: password=hunter2")
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	id := &edgev1.Identity{UserId: "u1"}
	cases := []struct {
		name, event, data string
		ident             *edgev1.Identity
		wantCode, wantMsg string
	}{
		{"ok", "echo", `{"roomId":"r1","extra":1}`, id, "", ""},
		{"no data", "echo", ``, id, "", ""},
		{"injection", "echo", `{"roomId":{"$gt":""}}`, id, CodeBadRequest, "roomId"},
		{"not an object", "echo", `[1,2]`, id, CodeBadRequest, "object"},
		{"bad json", "echo", `{"roomId":`, id, CodeBadRequest, "JSON"},
		{"unknown event", "nope", `{}`, id, CodeUnknownEvent, "nope"},
		{"no identity", "echo", `{}`, nil, CodeUnauthorized, ""},
		{"store down", "down", `{}`, id, CodeUnavailable, "retry"},
		{"panic", "boom", `{}`, id, CodeInternal, "internal error"},
		{"internal details hidden", "secret", `{}`, id, CodeInternal, "internal error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := request(t, nc, "demo", c.event, &edgev1.Command{Identity: c.ident, Event: c.event, Data: []byte(c.data)})
			if r.GetError().GetCode() != c.wantCode {
				t.Fatalf("code = %q (%s), want %q", r.GetError().GetCode(), r.GetError().GetMessage(), c.wantCode)
			}
			if c.wantMsg != "" && !strings.Contains(r.GetError().GetMessage(), c.wantMsg) {
				t.Fatalf("message %q lacks %q", r.GetError().GetMessage(), c.wantMsg)
			}
			if c.wantCode == "" && !strings.Contains(string(r.GetData()), `"user":"u1"`) {
				t.Fatalf("data = %s", r.GetData())
			}
			if strings.Contains(r.GetError().GetMessage(), "hunter2") {
				t.Fatal("internal error details leaked to the client")
			}
		})
	}
	// An envelope whose event disagrees with the subject is refused.
	r := request(t, nc, "demo", "echo", &edgev1.Command{Identity: id, Event: "down"})
	if r.GetError().GetCode() != CodeUnknownEvent {
		t.Fatalf("mismatched event: %v", r.GetError())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Stop(ctx)
}

func TestServer_StopWaitsForRunningHandlers(t *testing.T) {
	t.Parallel()
	nc := natsConn(t)
	s := New(nc, Options{Service: "slow"})
	started, release := make(chan struct{}), make(chan struct{})
	s.Handle("work", func(context.Context, *edgev1.Command) (*edgev1.Reply, error) {
		close(started)
		<-release
		return OK(map[string]bool{"done": true})
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	b, _ := proto.Marshal(&edgev1.Command{Identity: &edgev1.Identity{UserId: "u"}, Event: "work"})
	reply := make(chan *nats.Msg, 1)
	go func() {
		m, err := nc.Request(subject.Command("slow", "work"), b, 5*time.Second)
		if err == nil {
			reply <- m
		}
		close(reply)
	}()
	<-started
	stopped := make(chan struct{})
	go func() { s.Stop(context.Background()); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a handler was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-stopped
	if m, ok := <-reply; !ok || m == nil {
		t.Fatal("the in-flight command got no reply")
	}
}

// TestServer_ShedsAtOnceWhenFull: with every handler busy and the queue full, a
// command is answered unavailable with a retry hint at once (not after the
// edge's timeout); a command whose deadline passed before it arrived is dropped
// at the door without running or answering (the edge answered it already).
func TestServer_ShedsAtOnceWhenFull(t *testing.T) {
	t.Parallel()
	b := startBlocking(t, Options{Service: "busy", Concurrency: 1, MaxQueue: 1, MaxQueueDelay: time.Hour})
	s, nc, started, release := b.s, b.nc, b.started, b.release
	ident := &edgev1.Identity{UserId: "u"}
	send := func(cmd *edgev1.Command, timeout time.Duration) chan *edgev1.Reply {
		out := make(chan *edgev1.Reply, 1)
		b, _ := proto.Marshal(cmd)
		go func() {
			m, err := nc.Request(subject.Command("busy", "work"), b, timeout)
			var r edgev1.Reply
			if err == nil && proto.Unmarshal(m.Data, &r) == nil {
				out <- &r
			}
			close(out)
		}()
		return out
	}
	first := send(&edgev1.Command{Identity: ident, Event: "work"}, 10*time.Second)
	select {
	case <-started: // the only worker is busy
	case <-time.After(10 * time.Second):
		t.Fatal("first command did not start")
	}
	second := send(&edgev1.Command{Identity: ident, Event: "work"}, 10*time.Second)
	waitFor(t, func() bool { return len(s.queue) == 1 })
	// The queue is full: refused at once.
	t0 := time.Now()
	r, ok := <-send(&edgev1.Command{Identity: ident, Event: "work"}, 10*time.Second)
	if !ok || r.GetError().GetCode() != CodeUnavailable || r.GetError().GetRetryAfterMs() <= 0 {
		t.Fatalf("full queue: reply %v, want unavailable with retryAfterMs", r)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("refusal took %v, want at once", d)
	}
	// Already past its deadline on arrival: dropped, no reply, never run.
	if _, ok := <-send(&edgev1.Command{Identity: ident, Event: "work", DeadlineUnixMs: time.Now().Add(-time.Second).UnixMilli()}, 300*time.Millisecond); ok {
		t.Fatal("an expired command was answered")
	}
	waitFor(t, func() bool { return testutil.ToFloat64(s.shed.WithLabelValues("expired")) == 1 })
	close(release)
	for _, c := range []chan *edgev1.Reply{first, second} {
		if r, ok := <-c; !ok || r.GetError() != nil {
			t.Fatalf("queued command: %v", r)
		}
	}
	if n := b.ran.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2 (the expired command must not run)", n)
	}
}

// blocking is a started server whose "work" handler counts its runs, signals
// started and blocks until release is closed (close it before the test ends:
// the server is stopped at cleanup).
type blocking struct {
	s                *Server
	nc               *nats.Conn
	started, release chan struct{}
	ran              atomic.Int64
}

func startBlocking(t *testing.T, o Options) *blocking {
	t.Helper()
	b := &blocking{nc: natsConn(t), started: make(chan struct{}, 8), release: make(chan struct{})}
	b.s = New(b.nc, o)
	b.s.Handle("work", func(context.Context, *edgev1.Command) (*edgev1.Reply, error) {
		b.ran.Add(1)
		b.started <- struct{}{}
		<-b.release
		return OK(map[string]bool{"done": true})
	})
	if err := b.s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.s.Stop(ctx)
	})
	return b
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// A command that waited in the queue longer than MaxQueueDelay is refused
// without running: under a backlog, latency stays bounded for everyone.
func TestServer_RefusesCommandsQueuedTooLong(t *testing.T) {
	t.Parallel()
	blk := startBlocking(t, Options{Service: "slowq", Concurrency: 1, MaxQueue: 8, MaxQueueDelay: time.Millisecond})
	s, nc, started, release := blk.s, blk.nc, blk.started, blk.release
	b, _ := proto.Marshal(&edgev1.Command{Identity: &edgev1.Identity{UserId: "u"}, Event: "work"})
	replies := make(chan *edgev1.Reply, 2)
	request := func() {
		m, err := nc.Request(subject.Command("slowq", "work"), b, 10*time.Second)
		var r edgev1.Reply
		if err == nil && proto.Unmarshal(m.Data, &r) == nil {
			replies <- &r
		}
	}
	go request()
	select {
	case <-started: // the first occupies the only worker
	case <-time.After(10 * time.Second):
		t.Fatal("first command did not start")
	}
	go request()
	waitFor(t, func() bool { return len(s.queue) == 1 })
	// Not synchronisation: the queued command must be older than MaxQueueDelay
	// when the worker takes it.
	time.Sleep(20 * time.Millisecond)
	close(release)
	var codes []string
	for range 2 {
		select {
		case r := <-replies:
			codes = append(codes, r.GetError().GetCode())
		case <-time.After(10 * time.Second):
			t.Fatal("missing reply")
		}
	}
	slices.Sort(codes)
	if codes[0] != "" || codes[1] != CodeUnavailable {
		t.Fatalf("codes = %q, want one ok and one unavailable", codes)
	}
	if n := blk.ran.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}

func TestExpiredPeeksTheDeadline(t *testing.T) {
	for _, c := range []struct {
		cmd  *edgev1.Command
		want bool
	}{
		{&edgev1.Command{Event: "x", Data: []byte(`{"a":1}`), DeadlineUnixMs: time.Now().Add(-time.Second).UnixMilli()}, true},
		{&edgev1.Command{Event: "x", Data: []byte(`{"a":1}`), DeadlineUnixMs: time.Now().Add(time.Minute).UnixMilli()}, false},
		{&edgev1.Command{Event: "x", Identity: &edgev1.Identity{UserId: "u"}}, false}, // no deadline
	} {
		b, _ := proto.Marshal(c.cmd)
		if got := expired(b); got != c.want {
			t.Errorf("expired(%v) = %v, want %v", c.cmd, got, c.want)
		}
	}
	if expired([]byte{0xff, 0xff}) {
		t.Error("garbage read as expired")
	}
}

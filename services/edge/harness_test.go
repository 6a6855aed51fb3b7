package edge_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/edge"
)

const secret = "test-secret-0123456789abcdef"

// startNATS runs an in-process NATS server for one test.
func startNATS(t testing.TB) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func natsConn(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type harness struct {
	t      testing.TB
	ns     *natsserver.Server
	nc     *nats.Conn // the test's own connection (responders, publishers)
	edge   *edge.Server
	cfg    edge.Config
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	took   time.Duration
}

func testLogger() *slog.Logger {
	if os.Getenv("EDGE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startEdge runs an edge on loopback ports against a fresh NATS server.
func startEdge(t testing.TB, mod func(*edge.Config)) *harness {
	t.Helper()
	ns := startNATS(t)
	return startEdgeOn(t, ns, mod)
}

func startEdgeOn(t testing.TB, ns *natsserver.Server, mod func(*edge.Config)) *harness {
	t.Helper()
	cfg := edge.Config{
		NATS:      service.NATS{URL: ns.ClientURL()},
		AdminAddr: "127.0.0.1:0", Addr: "127.0.0.1:0",
		JWTSecret: secret, ConnectBurst: 1000, ConnectRate: 1000,
		DrainWindow: time.Second, WriteTimeout: 2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := edge.New(cfg, testLogger())
	if err != nil {
		t.Fatalf("edge.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, ns: ns, nc: natsConn(t, ns.ClientURL()), edge: srv, cfg: cfg, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-h.done:
		t.Fatalf("edge.Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("edge not ready")
	}
	t.Cleanup(func() { h.stop() })
	return h
}

// stop cancels the edge and waits for Run to return.
func (h *harness) stop() time.Duration {
	h.once.Do(h.doStop)
	return h.took
}

func (h *harness) doStop() {
	start := time.Now()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("edge.Run: %v", err)
		}
	case <-time.After(h.cfg.DrainWindow + 15*time.Second):
		h.t.Errorf("edge did not stop")
	}
	h.took = time.Since(start)
}

func (h *harness) wsURL() string   { return "ws://" + h.edge.Addr() + "/ws" }
func (h *harness) httpURL() string { return "http://" + h.edge.Addr() }

func (h *harness) token(user string, ttl time.Duration) string {
	return tokenFor(h.t, user, ttl)
}

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

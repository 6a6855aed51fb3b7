package edge

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/command"
)

// Start-up gate. An edge that accepted sockets before the services it forwards to
// answered would answer a client's first join with `unavailable` (issue 15), so Run
// opens the WebSocket port only after every service in Config.Upstreams has answered
// a talim.health.v1.<service> request with ready=true. Until then the admin
// /readyz reports the check "upstreams" failing (and "nats" while NATS is not
// connected), so a load balancer does not route to the edge either.
//
// The gate holds once: after start-up, a service that stops answering does not
// flip the edge unready. Taking every edge out of the load balancer because one
// service is down would turn a partial outage into a total one; instead each command
// to the missing service is answered `unavailable` (docs/protocol.md "Errors").

// upstreamPoll is how often the gate asks the services while it waits; one request
// waits at most upstreamTimeout.
const (
	upstreamPoll    = 100 * time.Millisecond
	upstreamTimeout = time.Second
	upstreamLogEach = 10 * time.Second
)

// upstreamGate waits for the upstream services and records that it has.
type upstreamGate struct {
	services []string
	open     atomic.Bool

	mu      sync.Mutex
	waiting []string // services not yet seen ready, for /readyz
}

func newUpstreamGate(services []string) *upstreamGate {
	g := &upstreamGate{services: services, waiting: append([]string(nil), services...)}
	if len(services) == 0 {
		g.open.Store(true)
	}
	return g
}

// check is the readiness check "upstreams".
func (g *upstreamGate) check(context.Context) error {
	if g.open.Load() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Errorf("waiting for %s", strings.Join(g.waiting, ", "))
}

// wait asks every service not yet seen ready for its health until all have answered
// ready, or ctx ends (then it returns ctx.Err()).
func (g *upstreamGate) wait(ctx context.Context, nc *nats.Conn, logf func(msg string, args ...any)) error {
	pending := append([]string(nil), g.services...)
	lastLog := time.Now()
	for len(pending) > 0 {
		var still []string
		for _, svc := range pending {
			if !askReady(ctx, nc, svc) {
				still = append(still, svc)
			}
		}
		pending = still
		g.mu.Lock()
		g.waiting = append([]string(nil), pending...)
		g.mu.Unlock()
		if len(pending) == 0 {
			break
		}
		if time.Since(lastLog) >= upstreamLogEach {
			logf("waiting for services before accepting connections", "services", strings.Join(pending, ","))
			lastLog = time.Now()
		}
		t := time.NewTimer(upstreamPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	g.open.Store(true)
	return nil
}

// askReady reports whether one instance of svc answered its health request ready.
func askReady(ctx context.Context, nc *nats.Conn, svc string) bool {
	rctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	resp, err := command.RequestHealth(rctx, nc, svc)
	return err == nil && resp.GetReady()
}

package testkit

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Runner is a service as every Talim service package exposes it: Run serves until
// ctx ends, Ready is closed once it serves.
type Runner interface {
	Run(context.Context) error
	Ready() <-chan struct{}
}

// Start and stop bounds of Run.
const (
	ReadyTimeout = 60 * time.Second
	StopTimeout  = 30 * time.Second
)

// Proc is one running service started by Run.
type Proc struct {
	name   string
	t      testing.TB
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	took   time.Duration
}

// Run starts svc.Run and returns once svc is ready; it fails the test when Run
// returns first or ReadyTimeout passes. The service stops at cleanup (Stop).
// This is the one run/ready/cancel harness of the services' tests.
func Run(t testing.TB, name string, svc Runner) *Proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proc{name: name, t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- svc.Run(ctx) }()
	select {
	case <-svc.Ready():
	case err := <-p.done:
		cancel()
		t.Fatalf("%s stopped before it was ready: %v", name, err)
	case <-time.After(ReadyTimeout):
		cancel()
		t.Fatalf("%s not ready within %v", name, ReadyTimeout)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

// Stop cancels the service and waits for Run to return (at most StopTimeout); an
// error from Run fails the test. Later calls do nothing. It returns how long the
// first call took.
func (p *Proc) Stop() time.Duration {
	p.once.Do(func() {
		start := time.Now()
		p.cancel()
		select {
		case err := <-p.done:
			if err != nil {
				p.t.Errorf("%s: %v", p.name, err)
			}
		case <-time.After(StopTimeout):
			p.t.Errorf("%s did not stop within %v", p.name, StopTimeout)
		}
		p.took = time.Since(start)
	})
	return p.took
}

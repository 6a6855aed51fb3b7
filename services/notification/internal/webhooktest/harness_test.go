package webhooktest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/webhook"
	webhookv1 "github.com/talim/realtime/proto/talim/webhook/v1"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// clock is an injected clock the test moves forward.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time                  { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration)         { c.ns.Add(int64(d)) }
func (c *clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// fault decides how the receiver answers one attempt (n counts attempts from 1).
type fault func(n int, id string) int

// faultHang makes the receiver hold the request until the sender gives up.
const faultHang = -1

// receiver is a loopback webhook endpoint that verifies every request.
type receiver struct {
	t      testing.TB
	secret atomic.Pointer[string]
	now    func() time.Time
	fault  atomic.Pointer[fault]

	mu        sync.Mutex
	attempts  int
	inflight  int
	maxFlight int
	accepted  []string          // webhook-ids answered 2xx, in order
	bodies    map[string]string // webhook-id -> body (must not change across attempts)
	seen      map[string]int    // webhook-id -> attempts
	sigs      map[string]string // webhook-id -> last webhook-signature
	bad       []string          // verification failures

	srv  *httptest.Server
	addr string
	down atomic.Bool
}

func newReceiver(t testing.TB, secret string, now func() time.Time) *receiver {
	r := &receiver{t: t, now: now, bodies: map[string]string{}, seen: map[string]int{}, sigs: map[string]string{}}
	r.secret.Store(&secret)
	ok := fault(func(int, string) int { return http.StatusNoContent })
	r.fault.Store(&ok)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.addr = r.srv.Listener.Addr().String()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) URL() string { return "http://" + r.addr + "/hooks" }

func (r *receiver) setFault(f fault) { r.fault.Store(&f) }

// stop closes the listener: connections are refused until start.
func (r *receiver) stop() {
	r.down.Store(true)
	r.srv.Listener.Close()
}

// start listens again on the same address.
func (r *receiver) start() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("receiver relisten on %s: %v", r.addr, err)
	}
	go func() { _ = http.Serve(ln, http.HandlerFunc(r.serve)) }()
	r.t.Cleanup(func() { ln.Close() })
	r.down.Store(false)
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := req.Header.Get(webhook.HeaderID)
	r.mu.Lock()
	r.attempts++
	n := r.attempts
	r.inflight++
	r.maxFlight = max(r.maxFlight, r.inflight)
	if err := webhook.Verify(*r.secret.Load(), req.Header, body, r.now(), webhook.DefaultTolerance); err != nil {
		r.bad = append(r.bad, id+": "+err.Error())
	}
	if prev, ok := r.bodies[id]; ok && prev != string(body) {
		r.bad = append(r.bad, id+": body changed between attempts")
	}
	r.bodies[id] = string(body)
	r.seen[id]++
	r.sigs[id] = req.Header.Get(webhook.HeaderSignature)
	r.mu.Unlock()
	defer func() { r.mu.Lock(); r.inflight--; r.mu.Unlock() }()

	code := (*r.fault.Load())(n, id)
	if code == faultHang {
		<-req.Context().Done() // the sender's timeout ends it
		return
	}
	if code >= 200 && code <= 299 {
		r.mu.Lock()
		r.accepted = append(r.accepted, id)
		r.mu.Unlock()
	}
	w.WriteHeader(code)
}

// firstDeliveries returns the accepted ids with duplicates removed, in order of
// first acceptance, and the number of duplicates.
func (r *receiver) firstDeliveries() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	dups := 0
	for _, id := range r.accepted {
		if seen[id] {
			dups++
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out, dups
}

func (r *receiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		r.t.Fatalf("receiver saw bad deliveries: %v", r.bad)
	}
}

// env is a webhook store on its own FerretDB database, the API over it and a
// producer.
type env struct {
	st  *webhook.Store
	api *webhook.API
	p   *webhook.Producer
	clk *clock
}

func newEnv(t testing.TB, clk *clock) *env {
	t.Helper()
	_, db := testkit.MongoClient(t)
	st := webhook.NewStore(db)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	p := webhook.NewProducer(st, time.Hour)
	api := webhook.NewAPI(webhook.Config{AllowPrivate: true}, p, nil)
	api.SetStore(st)
	if clk != nil {
		api.SetClock(clk.Now)
		p.SetClock(clk.Now)
	}
	return &env{st: st, api: api, p: p, clk: clk}
}

func (e *env) subscribe(t testing.TB, url string, types ...string) (*webhookv1.Subscription, string) {
	t.Helper()
	res, err := e.api.CreateSubscription(context.Background(), &webhookv1.CreateSubscriptionRequest{Url: url, EventTypes: types})
	if err != nil {
		t.Fatalf("create subscription: %v", err)
	}
	return res.GetSubscription(), res.GetSecret()
}

// publish produces n message.created events one after another and returns their ids.
func (e *env) publish(t testing.TB, from, n int) []string {
	t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		key := "m_" + itoa(i)
		if err := e.p.Publish(context.Background(), webhook.Event{Type: webhook.MessageCreated, Key: key, Time: e.now(),
			Data: map[string]any{"messageId": key, "seq": i}}); err != nil {
			t.Fatalf("publish %s: %v", key, err)
		}
		ids = append(ids, webhook.EventID(webhook.MessageCreated, key))
	}
	return ids
}

func (e *env) now() time.Time {
	if e.clk != nil {
		return e.clk.Now()
	}
	return time.Now()
}

func itoa(i int) string { return string(rune('a'+i/26%26)) + string(rune('a'+i%26)) }

// dispatcher runs a dispatcher until the returned stop is called (or cleanup).
func startDispatcher(t testing.TB, o webhook.DispatcherOptions) (stop func()) {
	t.Helper()
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- webhook.NewDispatcher(o).Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("dispatcher: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("dispatcher did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// until advances clk by step every few milliseconds until cond holds, failing
// after timeout of real time. A nil clk only waits.
func until(t testing.TB, clk *clock, step time.Duration, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if clk != nil {
			clk.Advance(step)
		}
		time.Sleep(2 * time.Millisecond) // pacing of the injected clock, not synchronisation
	}
}

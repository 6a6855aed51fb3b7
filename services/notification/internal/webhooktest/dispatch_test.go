package webhooktest_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/webhook"
	webhookv1 "github.com/talim/realtime/proto/talim/webhook/v1"
)

// fastCfg polls often and times out quickly; backoff and ages use the injected clock.
func fastCfg() webhook.Config {
	return webhook.Config{AllowPrivate: true, Poll: 5 * time.Millisecond, Timeout: 300 * time.Millisecond,
		Lease: time.Hour, MaxAttempts: 1000, MaxAge: 72 * time.Hour}
}

func assertOrder(t *testing.T, r *receiver, want []string) {
	t.Helper()
	got, dups := r.firstDeliveries()
	if !slices.Equal(got, want) {
		t.Fatalf("first deliveries (%d):\n%v\nwant (%d):\n%v", len(got), got, len(want), want)
	}
	t.Logf("%d events delivered in order, %d duplicate deliveries, %d attempts", len(got), dups, r.attempts)
}

func outboxEmpty(t *testing.T, e *env, sub string) func() bool {
	return func() bool {
		p, err := e.st.Pending(context.Background(), sub)
		return err == nil && len(p) == 0
	}
}

// A receiver that answers 500s, times out, and is down (connection refused) for a
// minute of the injected clock gets every event, in production order, each
// verified, with the same webhook-id and body on every attempt.
func TestDispatcher_ReceiverFaults_NoLossInOrder(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := newEnv(t, clk)
	r := newReceiver(t, "", clk.Now)
	sub, secret := e.subscribe(t, r.URL(), webhook.MessageCreated)
	r.secret.Store(&secret)

	t0 := clk.Now()
	r.setFault(func(n int, _ string) int {
		switch {
		case clk.Since(t0) >= time.Minute:
			return http.StatusOK
		case n%3 == 0:
			return faultHang
		default:
			return http.StatusInternalServerError
		}
	})
	want := e.publish(t, 0, 10)
	stop := startDispatcher(t, webhook.DispatcherOptions{Store: e.st, Config: fastCfg(), Now: clk.Now})
	// Fail a few attempts with 500s and timeouts, then go down.
	until(t, clk, 200*time.Millisecond, 20*time.Second, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.attempts >= 4 }, "failed attempts")
	r.stop()
	want = append(want, e.publish(t, 10, 10)...)
	until(t, clk, time.Second, 20*time.Second, func() bool { return clk.Since(t0) >= 70*time.Second }, "a minute down")
	r.start()
	until(t, clk, time.Second, 30*time.Second, func() bool { got, _ := r.firstDeliveries(); return len(got) == len(want) }, "all deliveries")
	until(t, nil, 0, 10*time.Second, outboxEmpty(t, e, sub.GetId()), "an empty outbox")
	stop()
	r.check()
	assertOrder(t, r, want)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.maxFlight > 1 {
		t.Fatalf("%d requests in flight at once for one subscription, want 1", r.maxFlight)
	}
}

// Stopping the dispatcher in the middle of retries and starting another one loses
// nothing and keeps the order; the new one takes over the released lease at once.
func TestDispatcher_RestartMidRetry_LosesNothing(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := newEnv(t, clk)
	r := newReceiver(t, "", clk.Now)
	sub, secret := e.subscribe(t, r.URL(), webhook.MessageCreated)
	r.secret.Store(&secret)
	r.setFault(func(int, string) int { return http.StatusServiceUnavailable })
	want := e.publish(t, 0, 8)
	stop := startDispatcher(t, webhook.DispatcherOptions{Store: e.st, Config: fastCfg(), Now: clk.Now, Owner: "first"})
	until(t, clk, time.Second, 20*time.Second, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.attempts >= 3 }, "retries")
	stop()
	p, err := e.st.Pending(context.Background(), sub.GetId())
	if err != nil || len(p) != len(want) || p[0].Attempts == 0 {
		t.Fatalf("after stop: %d pending (want %d), first attempts %d, err %v", len(p), len(want), p[0].Attempts, err)
	}
	r.setFault(func(int, string) int { return http.StatusOK })
	startDispatcher(t, webhook.DispatcherOptions{Store: e.st, Config: fastCfg(), Now: clk.Now, Owner: "second"})
	until(t, clk, time.Second, 30*time.Second, func() bool { got, _ := r.firstDeliveries(); return len(got) == len(want) }, "deliveries after restart")
	r.check()
	assertOrder(t, r, want)
	r.mu.Lock()
	n := r.seen[want[0]]
	r.mu.Unlock()
	if n < 4 {
		t.Fatalf("first event seen %d times, want its retries (>= 4) under one webhook-id", n)
	}
}

// Two dispatchers on one store share the work through the lease: per subscription
// one request in flight, order kept, across several subscriptions.
func TestDispatcher_TwoInstances_OneInFlightPerSubscription(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var rs []*receiver
	var subs []string
	for range 3 {
		r := newReceiver(t, "", time.Now)
		sub, secret := e.subscribe(t, r.URL(), webhook.MessageCreated)
		r.secret.Store(&secret)
		r.setFault(func(n int, _ string) int {
			if n%4 == 0 {
				return http.StatusBadGateway
			}
			return http.StatusOK
		})
		rs, subs = append(rs, r), append(subs, sub.GetId())
	}
	cfg := fastCfg()
	cfg.Lease = 5 * time.Second
	bo := webhook.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	startDispatcher(t, webhook.DispatcherOptions{Store: e.st, Config: cfg, Owner: "a", Backoff: bo})
	startDispatcher(t, webhook.DispatcherOptions{Store: e.st, Config: cfg, Owner: "b", Backoff: bo})
	want := e.publish(t, 0, 25)
	for i, r := range rs {
		until(t, nil, 0, 30*time.Second, func() bool { got, _ := r.firstDeliveries(); return len(got) == len(want) }, "deliveries to "+subs[i])
		r.check()
		assertOrder(t, r, want)
		r.mu.Lock()
		mf := r.maxFlight
		r.mu.Unlock()
		if mf > 1 {
			t.Fatalf("subscription %s: %d requests in flight at once", subs[i], mf)
		}
	}
}

// An event that keeps failing is dead-lettered after MaxAttempts; the events behind
// it are delivered afterwards; replay delivers it again under the same webhook-id.
func TestDispatcher_DeadLetterThenReplay(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := newEnv(t, clk)
	r := newReceiver(t, "", clk.Now)
	sub, secret := e.subscribe(t, r.URL(), webhook.MessageCreated)
	r.secret.Store(&secret)
	want := e.publish(t, 0, 3)
	poison := want[1]
	r.setFault(func(_ int, id string) int {
		if id == poison {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	cfg := fastCfg()
	cfg.MaxAttempts = 4
	startDispatcher(t, webhook.DispatcherOptions{Store: e.st, Config: cfg, Now: clk.Now})
	until(t, clk, 10*time.Second, 20*time.Second, func() bool { got, _ := r.firstDeliveries(); return len(got) == 2 }, "the events around the poison one")
	got, _ := r.firstDeliveries()
	if !slices.Equal(got, []string{want[0], want[2]}) {
		t.Fatalf("delivered %v, want %v", got, []string{want[0], want[2]})
	}
	r.mu.Lock()
	if r.seen[poison] != 4 {
		t.Errorf("poison attempts = %d, want 4", r.seen[poison])
	}
	r.mu.Unlock()
	ctx := context.Background()
	dl, err := e.api.ListDeadLetters(ctx, &webhookv1.ListDeadLettersRequest{SubscriptionId: sub.GetId()})
	if err != nil || len(dl.GetDeadLetters()) != 1 {
		t.Fatalf("dead letters = %v, %v", dl, err)
	}
	d := dl.GetDeadLetters()[0]
	if d.GetEventId() != poison || d.GetAttempts() != 4 || d.GetEventType() != webhook.MessageCreated || d.GetReason() == "" {
		t.Fatalf("dead letter = %+v", d)
	}
	r.setFault(func(int, string) int { return http.StatusOK })
	rep, err := e.api.ReplayDeadLetters(ctx, &webhookv1.ReplayDeadLettersRequest{SubscriptionId: sub.GetId(), EventIds: []string{poison}})
	if err != nil || rep.GetReplayed() != 1 {
		t.Fatalf("replay = %v, %v", rep, err)
	}
	until(t, clk, time.Second, 20*time.Second, func() bool { got, _ := r.firstDeliveries(); return len(got) == 3 }, "the replayed event")
	r.check()
	dl, err = e.api.ListDeadLetters(ctx, &webhookv1.ListDeadLettersRequest{SubscriptionId: sub.GetId()})
	if err != nil || len(dl.GetDeadLetters()) != 0 {
		t.Fatalf("dead letters after replay = %v, %v", dl, err)
	}
}

// 410 Gone dead-letters at once; MaxAge dead-letters an old failing entry.
func TestDispatcher_GoneAndMaxAge(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := newEnv(t, clk)
	r := newReceiver(t, "", clk.Now)
	sub, secret := e.subscribe(t, r.URL(), webhook.MessageCreated)
	r.secret.Store(&secret)
	want := e.publish(t, 0, 2)
	r.setFault(func(_ int, id string) int {
		if id == want[0] {
			return http.StatusGone
		}
		return http.StatusInternalServerError
	})
	cfg := fastCfg()
	cfg.MaxAge = time.Hour
	startDispatcher(t, webhook.DispatcherOptions{Store: e.st, Config: cfg, Now: clk.Now})
	until(t, clk, time.Minute, 20*time.Second, outboxEmpty(t, e, sub.GetId()), "both dead-lettered")
	dead, err := e.st.DeadLetters(context.Background(), sub.GetId(), 0)
	if err != nil || len(dead) != 2 {
		t.Fatalf("dead = %+v, %v", dead, err)
	}
	if dead[0].Attempts != 1 || dead[0].Reason[:3] != "410" {
		t.Errorf("gone entry: %+v", dead[0])
	}
	if dead[1].Attempts < 2 {
		t.Errorf("aged entry attempts = %d", dead[1].Attempts)
	}
}

// Rotation: during the grace period both secrets sign, a receiver holding either
// verifies; after it only the new one signs.
func TestRotateSecret_BothSignDuringGrace(t *testing.T) {
	t.Parallel()
	clk := newClock()
	e := newEnv(t, clk)
	r := newReceiver(t, "", clk.Now)
	sub, oldSecret := e.subscribe(t, r.URL(), webhook.MessageCreated)
	rot, err := e.api.RotateSecret(context.Background(), &webhookv1.RotateSecretRequest{Id: sub.GetId(), GraceSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	r.secret.Store(&oldSecret) // the receiver has not switched yet
	want := e.publish(t, 0, 1)
	startDispatcher(t, webhook.DispatcherOptions{Store: e.st, Config: fastCfg(), Now: clk.Now})
	until(t, nil, 0, 20*time.Second, func() bool { got, _ := r.firstDeliveries(); return len(got) == 1 }, "delivery during grace")
	r.check()
	newSecret := rot.GetSecret()
	r.secret.Store(&newSecret)
	clk.Advance(2 * time.Hour)
	want = append(want, e.publish(t, 1, 1)...)
	until(t, nil, 0, 20*time.Second, func() bool { got, _ := r.firstDeliveries(); return len(got) == 2 }, "delivery after grace")
	r.check()
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(strings.Fields(r.sigs[want[0]])); n != 2 {
		t.Errorf("during grace: %d signatures, want 2", n)
	}
	if n := len(strings.Fields(r.sigs[want[1]])); n != 1 {
		t.Errorf("after grace: %d signatures, want 1", n)
	}
}

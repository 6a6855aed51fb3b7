package push_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talim/realtime/services/notification/internal/push"
)

func note(topic string) push.Content {
	return push.Content{Kind: "notification", Category: "homework", Title: "Homework", Body: "Read chapter 3",
		SendKey: "k-" + topic, Topic: topic, Urgency: "high", TTLSec: 3600}
}

func TestPushOnlyToOfflineUsers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *push.Config) { c.Presence = fakePresence{"online": true} })
	h.subscribe("online", "b-online")
	h.subscribe("offline", "b-offline-1")
	h.subscribe("offline", "b-offline-2")
	if err := h.p.Enqueue(context.Background(), "f1", []string{"online", "offline", "no-subs"}, note("n:homework")); err != nil {
		t.Fatal(err)
	}
	h.drain(h.p)
	got := h.ep.received()
	if len(got) != 2 {
		t.Fatalf("got %d pushes, want 2 (both browsers of the offline user): %+v", len(got), got)
	}
	for _, r := range got {
		if !strings.HasPrefix(r.Path, "/b-offline-") {
			t.Errorf("push to %s", r.Path)
		}
		if r.Urgency != "high" || len(r.Topic) != 32 || r.TTL != "3600" {
			t.Errorf("headers: urgency %q topic %q ttl %q", r.Urgency, r.Topic, r.TTL)
		}
		if r.Payload.Title != "Homework" || r.Payload.Body != "Read chapter 3" || r.Payload.Count != 1 || r.Payload.Kind != "notification" {
			t.Errorf("payload %+v", r.Payload)
		}
	}
}

func TestGoneAndNotFoundRemoveTheSubscription(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusNotFound, http.StatusGone} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.subscribe("u1", "gone")
			h.subscribe("u1", "fine")
			h.ep.then(code, "")
			// One browser answers first; make the failing answer go to "gone" by
			// sending to it alone first.
			subs, _ := h.store.Subscriptions(context.Background(), "u1")
			if len(subs) != 2 {
				t.Fatalf("subs %d", len(subs))
			}
			if err := h.store.UpsertDeliver(context.Background(), "u1", subs[0].ID, note("t"), h.clk.Now(), time.Second); err != nil {
				t.Fatal(err)
			}
			h.drain(h.p)
			subs, _ = h.store.Subscriptions(context.Background(), "u1")
			if len(subs) != 1 || !strings.HasSuffix(subs[0].Endpoint, "/fine") {
				t.Fatalf("after %d: subscriptions %+v", code, subs)
			}
			if j, _ := h.store.Job(context.Background(), push.DeliverID(push.SubID(h.ep.srv.URL+"/gone"), "t")); j.Pending {
				t.Fatalf("job still pending: %+v", j)
			}
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.subscribe("u1", "b1")
	h.ep.then(http.StatusTooManyRequests, "5")
	if err := h.p.Enqueue(context.Background(), "f1", []string{"u1"}, note("t")); err != nil {
		t.Fatal(err)
	}
	h.drain(h.p)
	if n := h.ep.calls.Load(); n != 1 || len(h.ep.received()) != 0 {
		t.Fatalf("calls %d, received %d", n, len(h.ep.received()))
	}
	h.clk.Advance(4 * time.Second)
	h.drain(h.p)
	if n := h.ep.calls.Load(); n != 1 {
		t.Fatalf("retried before Retry-After: %d calls", n)
	}
	h.clk.Advance(1100 * time.Millisecond)
	h.drain(h.p)
	if got := h.ep.received(); len(got) != 1 {
		t.Fatalf("after Retry-After: %d pushes", len(got))
	}
}

func TestServerErrorsRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *push.Config) { c.MaxAttempts = 4 })
	ep := h.subscribe("u1", "b1")
	h.ep.then(500, "")
	h.ep.then(503, "")
	if err := h.p.Enqueue(context.Background(), "f1", []string{"u1"}, note("t")); err != nil {
		t.Fatal(err)
	}
	id := push.DeliverID(push.SubID(ep), "t")
	h.drain(h.p)
	j, _ := h.store.Job(context.Background(), id)
	if j.Attempts != 1 || !j.Pending || j.Due.Sub(h.clk.Now()) < time.Second {
		t.Fatalf("after one 500: %+v", j)
	}
	h.clk.Advance(1300 * time.Millisecond) // 1 s + up to 20 % jitter
	h.drain(h.p)
	j, _ = h.store.Job(context.Background(), id)
	if j.Attempts != 2 || j.Due.Sub(h.clk.Now()) < 2*time.Second {
		t.Fatalf("after the 503 the backoff doubles: %+v", j)
	}
	h.clk.Advance(2500 * time.Millisecond)
	h.drain(h.p)
	if got := h.ep.received(); len(got) != 1 || h.ep.calls.Load() != 3 {
		t.Fatalf("received %d after %d calls", len(got), h.ep.calls.Load())
	}
	// Past MaxAttempts the job is dropped.
	for range 4 {
		h.ep.then(500, "")
	}
	h.clk.Advance(time.Hour)
	if err := h.p.Enqueue(context.Background(), "f2", []string{"u1"}, note("t")); err != nil {
		t.Fatal(err)
	}
	for range 6 {
		h.drain(h.p)
		h.clk.Advance(time.Minute * 2)
	}
	if j, _ = h.store.Job(context.Background(), id); j.Pending || h.ep.calls.Load() != 7 {
		t.Fatalf("after MaxAttempts: pending %v, %d calls", j.Pending, h.ep.calls.Load())
	}
}

func TestRestartLosesNoQueuedPush(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *push.Config) { c.Lease = 10 * time.Second })
	h.subscribe("u1", "b1")
	h.subscribe("u2", "b2")
	// Instance A queues both and dies before sending; one job it had even claimed.
	if err := h.p.Enqueue(context.Background(), "f1", []string{"u1", "u2"}, note("t")); err != nil {
		t.Fatal(err)
	}
	jobs, err := h.store.Due(context.Background(), h.clk.Now(), 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("due %d %v", len(jobs), err)
	}
	if ok, err := h.store.Claim(context.Background(), &jobs[0], "A", h.clk.Now(), 10*time.Second); !ok || err != nil {
		t.Fatalf("claim %v %v", ok, err)
	}
	// Instance B (after the restart) waits for A's lease, then sends everything.
	b := h.pusher(func(c *push.Config) { c.Lease = 10 * time.Second })
	h.drain(b)
	if len(h.ep.received()) != 0 {
		t.Fatal("B took a job under A's lease")
	}
	h.clk.Advance(11 * time.Second)
	h.drain(b)
	if got := h.ep.received(); len(got) != 2 {
		t.Fatalf("after restart: %d pushes, want 2", len(got))
	}
}

func TestTwoInstancesSendEachJobOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var users []string
	for i := range 8 {
		u := "u" + string(rune('a'+i))
		h.subscribe(u, "b-"+u)
		users = append(users, u)
	}
	if err := h.p.Enqueue(context.Background(), "f1", users, note("t")); err != nil {
		t.Fatal(err)
	}
	h.drain(h.p) // fan out (and send some)
	b := h.pusher(nil)
	if err := h.p.Enqueue(context.Background(), "f2", users, note("t2")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, p := range []*push.Pusher{h.p, b} {
		wg.Go(func() {
			for range 10 {
				p.RunOnce(context.Background())
			}
		})
	}
	wg.Wait()
	h.drain(b)
	seen := map[string]int{}
	for _, r := range h.ep.received() {
		seen[r.Path+" "+r.Topic]++
	}
	if len(seen) != 16 {
		t.Fatalf("distinct pushes %d, want 16", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s pushed %d times", k, n)
		}
	}
}

func TestCollapseByTopic(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.subscribe("u1", "b1")
	ctx := context.Background()
	c := push.Content{Kind: "message", Category: "chat.direct", Title: "New message", Body: "m0", RoomID: "room-1", Topic: "r:room-1", TTLSec: 60}
	if err := h.p.Enqueue(ctx, "m0", []string{"u1"}, c); err != nil {
		t.Fatal(err)
	}
	h.drain(h.p)
	for i := 1; i <= 4; i++ {
		c.Body = "m" + string(rune('0'+i))
		if err := h.p.Enqueue(ctx, c.Body, []string{"u1"}, c); err != nil {
			t.Fatal(err)
		}
		h.clk.Advance(time.Second)
		h.drain(h.p)
	}
	if got := h.ep.received(); len(got) != 1 {
		t.Fatalf("within the interval: %d pushes, want 1", len(got))
	}
	h.clk.Advance(7 * time.Second)
	h.drain(h.p)
	got := h.ep.received()
	if len(got) != 2 {
		t.Fatalf("after the interval: %d pushes, want 2", len(got))
	}
	last := got[1].Payload
	if last.Count != 4 || last.Body != "m4" || last.RoomID != "room-1" || last.URL != "/?room=room-1" || got[0].Topic != got[1].Topic {
		t.Fatalf("collapsed push %+v (topics %q %q)", last, got[0].Topic, got[1].Topic)
	}
}

type gate struct {
	allowed   bool
	notBefore time.Time
	err       error
}

func (g *gate) Decide(context.Context, string, string, string, bool, time.Time) (bool, time.Time, error) {
	return g.allowed, g.notBefore, g.err
}

func TestGateDropsDelaysAndRetries(t *testing.T) {
	t.Parallel()
	g := &gate{}
	h := newHarness(t, func(c *push.Config) { c.Gate = g })
	h.subscribe("u1", "b1")
	ctx := context.Background()
	if err := h.p.Enqueue(ctx, "f1", []string{"u1"}, note("t")); err != nil {
		t.Fatal(err)
	}
	h.drain(h.p) // denied: dropped
	g.allowed, g.err = true, errors.New("preferences unavailable")
	if err := h.p.Enqueue(ctx, "f2", []string{"u1"}, note("t")); err != nil {
		t.Fatal(err)
	}
	h.drain(h.p) // error: retried later
	g.err, g.notBefore = nil, h.clk.Now().Add(time.Hour)
	h.clk.Advance(3 * time.Second)
	h.drain(h.p) // quiet hours: waits an hour
	if n := h.ep.calls.Load(); n != 0 {
		t.Fatalf("%d pushes before the gate allowed", n)
	}
	h.clk.Advance(time.Hour)
	h.drain(h.p)
	if got := h.ep.received(); len(got) != 1 {
		t.Fatalf("after quiet hours: %d pushes", len(got))
	}
}

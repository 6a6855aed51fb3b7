package edge_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/edge/edgetest"
)

func TestDrain(t *testing.T) {
	t.Parallel()
	h := startEdge(t, func(c *edge.Config) { c.DrainWindow = 2 * time.Second })
	var cs []*edgetest.Client
	for i := 0; i < 6; i++ {
		cs = append(cs, edgetest.Dial(t, h.wsURL(), h.token("u"+string(rune('a'+i)), time.Hour)))
	}
	adminReady := "http://" + h.edge.AdminAddr() + "/readyz"
	if s, body := httpGet(t, adminReady); s != 200 {
		t.Fatalf("admin readyz before drain: %d %s", s, body)
	}
	stopped := make(chan time.Duration, 1)
	go func() { stopped <- h.stop() }()

	// Readiness flips before anybody is closed.
	eventually(t, 2*time.Second, func() bool { s, _ := httpGet(t, h.httpURL()+"/readyz"); return s == 503 }, "main /readyz unready")
	if s, _ := httpGet(t, adminReady); s != 503 {
		t.Fatalf("admin readyz during drain: %d", s)
	}
	e := edgetest.DialRefused(t, h.wsURL(), h.token("late", time.Hour))
	if e.Status != http.StatusServiceUnavailable {
		t.Fatalf("dial during drain: %d %s", e.Status, e.Body)
	}
	var wg sync.WaitGroup
	closedAt := make([]time.Duration, len(cs))
	start := time.Now()
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-c.Done()
			closedAt[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, c := range cs {
		if ce := c.CloseErr(); ce == nil || ce.Code != 1012 {
			t.Fatalf("client %d closed with %v", i, ce)
		}
	}
	var first, last time.Duration = time.Hour, 0
	for _, d := range closedAt {
		first, last = min(first, d), max(last, d)
	}
	if last > 3*time.Second || last-first < 500*time.Millisecond {
		t.Fatalf("closes not spread over the window: first %v last %v", first, last)
	}
	select {
	case d := <-stopped:
		if d > 2*time.Second+5*time.Second {
			t.Fatalf("Run took %v to return", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

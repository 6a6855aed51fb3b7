package talim

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/command"
)

func startTestStack(t *testing.T, dir string) *Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := StartStack(ctx, StackConfig{DataDir: dir, DevMode: true, Seed: true})
	if err != nil {
		t.Fatalf("StartStack: %v", err)
	}
	return st
}

// TestStack_AllServicesReady boots the whole system the way `talim dev` does and checks
// that every service reports ready over HTTP and answers a NATS health request.
func TestStack_AllServicesReady(t *testing.T) {
	dir := t.TempDir()
	st := startTestStack(t, dir)
	defer func() { _ = st.Close() }()

	for _, name := range []string{"edge", "chat", "notification", "presence"} {
		resp, err := http.Get("http://" + st.AdminAddrs[name] + "/readyz")
		if err != nil {
			t.Fatalf("%s readyz: %v", name, err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /readyz = %d %v, want 200", name, resp.StatusCode, body)
		}
		for _, path := range []string{"/healthz", "/metrics"} {
			resp, err := http.Get("http://" + st.AdminAddrs[name] + path)
			if err != nil {
				t.Fatalf("%s %s: %v", name, path, err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s = %d", name, path, resp.StatusCode)
			}
		}
	}

	nc, err := nats.Connect(st.NATSURL)
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	defer nc.Close()
	for _, name := range []string{"edge", "chat", "notification", "presence"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h, err := command.RequestHealth(ctx, nc, name)
		cancel()
		if err != nil {
			t.Fatalf("health of %s over NATS: %v", name, err)
		}
		if h.GetService() != name || !h.GetReady() || h.GetInstanceId() == "" {
			t.Errorf("health of %s = %+v, want ready with an instance id", name, h)
		}
	}

	stopped := make(chan error, 1)
	go func() { stopped <- st.Close() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close took longer than 10s")
	}

	// A second start on the same data directory reopens the same data and secrets.
	st2 := startTestStack(t, dir)
	defer func() { _ = st2.Close() }()
	if st2.JWTSecret != st.JWTSecret || st2.ServiceToken != st.ServiceToken {
		t.Fatal("secrets were not kept in the data directory")
	}
}

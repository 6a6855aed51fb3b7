package admin

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/talim/realtime/pkg/logging"
)

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestServer_ReadinessFollowsChecksAndDrain(t *testing.T) {
	t.Parallel()
	s := New(logging.Discard())
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	base := "http://" + s.Addr()
	var storeDown bool
	s.AddCheck("store", func(context.Context) error {
		if storeDown {
			return errors.New("down")
		}
		return nil
	})
	if c := get(t, base+"/readyz"); c != 200 {
		t.Fatalf("readyz = %d", c)
	}
	storeDown = true
	if c := get(t, base+"/readyz"); c != 503 {
		t.Fatalf("readyz with a failing check = %d", c)
	}
	storeDown = false
	s.SetDraining()
	if c := get(t, base+"/readyz"); c != 503 {
		t.Fatalf("readyz while draining = %d", c)
	}
	if c := get(t, base+"/healthz"); c != 200 {
		t.Fatalf("healthz = %d", c)
	}
	if c := get(t, base+"/metrics"); c != 200 {
		t.Fatalf("metrics = %d", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPprofOnlyWhenEnabled: the profiling endpoints are off by default and served
// with TALIM_ADMIN_PPROF=true.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want int
	}{{"", http.StatusNotFound}, {"false", http.StatusNotFound}, {"true", http.StatusOK}} {
		t.Run("TALIM_ADMIN_PPROF="+tc.env, func(t *testing.T) {
			t.Setenv("TALIM_ADMIN_PPROF", tc.env)
			t.Setenv("TALIM_DEV_MODE", "")
			s := New(logging.Discard())
			if err := s.Listen("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx) }()
			if c := get(t, "http://"+s.Addr()+"/debug/pprof/cmdline"); c != tc.want {
				t.Fatalf("/debug/pprof/cmdline = %d, want %d", c, tc.want)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRunPolling_RefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    PollingOptions
		want string
	}{
		{"not loopback", PollingOptions{URL: "http://10.0.0.1:8080"}, "only loopback"},
		{"not a URL", PollingOptions{URL: "::"}, "not a URL"},
		{"too many sessions", PollingOptions{URL: "http://127.0.0.1:1", Conns: 2001}, "want 1..2000"},
		{"negative sessions", PollingOptions{URL: "http://127.0.0.1:1", Conns: -1}, "want 1..2000"},
		{"rate too high", PollingOptions{URL: "http://127.0.0.1:1", Rate: 5001}, "want 0..5000"},
		{"too long", PollingOptions{URL: "http://127.0.0.1:1", Duration: 3 * time.Minute}, "over 2m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RunPolling(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RunPolling(%+v) = %v, want an error with %q", tc.o, err, tc.want)
			}
		})
	}
}

func TestRunPolling_NoEdge(t *testing.T) {
	// Nothing listens on port 1: the first session fails with a clear error.
	_, err := RunPolling(context.Background(), PollingOptions{URL: "http://127.0.0.1:1", Conns: 1, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "first session") {
		t.Fatalf("err = %v", err)
	}
	if errors.Is(err, ErrNotLoopback) {
		t.Fatal("loopback refused")
	}
}

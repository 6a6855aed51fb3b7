package bench_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/services/talim"
	"github.com/talim/realtime/services/talim/internal/bench"
)

// TestRun_Smoke runs the rooms scenario end to end at tiny sizes against an
// in-process stack (SQLite store), with the workers as goroutines.
func TestRun_Smoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	env := map[string]string{}
	for _, kv := range bench.ChildEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	st, err := talim.StartStack(ctx, talim.StackConfig{DataDir: t.TempDir(),
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	target := &bench.Target{WSURL: st.WSURL, GRPCAddr: st.GRPCAddr, JWTSecret: st.JWTSecret, ServiceToken: st.ServiceToken,
		EdgePID: os.Getpid(), ServicesPID: os.Getpid()}
	res, err := bench.Run(ctx, bench.Options{Scenario: bench.Rooms, Rooms: 4, RoomSize: 3, Rate: 40, Duration: 2 * time.Second,
		Target: target, InProcess: true, Timeout: 80 * time.Second})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	m := res.Messages
	t.Logf("reached %d, sent %d, acked %d, stored %d, delivered %d/%d, lost %d, dup %d, e2e p99 %.1f ms",
		res.Connections.Reached, m.Sent, m.Acked, m.Stored, m.Delivered, m.Expected, m.Lost, m.Duplicated, res.E2E.P99)
	if res.Connections.Reached != 12 || res.Connections.Joined != 12 {
		t.Errorf("connections %+v", res.Connections)
	}
	if m.Sent != 80 || m.Acked != 80 || m.Stored != 80 {
		t.Errorf("sent/acked/stored %d/%d/%d, want 80", m.Sent, m.Acked, m.Stored)
	}
	if m.Expected != 240 || m.Delivered != 240 || m.Lost != 0 || m.Duplicated != 0 {
		t.Errorf("deliveries %+v", m.Totals)
	}
	if res.E2E.N != 240 || res.Ack.N != 80 {
		t.Errorf("histograms: e2e %d, ack %d", res.E2E.N, res.Ack.N)
	}
	var b strings.Builder
	if err := res.WriteChart(&b); err != nil || !strings.Contains(b.String(), "<svg") {
		t.Errorf("chart: %v", err)
	}
}

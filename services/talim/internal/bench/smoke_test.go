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

// startStack starts an in-process stack (SQLite store) with the bench's limits and
// returns it as a bench target with its admin addresses.
func startStack(ctx context.Context, t *testing.T) *bench.Target {
	t.Helper()
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
	return &bench.Target{WSURL: st.WSURL, GRPCAddr: st.GRPCAddr, JWTSecret: st.JWTSecret, ServiceToken: st.ServiceToken,
		EdgePID: os.Getpid(), ServicesPID: os.Getpid(), EdgeAdmin: st.AdminAddrs["edge"],
		ServicesAdmin: map[string]string{"chat": st.AdminAddrs["chat"], "notification": st.AdminAddrs["notification"], "presence": st.AdminAddrs["presence"]}}
}

// TestRun_Smoke runs the rooms scenario end to end at tiny sizes against an
// in-process stack (SQLite store), with the workers as goroutines, and a join probe
// 300 ms after the send phase.
func TestRun_Smoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	target := startStack(ctx, t)
	res, err := bench.Run(ctx, bench.Options{Scenario: bench.Rooms, Rooms: 4, RoomSize: 3, Rate: 40, Duration: 2 * time.Second,
		ProbeAfter: 300 * time.Millisecond, ProbeConns: 5, Target: target, InProcess: true, Timeout: 80 * time.Second})
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
	if res.Join == nil || res.Join.N != 12 {
		t.Errorf("join latency %+v, want 12 joins", res.Join)
	}
	if p := res.Probe; p == nil || p.OK != 5 || p.Failed != 0 || p.Latency.N != 5 || p.Room != bench.ProbeFresh {
		t.Errorf("probe %+v, want 5 acknowledged first joins of the probe room", p)
	}
	if m.Unanswered != 0 || len(res.Refusals) != 0 {
		t.Errorf("unanswered %d, refusals %v", m.Unanswered, res.Refusals)
	}
	// The chat service's counters: one fan-out publish per delivery here (a
	// 3-member room, every member online), and some store operations per message.
	if v := res.Ratios["natsPublishesPerDelivery"]; v < 0.9 || v > 1.5 {
		t.Errorf("natsPublishesPerDelivery %v (ratios %v)", v, res.Ratios)
	}
	if res.Ratios["storeOpsPerMessage"] <= 0 || res.Ratios["edgeFramesOutPerDelivery"] <= 0 {
		t.Errorf("ratios %v", res.Ratios)
	}
	var b strings.Builder
	if err := res.WriteChart(&b); err != nil || !strings.Contains(b.String(), "<svg") {
		t.Errorf("chart: %v", err)
	}
}

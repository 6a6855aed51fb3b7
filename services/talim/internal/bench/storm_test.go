package bench_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/services/talim/internal/bench"
)

// TestRun_JoinStorm: every connection joins one open room (created without
// members) for the first time, 8 joins in flight per worker over 2 workers; with
// --profile the services' CPU profile of the join phase and the /metrics scrapes
// land in the directory (the edge shares the test's process: no second profile).
func TestRun_JoinStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	t.Setenv("TALIM_ADMIN_PPROF", "true") // read when the admin servers start
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	target := startStack(ctx, t)
	dir := t.TempDir()
	res, err := bench.Run(ctx, bench.Options{Scenario: bench.JoinStorm, Conns: 60, Workers: 2, JoinInflight: 8,
		Duration: time.Second, Profile: dir, Target: target, InProcess: true, Timeout: 80 * time.Second})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("joined %d in %.2fs (%.0f/s), join p50 %.1f ms p99 %.1f ms, ratios %v, problems %v",
		res.Connections.Joined, res.JoinSeconds, res.JoinsPerSec, res.Join.P50, res.Join.P99, res.Ratios, res.Problems)
	if res.Connections.Reached != 60 || res.Connections.Joined != 60 || res.Connections.JoinFailed != 0 {
		t.Errorf("connections %+v", res.Connections)
	}
	if res.Join == nil || res.Join.N != 60 || res.JoinsPerSec <= 0 {
		t.Errorf("join latency %+v, %v joins/s", res.Join, res.JoinsPerSec)
	}
	if len(res.Refusals) != 0 {
		t.Errorf("refusals %v", res.Refusals)
	}
	if res.Ratios["storeOpsPerJoin"] <= 0 {
		t.Errorf("ratios %v (counters %v)", res.Ratios, res.Counters)
	}
	if fi, err := os.Stat(filepath.Join(dir, "services.pprof")); err != nil || fi.Size() == 0 {
		t.Errorf("services.pprof: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "edge.pprof")); err == nil {
		t.Error("edge.pprof written for an edge in the services' process")
	}
	for _, f := range []string{"services-metrics.txt", "edge-metrics.txt"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.Contains(string(b), "talim_") {
			t.Errorf("%s: %v", f, err)
		}
	}
	if res.Profiles["services"] == "" || len(res.Problems) != 0 {
		t.Errorf("profiles %v, problems %v", res.Profiles, res.Problems)
	}
}

// TestRun_ReconnectStorm: the drop arrives a third into the send phase and every
// dropped client reconnects while messages are still being sent (before the fix the
// worker handled the drop only after its send phase); every one is counted as
// reconnected and rejoined.
func TestRun_ReconnectStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	target := startStack(ctx, t)
	res, err := bench.Run(ctx, bench.Options{Scenario: bench.ReconnectStorm, Rooms: 3, RoomSize: 4, Rate: 30,
		Duration: 4 * time.Second, DropWindow: 300 * time.Millisecond, Target: target, InProcess: true, Timeout: 80 * time.Second})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	m := res.Messages
	t.Logf("reconnected %d (%d during send), rejoined %d (%d during send), sent %d, acked %d, lost %d, recovered %d, errors %v, rejoin %+v, closes %v, send %.2fs",
		m.Reconnected, m.ReconnectedInSend, m.Rejoined, m.RejoinedInSend, m.Sent, m.Acked, m.Lost, m.Recovered, res.Errors, res.Rejoin, res.Closes, res.SendSeconds)
	t.Logf("other %v refusals %v connect %+v join %+v", res.Other, res.Refusals, res.Connections.Connect, res.Join)
	if m.Reconnected != 12 || m.Rejoined != 12 || m.ReconnectedInSend != 12 {
		t.Errorf("reconnected %d, rejoined %d, reconnected during the send phase %d: want 12 each", m.Reconnected, m.Rejoined, m.ReconnectedInSend)
	}
	if m.RejoinedInSend == 0 { // how many rejoins beat the end depends on the machine's load
		t.Error("no rejoin acknowledged during the send phase")
	}
	if res.Rejoin == nil || res.Rejoin.N != 12 {
		t.Errorf("reconnect → rejoin latency %+v", res.Rejoin)
	}
	// Lost is the system's figure, not asserted here: on a loaded machine some stored
	// messages are neither delivered live nor recovered by the resume (see the report).
	if m.Acked == 0 || m.Duplicated != 0 {
		t.Errorf("acked %d, duplicated %d", m.Acked, m.Duplicated)
	}
}

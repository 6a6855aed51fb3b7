package edge_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/services/edge/edgetest"
	"github.com/talim/realtime/services/edge/internal/loadclient"
)

// TestMemoryPerConnection measures the edge's RSS per idle authenticated connection.
// It builds cmd/edge, runs it as its own process against an in-process NATS server,
// opens TALIM_EDGE_MEMTEST connections (distinct users, from 127.0.0.2… so the
// client side does not run out of ports) from this process, and reads VmRSS of the
// edge from /proc. Run:
//
//	TALIM_EDGE_MEMTEST=10000 go test -run TestMemoryPerConnection -v -timeout 10m .
func TestMemoryPerConnection(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TALIM_EDGE_MEMTEST"))
	if n <= 0 {
		t.Skip("set TALIM_EDGE_MEMTEST=<connections> to run")
	}
	bin := filepath.Join(t.TempDir(), "edge")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/edge").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ns := startNATS(t)
	addr, admin := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"NATS_URL="+ns.ClientURL(), "TALIM_ADMIN_ADDR="+admin, "TALIM_EDGE_ADDR="+addr,
		"TALIM_JWT_SECRET="+secret, "TALIM_EDGE_CONNECT_RATE=100000", "TALIM_EDGE_CONNECT_BURST=100000",
		"TALIM_EDGE_PING_INTERVAL="+envOr("TALIM_EDGE_MEMTEST_PING", "10m"), "TALIM_LOG_LEVEL=warn",
		"TALIM_PRESENCE_HEARTBEAT=1h",
	)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	eventually(t, 20*time.Second, func() bool { s, _ := httpGet(t, "http://"+addr+"/readyz"); return s == 200 }, "edge ready")

	// Warm up: one connection, so lazily initialised state is in the baseline.
	warm, err := loadclient.Dial(context.Background(), addr, "", edgetest.Token(t, secret, "warmup", time.Hour), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	time.Sleep(time.Second)
	before := vmRSS(t, cmd.Process.Pid)

	var ips []string
	for i := 0; i < 8; i++ {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", i+2))
	}
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = edgetest.Token(t, secret, fmt.Sprintf("load-%d", i), 24*time.Hour)
	}
	start := time.Now()
	conns, err := loadclient.Open(context.Background(), loadclient.Options{
		Addr: addr, N: n, Token: func(i int) string { return tokens[i] }, LocalIPs: ips, PerIP: 2500,
	})
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		t.Fatalf("opened %d: %v", len(conns), err)
	}
	took := time.Since(start)
	time.Sleep(3 * time.Second) // let the edge settle (GC, flushers exit)
	after := vmRSS(t, cmd.Process.Pid)
	m := scrape(t, "http://"+admin+"/metrics")
	per := float64(after-before) / float64(len(conns))
	t.Logf("machine: %d CPUs, %s, %s", runtime.NumCPU(), cpuModel(), runtime.Version())
	t.Logf("connections: %d opened in %v (%.0f/s)", len(conns), took.Round(time.Millisecond), float64(len(conns))/took.Seconds())
	t.Logf("edge RSS: before %d KiB, after %d KiB: %.2f KiB per connection", before/1024, after/1024, per/1024)
	t.Logf("edge go_goroutines=%s heap_inuse=%s KiB stack_inuse=%s KiB talim_edge_connections=%s",
		m["go_goroutines"], kib(m["go_memstats_heap_inuse_bytes"]), kib(m["go_memstats_stack_inuse_bytes"]), m["talim_edge_connections"])
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func vmRSS(t *testing.T, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func scrape(t *testing.T, url string) map[string]string {
	_, body := httpGet(t, url)
	m := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			m[f[0]] = f[1]
		}
	}
	return m
}

func kib(v string) string {
	f, _ := strconv.ParseFloat(v, 64)
	return strconv.FormatFloat(f/1024, 'f', 0, 64)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			return strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
		}
	}
	return "unknown"
}

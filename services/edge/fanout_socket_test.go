package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge/edgetest"
	"github.com/talim/realtime/services/edge/internal/loadclient"
)

// TestFanoutSockets measures frames delivered to real sockets: an edge process (the
// cmd/edge binary, against an in-process NATS server) holds TALIM_EDGE_FANOUTTEST
// connections of as many users, all members of one room; a publisher in this process
// sends TALIM_EDGE_FANOUTTEST_RATE room messages per second for
// TALIM_EDGE_FANOUTTEST_DURATION, each published once per member's user subject (as
// the chat service does), and the clients count and time every frame they read.
// TALIM_EDGE_FANOUTTEST_USERS=1 makes the connections one user's instead (one NATS
// message per room message: the edge's socket delivery alone). Run:
//
//	TALIM_EDGE_FANOUTTEST=1000 TALIM_EDGE_FANOUTTEST_RATE=100 go test -run TestFanoutSockets -v -timeout 10m .
//	TALIM_EDGE_FANOUTTEST=1000 TALIM_EDGE_FANOUTTEST_USERS=1 TALIM_EDGE_FANOUTTEST_RATE=500 go test -run TestFanoutSockets -v -timeout 10m .
//
// Everything shares the machine: edge, NATS, the publisher and 1,000 reading
// clients.
func TestFanoutSockets(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TALIM_EDGE_FANOUTTEST"))
	if n <= 0 {
		t.Skip("set TALIM_EDGE_FANOUTTEST=<connections> to run")
	}
	rate, _ := strconv.Atoi(envOr("TALIM_EDGE_FANOUTTEST_RATE", "100"))
	users, _ := strconv.Atoi(envOr("TALIM_EDGE_FANOUTTEST_USERS", strconv.Itoa(n)))
	if users <= 0 || users > n {
		users = n
	}
	dur, _ := time.ParseDuration(envOr("TALIM_EDGE_FANOUTTEST_DURATION", "10s"))
	if n > 15000 || rate <= 0 || rate > 100000 || dur <= 0 || dur > 5*time.Minute {
		t.Fatal("bounded: at most 15,000 connections, 100,000 msg/s, 5 minutes")
	}
	bin := buildEdge(t)
	ns := startNATS(t)
	addr, admin := freeAddr(t), freeAddr(t)
	edgeCmd := startEdgeProcess(t, bin, ns.ClientURL(), addr, admin,
		fmt.Sprintf("TALIM_EDGE_MAX_CONNS_PER_USER=%d", (n+users-1)/users))
	nc := natsConn(t, ns.ClientURL())

	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = edgetest.Token(t, secret, fmt.Sprintf("fan-%d", i%users), time.Hour)
	}
	conns, err := loadclient.Open(context.Background(), loadclient.Options{
		Addr: addr, N: n, Token: func(i int) string { return tokens[i] },
		LocalIPs: []string{"127.0.0.2", "127.0.0.3"}, PerIP: 8000,
	})
	if err != nil {
		t.Fatalf("opened %d: %v", len(conns), err)
	}
	var delivered atomic.Int64
	var firstNs, lastNs atomic.Int64
	lat := make([][]int64, n) // per connection, nanoseconds
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[i] = readFrames(c, &delivered, &firstNs, &lastNs)
		}()
	}

	subjects := make([]string, users)
	for i := range subjects {
		subjects[i] = subject.User(fmt.Sprintf("fan-%d", i))
	}
	pad := strings.Repeat("x", 60)
	cpu0 := procCPU(t, edgeCmd.Process.Pid)
	start := time.Now()
	total := int(float64(rate) * dur.Seconds())
	maxLag := time.Duration(0)
	for k := 0; k < total; k++ {
		due := start.Add(time.Duration(float64(k) / float64(rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else if -d > maxLag {
			maxLag = -d
		}
		out := &edgev1.Outbound{Event: "chat-message", Data: []byte(fmt.Sprintf(`{"t":%d,"seq":%d,"content":%q}`, time.Now().UnixNano(), k, pad))}
		b, _ := proto.Marshal(out)
		for _, s := range subjects {
			if err := nc.Publish(s, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = nc.Flush()
	sendTook := time.Since(start)
	expected := int64(total) * int64(n)
	deadline := time.Now().Add(30 * time.Second)
	for last := int64(-1); delivered.Load() < expected && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		if d := delivered.Load(); d == last {
			break // nothing more is coming
		} else {
			last = d
		}
	}
	cpu1 := procCPU(t, edgeCmd.Process.Pid)
	cpuSpan := time.Duration(lastNs.Load() - start.UnixNano())
	m := scrape(t, "http://"+admin+"/metrics")
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	var all []int64
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	q := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return time.Duration(all[min(len(all)-1, int(math.Ceil(p*float64(len(all))))-1)])
	}
	span := time.Duration(lastNs.Load() - firstNs.Load())
	got := delivered.Load()
	t.Logf("machine: %d CPUs, %s, %s", runtime.NumCPU(), cpuModel(), runtime.Version())
	t.Logf("%d connections of %d users, %d room messages at %d/s over %v (publisher lag max %v), each published to %d user subjects",
		n, users, total, rate, sendTook.Round(time.Millisecond), maxLag.Round(time.Millisecond), users)
	t.Logf("delivered %d of %d frames (lost %d) in %v: %.0f frames/s; e2e p50 %v p99 %v max %v",
		got, expected, expected-got, span.Round(time.Millisecond), float64(got)/span.Seconds(),
		q(0.5).Round(time.Microsecond), q(0.99).Round(time.Microsecond), q(1).Round(time.Microsecond))
	t.Logf("edge CPU %.0f%% of one core from the first publish to the last delivery (%.2f s); 4008 closes %s, queue drops %s",
		100*(cpu1-cpu0)/cpuSpan.Seconds(), cpu1-cpu0, m["talim_edge_slow_consumer_closes_total"], m["talim_edge_queue_drops_total"])
	if got < expected {
		t.Logf("WARNING: %d frames lost", expected-got)
	}
}

// readFrames counts the text frames of one client connection and returns the
// end-to-end latency of each (from the "t" field the publisher put in the data).
func readFrames(c net.Conn, delivered, firstNs, lastNs *atomic.Int64) []int64 {
	br := bufio.NewReaderSize(c, 4096)
	var lat []int64
	var hdr [8]byte
	buf := make([]byte, 0, 512)
	for {
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return lat
		}
		l := int(hdr[1] & 0x7f)
		switch l {
		case 126:
			if _, err := io.ReadFull(br, hdr[:2]); err != nil {
				return lat
			}
			l = int(hdr[0])<<8 | int(hdr[1])
		case 127:
			return lat
		}
		if cap(buf) < l {
			buf = make([]byte, l)
		}
		p := buf[:l]
		if _, err := io.ReadFull(br, p); err != nil {
			return lat
		}
		i := bytes.Index(p, []byte(`"t":`))
		if i < 0 {
			continue // connected, pings
		}
		j := i + 4
		var ts int64
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			ts = ts*10 + int64(p[j]-'0')
			j++
		}
		now := time.Now().UnixNano()
		lat = append(lat, now-ts)
		delivered.Add(1)
		firstNs.CompareAndSwap(0, now)
		lastNs.Store(now)
	}
}

// procCPU is the user+system CPU seconds of a process.
func procCPU(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

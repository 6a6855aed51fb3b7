package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/pkg/subject"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

// Load scenarios of issue 9 against the chat service alone (NATS request → ack):
//
//	BenchmarkRooms     2,000 rooms × 5 members, random senders (TALIM_BENCH_ROOMS, _ROOM_SIZE)
//	BenchmarkBigRoom   one 1,000-member room, 20 senders (TALIM_BENCH_MEMBERS)
//
// TALIM_BENCH_RATE > 0 runs open loop at that many sends/s (latency measured from
// each send's due time, so no coordinated omission); otherwise closed loop with
// TALIM_BENCH_CONC concurrent senders (default 256). b.N is the number of sends:
//
//	TALIM_TEST_MONGODB_URI=mongodb://127.0.0.1:27999/ TALIM_BENCH_RATE=1000 \
//	  go test -run '^$' -bench BenchmarkRooms -benchtime 15000x .

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// sendRaw sends one message like an edge and returns the ack error (nil on ok).
func (h *harness) sendRaw(userID, room, content, clientMsgID string) error {
	b, _ := json.Marshal(map[string]any{"roomId": room, "content": content, "clientMsgId": clientMsgID})
	cmd := &edgev1.Command{Identity: &edgev1.Identity{UserId: userID, DisplayName: userID},
		ConnectionId: "c-" + userID, EdgeId: "edge-bench", Event: "send-chat-message", Data: b,
		DeadlineUnixMs: time.Now().Add(5 * time.Second).UnixMilli()}
	pb, _ := proto.Marshal(cmd)
	m, err := h.nc.Request(subject.Command("chat", "send-chat-message"), pb, 6*time.Second)
	if err != nil {
		return err
	}
	var r edgev1.Reply
	if err := proto.Unmarshal(m.Data, &r); err != nil {
		return err
	}
	if r.GetError() != nil {
		return fmt.Errorf("%s: %s", r.GetError().GetCode(), r.GetError().GetMessage())
	}
	return nil
}

// createRooms creates n rooms of size members each (users <room>-m<i>), concurrently.
func (h *harness) createRooms(prefix string, n, size int) {
	h.t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var failed atomic.Value
	for r := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id := fmt.Sprintf("%s%d", prefix, r)
			req := &chatv1.CreateRoomRequest{RoomId: id, Name: id, Type: chatv1.RoomType_ROOM_TYPE_GROUP}
			for i := range size {
				req.Members = append(req.Members, &chatv1.Member{UserId: fmt.Sprintf("%s-m%d", id, i), Role: chatv1.Role_ROLE_MEMBER})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if _, err := h.admin.CreateRoom(ctx, req); err != nil {
				failed.Store(err)
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		h.t.Fatalf("create rooms: %v", err)
	}
}

type loadResult struct {
	acks   []time.Duration
	errors int64
	first  string
}

// drive sends n messages; pick returns (user, room) for send i. Open loop at rate
// (when > 0) or closed loop with conc senders.
func (h *harness) drive(n, rate, conc int, pick func(i int) (string, string)) (res loadResult, elapsed time.Duration) {
	var mu sync.Mutex
	var errs atomic.Int64
	record := func(d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs.Add(1)
			if res.first == "" {
				res.first = err.Error()
			}
			return
		}
		res.acks = append(res.acks, d)
	}
	run := fmt.Sprint(time.Now().UnixNano())
	start := time.Now()
	var wg sync.WaitGroup
	if rate > 0 {
		interval := time.Second / time.Duration(rate)
		for i := range n {
			due := start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			wg.Go(func() {
				u, r := pick(i)
				err := h.sendRaw(u, r, "b"+strconv.FormatInt(time.Now().UnixNano(), 10), run+"-"+strconv.Itoa(i))
				record(time.Since(due), err)
			})
		}
	} else {
		var next atomic.Int64
		for range conc {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					u, r := pick(i)
					t0 := time.Now()
					err := h.sendRaw(u, r, "b"+strconv.FormatInt(t0.UnixNano(), 10), run+"-"+strconv.Itoa(i))
					record(time.Since(t0), err)
				}
			})
		}
	}
	wg.Wait()
	res.errors = errs.Load()
	return res, time.Since(start)
}

func pct(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[int(p*float64(len(s)-1))].Microseconds()) / 1000
}

func reportLoad(b *testing.B, res loadResult, elapsed time.Duration) {
	b.ReportMetric(float64(len(res.acks))/elapsed.Seconds(), "acked-msgs/s")
	b.ReportMetric(pct(res.acks, .5), "ack-p50-ms")
	b.ReportMetric(pct(res.acks, .99), "ack-p99-ms")
	b.ReportMetric(pct(res.acks, 1), "ack-max-ms")
	b.ReportMetric(float64(res.errors), "errors")
	if res.errors > 0 {
		b.Logf("%d errors, first: %s", res.errors, res.first)
	}
}

// BenchmarkRooms: 2,000 rooms × 5 members, each send from a random member of a
// random room. All rooms are warmed with one message first (member cache and
// next seq), so the figures are the steady state.
func BenchmarkRooms(b *testing.B) {
	rooms, size := envInt("TALIM_BENCH_ROOMS", 2000), envInt("TALIM_BENCH_ROOM_SIZE", 5)
	h := newHarness(b, envInt("TALIM_BENCH_INSTANCES", 1))
	t0 := time.Now()
	h.createRooms("lr", rooms, size)
	b.Logf("created %d rooms × %d in %s", rooms, size, time.Since(t0).Round(time.Millisecond))
	warm, _ := h.drive(rooms, 0, 64, func(i int) (string, string) {
		r := fmt.Sprintf("lr%d", i)
		return r + "-m0", r
	})
	if warm.errors > 0 {
		b.Fatalf("warm-up: %d errors (%s)", warm.errors, warm.first)
	}
	before := h.settledOps()
	b.ResetTimer()
	res, elapsed := h.drive(b.N, envInt("TALIM_BENCH_RATE", 0), envInt("TALIM_BENCH_CONC", 256), func(i int) (string, string) {
		r := fmt.Sprintf("lr%d", rand.IntN(rooms))
		return fmt.Sprintf("%s-m%d", r, rand.IntN(size)), r
	})
	b.StopTimer()
	reportLoad(b, res, elapsed)
	ops, total := h.settledOps().sub(before)
	b.ReportMetric(float64(total)/float64(max(1, len(res.acks))), "store-ops/msg")
	b.Logf("store ops during the run: %v", ops)
}

// BenchmarkBigRoom: one 1,000-member room, 20 of them sending; every stored
// message is published to all members (counted on a wildcard subscription).
func BenchmarkBigRoom(b *testing.B) {
	members := envInt("TALIM_BENCH_MEMBERS", 1000)
	h := newHarness(b, 1)
	h.createRooms("big", 1, members)
	var deliveries atomic.Int64
	var dmu sync.Mutex
	var deliv []time.Duration
	nc, err := nats.Connect(h.natsURL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.Subscribe(subject.UserPrefix+">", func(m *nats.Msg) {
		var batch edgev1.Outbound
		if proto.Unmarshal(m.Data, &batch) != nil {
			return
		}
		items := flatten(&batch)
		deliveries.Add(int64(len(items)))
		if !strings.HasSuffix(m.Subject, fmt.Sprintf("big0-m%d", members-1)) {
			return
		}
		for _, ob := range items {
			if ob.GetEvent() != "chat-message" {
				continue
			}
			var ev struct{ Message message }
			if json.Unmarshal(ob.GetData(), &ev) != nil || !strings.HasPrefix(ev.Message.Content, "b") {
				continue
			}
			if ns, err := strconv.ParseInt(ev.Message.Content[1:], 10, 64); err == nil {
				dmu.Lock()
				deliv = append(deliv, time.Since(time.Unix(0, ns)))
				dmu.Unlock()
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	_ = nc.Flush()
	if err := h.sendRaw("big0-m0", "big0", "warm", "warm"); err != nil {
		b.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	deliveries.Store(0)
	before := h.settledOps()
	b.ResetTimer()
	start := time.Now()
	res, elapsed := h.drive(b.N, envInt("TALIM_BENCH_RATE", 0), envInt("TALIM_BENCH_CONC", 20), func(i int) (string, string) {
		return fmt.Sprintf("big0-m%d", i%20), "big0"
	})
	want := int64(len(res.acks)) * int64(members)
	deadline := time.Now().Add(30 * time.Second)
	for deliveries.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	all := time.Since(start)
	b.StopTimer()
	reportLoad(b, res, elapsed)
	b.ReportMetric(float64(deliveries.Load())/all.Seconds(), "deliveries/s")
	b.ReportMetric(float64(want-deliveries.Load()), "missing-deliveries")
	dmu.Lock()
	b.ReportMetric(pct(deliv, .5), "e2e-p50-ms")
	b.ReportMetric(pct(deliv, .99), "e2e-p99-ms")
	dmu.Unlock()
	ops, total := h.settledOps().sub(before)
	b.ReportMetric(float64(total)/float64(max(1, len(res.acks))), "store-ops/msg")
	b.Logf("store ops during the run: %v", ops)
}

// storeOps is the number of store operations by op, summed over the instances
// (talim_chat_store_seconds_count from their /metrics).
type storeOps map[string]int64

func (h *harness) storeOps() storeOps {
	out := storeOps{}
	for _, s := range h.svcs {
		resp, err := http.Get("http://" + s.AdminAddr() + "/metrics")
		if err != nil {
			h.t.Fatalf("metrics: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		for line := range strings.SplitSeq(string(body), "\n") {
			rest, ok := strings.CutPrefix(line, `talim_chat_store_seconds_count{op="`)
			if !ok {
				continue
			}
			op, val, _ := strings.Cut(rest, `"} `)
			n, _ := strconv.ParseFloat(val, 64)
			out[op] += int64(n)
		}
	}
	return out
}

func (o storeOps) sub(before storeOps) (storeOps, int64) {
	d := storeOps{}
	var total int64
	for op, n := range o {
		if n-before[op] > 0 {
			d[op] = n - before[op]
			total += n - before[op]
		}
	}
	return d, total
}

// Store operations per stored message in steady state (member cache warm, next
// seq known), with sends spread over many rooms at once: the write path must
// batch across rooms, so this stays well below one round trip per message.
func TestChat_StoreOpsPerMessage(t *testing.T) {
	h := newHarness(t, 1)
	rooms, size, n := 100, 5, 1000
	if os.Getenv(testkit.MongoURIEnv) == "" {
		// The embedded FerretDB (SQLite, in this process: slow under -race).
		rooms, n = 20, 200
	}
	h.createRooms("ops", rooms, size)
	warm, _ := h.drive(rooms, 0, 8, func(i int) (string, string) {
		r := fmt.Sprintf("ops%d", i)
		return r + "-m0", r
	})
	if warm.errors > 0 {
		t.Fatalf("warm-up: %s", warm.first)
	}
	before := h.settledOps()
	res, elapsed := h.drive(n, 0, min(n/4, 128), func(i int) (string, string) {
		r := fmt.Sprintf("ops%d", rand.IntN(rooms))
		return fmt.Sprintf("%s-m%d", r, rand.IntN(size)), r
	})
	ops, total := h.settledOps().sub(before)
	perMsg := float64(total) / float64(n)
	t.Logf("%d sends over %d rooms in %s: %.3f store ops per message %v", n, rooms, elapsed.Round(time.Millisecond), perMsg, ops)
	if res.errors > 0 || len(res.acks) != n {
		t.Fatalf("%d acked, %d errors (%s)", len(res.acks), res.errors, res.first)
	}
	if os.Getenv("TALIM_STORE_OPS_NO_ASSERT") == "" && perMsg > 1 {
		t.Errorf("%.2f store operations per message, want at most 1 (batched across rooms)", perMsg)
	}
	for _, op := range []string{"get_room", "room_roles", "get_member", "max_seq"} {
		if ops[op] > 0 {
			t.Errorf("steady state read %s %d times (member cache / next seq should answer)", op, ops[op])
		}
	}
}

// settledOps waits until the store operation counts stop moving (the summary
// writer is idle) and returns them.
func (h *harness) settledOps() storeOps {
	prev := h.storeOps()
	for range 100 {
		time.Sleep(100 * time.Millisecond)
		cur := h.storeOps()
		if _, d := cur.sub(prev); d == 0 {
			return cur
		}
		prev = cur
	}
	return prev
}

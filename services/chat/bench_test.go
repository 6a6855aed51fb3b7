package chat_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

// BenchmarkSend measures sustained send-chat-message throughput through NATS into
// the store (one chat instance, 4 rooms, 64 concurrent senders), with send→ack and
// send→delivery (chat-message on a member's subject) latency percentiles.
//
//	go test -run '^$' -bench BenchmarkSend -benchtime 3000x .
func BenchmarkSend(b *testing.B) {
	h := newHarness(b, 1)
	const rooms = 4
	for r := range rooms {
		h.room(fmt.Sprintf("bench%d", r), chatv1.RoomType_ROOM_TYPE_GROUP, "sender", "reader")
	}
	var sent sync.Map // message clientMsgId -> send start
	var deliv []time.Duration
	var dmu sync.Mutex
	sub, err := h.nc.Subscribe(subject.User("reader"), func(m *nats.Msg) {
		var batch edgev1.Outbound
		if proto.Unmarshal(m.Data, &batch) != nil {
			return
		}
		for _, ob := range flatten(&batch) {
			if ob.GetEvent() != "chat-message" {
				continue
			}
			var ev struct{ Message message }
			if json.Unmarshal(ob.GetData(), &ev) != nil {
				continue
			}
			if t0, ok := sent.Load(ev.Message.ClientMsgID); ok {
				dmu.Lock()
				deliv = append(deliv, time.Since(t0.(time.Time)))
				dmu.Unlock()
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	u := h.user("sender")
	var n atomic.Int64
	var lmu sync.Mutex
	var acks []time.Duration
	b.SetParallelism(32) // 32 × GOMAXPROCS senders
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id := fmt.Sprintf("b%d", i)
			t0 := time.Now()
			sent.Store(id, t0)
			u.send(fmt.Sprintf("bench%d", i%rooms), "benchmark message", id)
			d := time.Since(t0)
			lmu.Lock()
			acks = append(acks, d)
			lmu.Unlock()
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	pct := func(ds []time.Duration, p float64) float64 {
		if len(ds) == 0 {
			return 0
		}
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[int(p*float64(len(s)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(acks, .5), "ack-p50-ms")
	b.ReportMetric(pct(acks, .99), "ack-p99-ms")
	dmu.Lock()
	b.ReportMetric(pct(deliv, .5), "deliver-p50-ms")
	b.ReportMetric(pct(deliv, .99), "deliver-p99-ms")
	dmu.Unlock()
}

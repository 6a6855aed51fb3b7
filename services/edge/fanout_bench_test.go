package edge

import (
	"fmt"
	"net"
	"testing"
	"time"

	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge/internal/writer"
)

// discardConn is a net.Conn whose writes vanish.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) Close() error                     { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkFanout delivers one decoded Outbound to N local connections of a user
// (half of them joined the room, half get the alt event). The reported allocs/op are
// per Outbound; divide by N for allocations per delivered frame (each Outbound
// allocates its two shared frames, once whatever N).
//
//   - idle: every connection is idle when the Outbound arrives (the timer is
//     stopped while the flush goroutines finish), the normal case of live events;
//     each delivery starts one flush goroutine.
//   - saturated: Outbounds back to back, so writers are usually still flushing and
//     frames pile up in their queues (coalesced into one writev per flush).
func BenchmarkFanout(b *testing.B) {
	for _, mode := range []string{"idle", "saturated"} {
		for _, n := range []int{1, 10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/conns=%d", mode, n), func(b *testing.B) {
				benchFanout(b, n, mode == "idle")
			})
		}
	}
}

func benchFanout(b *testing.B, n int, idle bool) {
	s := &Server{}
	s.protos[protoNative] = Native{}
	s.wopts = writer.Options{MaxBytes: 1 << 30, MaxFrames: 1 << 30, WriteTimeout: time.Second}
	conns := make([]*Conn, n)
	for i := range conns {
		c := &Conn{s: s, id: fmt.Sprintf("c_%d", i), w: writer.New(discardConn{}, &s.wopts)}
		if i%2 == 0 {
			c.rooms = map[string]struct{}{"room-1": {}}
		}
		conns[i] = c
	}
	out := &edgev1.Outbound{
		Event: "chat-message", RoomId: "room-1", AltEvent: "room-updated",
		Data:    []byte(`{"message":{"id":"m_1","roomId":"room-1","seq":42,"senderId":"u1","content":"Hello!"}}`),
		AltData: []byte(`{"roomId":"room-1","lastSeq":42}`),
	}
	waitIdle := func() {
		for _, c := range conns {
			for c.w.Busy() {
				time.Sleep(time.Microsecond)
			}
		}
	}
	s.deliverOutbound(out, conns) // warm up: queue and writev arrays exist
	waitIdle()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.deliverOutbound(out, conns)
		if idle {
			b.StopTimer()
			waitIdle()
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/frame")
}

package pipeline

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/chat/internal/roster"
	"github.com/talim/realtime/services/chat/internal/store"
)

// recorder collects what the fan-out publishes, per subject, decoded.
type recorder struct {
	mu   sync.Mutex
	msgs map[string]int
	evs  map[string][]int64 // seqs per subject, in arrival order
	gate chan struct{}      // when set, Publish waits for it (to hold a round)
	in   chan struct{}      // when set, Publish signals it (non-blocking) on entry
}

func (r *recorder) publish(subj string, data []byte, _ map[string][]string) error {
	if r.in != nil {
		select {
		case r.in <- struct{}{}:
		default:
		}
	}
	if r.gate != nil {
		<-r.gate
	}
	var ob edgev1.Outbound
	if err := proto.Unmarshal(data, &ob); err != nil {
		return err
	}
	items := ob.GetBatch()
	if len(items) == 0 {
		items = []*edgev1.Outbound{&ob}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs[subj]++
	for _, it := range items {
		if len(it.GetBatch()) > 0 {
			return fmt.Errorf("nested batch")
		}
		r.evs[subj] = append(r.evs[subj], it.GetSeq())
	}
	return nil
}

func newRecorder() *recorder { return &recorder{msgs: map[string]int{}, evs: map[string][]int64{}} }

func roomOf(n int) *roster.Members {
	roles := map[string]string{}
	for i := range n {
		roles[fmt.Sprintf("u%d", i)] = store.RoleMember
	}
	return roster.NewState(store.Room{ID: "r"}, roles).Members()
}

func payload(t testing.TB, seq int64) []byte {
	b, err := proto.Marshal(&edgev1.Outbound{Event: "chat-message", RoomId: "r", Seq: seq, Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFanout_OrderBatchingAndExcept(t *testing.T) {
	for _, n := range []int{5, 1000} { // sequential and parallel shards
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			rec := newRecorder()
			rec.gate = make(chan struct{})
			ms := roomOf(n)
			f := NewFanout(FanoutOptions{Publish: rec.publish,
				Members: func(context.Context, string) (*roster.Members, error) { return ms, nil }})
			// The first round is held in Publish; everything enqueued meanwhile
			// must go out as one batch per member, in order.
			f.Enqueue("r", Delivery{Payload: payload(t, 1)})
			for s := int64(2); s <= 40; s++ {
				d := Delivery{Payload: payload(t, s)}
				if s == 7 {
					d.Except = "u0"
				}
				f.Enqueue("r", d)
			}
			close(rec.gate)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := f.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			f.Close(ctx)
			total := 0
			for i := range n {
				subj := "talim.user.v1." + fmt.Sprintf("u%d", i)
				got := rec.evs[subj]
				want := 40
				if i == 0 {
					want = 39
				}
				if len(got) != want {
					t.Fatalf("%s got %d events, want %d", subj, len(got), want)
				}
				for k := 1; k < len(got); k++ {
					if got[k] <= got[k-1] {
						t.Fatalf("%s out of order: %v", subj, got)
					}
				}
				if i == 0 {
					for _, s := range got {
						if s == 7 {
							t.Fatal("u0 got the event it was excepted from")
						}
					}
				}
				total += rec.msgs[subj]
			}
			// Round 1 alone, then everything else batched: in one round for a small
			// room, in rounds of at most BigRoomRound (16) events for a big one.
			rounds := 2
			if n >= f.o.BigRoom {
				rounds = 1 + (39+f.o.BigRoomRound-1)/f.o.BigRoomRound
			}
			if total > rounds*n {
				t.Fatalf("%d NATS messages for %d members × 40 events, want at most %d: batching did not happen", total, n, rounds*n)
			}
		})
	}
}

func TestFanout_BusyBoundsTheRoomBacklog(t *testing.T) {
	rec := newRecorder()
	rec.gate = make(chan struct{})
	ms := roomOf(3)
	rec.in = make(chan struct{}, 1)
	f := NewFanout(FanoutOptions{Publish: rec.publish, MaxRoomQueue: 10, MaxRoomDelay: time.Hour,
		Members: func(context.Context, string) (*roster.Members, error) { return ms, nil }})
	f.Enqueue("r", Delivery{Payload: payload(t, 1)})
	select {
	case <-rec.in: // round 1 is in flight, held
	case <-time.After(10 * time.Second):
		t.Fatal("first round did not start")
	}
	for s := int64(2); s <= 10; s++ { // 9 queued
		f.Enqueue("r", Delivery{Payload: payload(t, s)})
	}
	if busy, _ := f.Busy("r"); busy {
		t.Fatal("busy below the bound")
	}
	f.Enqueue("r", Delivery{Payload: payload(t, 11)})
	busy, retry := f.Busy("r")
	if !busy || retry <= 0 {
		t.Fatalf("busy = %v retry %v at the bound", busy, retry)
	}
	if b, _ := f.Busy("other"); b {
		t.Fatal("another room is refused for this room's backlog")
	}
	close(rec.gate)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := f.Busy("r"); b {
		t.Fatal("still busy after the backlog drained")
	}
	f.Close(ctx)
}

func TestFanout_GlobalBacklogBound(t *testing.T) {
	rec := newRecorder()
	ms := roomOf(100)
	f := NewFanout(FanoutOptions{Publish: rec.publish, MaxBacklog: 1000, MaxRoomQueue: 1 << 20, MaxRoomDelay: time.Hour,
		Members: func(context.Context, string) (*roster.Members, error) { return ms, nil }})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// One round teaches the fan-out that room a has 100 members.
	f.Enqueue("a", Delivery{Payload: payload(t, 1)})
	if err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	rec.gate = make(chan struct{})    // no round is running: safe to set
	for s := int64(2); s <= 12; s++ { // 11 events × 100 members > 1000
		f.Enqueue("a", Delivery{Payload: payload(t, s)})
	}
	if busy, _ := f.Busy("b"); !busy {
		t.Fatalf("backlog %d over the global bound, yet another room is not refused", f.Backlog())
	}
	close(rec.gate)
	if err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if f.Backlog() != 0 {
		t.Fatalf("backlog after drain = %d", f.Backlog())
	}
	if busy, _ := f.Busy("b"); busy {
		t.Fatal("still refused after the backlog drained")
	}
	f.Close(ctx)
}

func BenchmarkFanoutRound(b *testing.B) {
	ms := roomOf(1000)
	var n int
	var mu sync.Mutex
	f := NewFanout(FanoutOptions{
		Publish: func(string, []byte, map[string][]string) error { mu.Lock(); n++; mu.Unlock(); return nil },
		Members: func(context.Context, string) (*roster.Members, error) { return ms, nil }})
	p := payload(b, 1)
	b.ResetTimer()
	for range b.N {
		f.round("r", []Delivery{{Payload: p}})
	}
}

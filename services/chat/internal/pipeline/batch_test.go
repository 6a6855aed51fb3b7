package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/services/chat/internal/store"
)

// seamStore wraps the real store: it can hold the next insert until released,
// records every insert, and can fail one insert after storing a prefix of it.
type seamStore struct {
	*store.Store
	mu      sync.Mutex
	gate    chan struct{} // when set, the next InsertMessages waits for it to close
	entered chan struct{}
	inserts [][]store.Message
	// failNext, when > 0, makes the next insert store only its first failStore
	// messages and return failReport and a network-like error.
	failNext   atomic.Bool
	failStore  int
	failReport int
}

var errInjected = fmt.Errorf("injected: connection reset mid-batch: %w", command.ErrUnavailable)

func (s *seamStore) InsertMessages(ctx context.Context, msgs []store.Message) (int, error) {
	s.mu.Lock()
	gate, entered := s.gate, s.entered
	s.gate = nil
	s.inserts = append(s.inserts, slices.Clone(msgs))
	s.mu.Unlock()
	fail := gate == nil && s.failNext.CompareAndSwap(true, false)
	if gate != nil {
		close(entered)
		<-gate
	}
	if fail {
		k := min(s.failStore, len(msgs))
		if n, err := s.Store.InsertMessages(ctx, msgs[:k]); err != nil || n != k {
			return n, fmt.Errorf("seam: prefix insert stored %d of %d: %w", n, k, err)
		}
		return s.failReport, errInjected
	}
	return s.Store.InsertMessages(ctx, msgs)
}

// hold makes the next insert wait; it returns a func that waits until that insert
// started and one that releases it.
func (s *seamStore) hold() (started func(), release func()) {
	gate, entered := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.gate, s.entered = gate, entered
	s.mu.Unlock()
	return func() { <-entered }, func() { close(gate) }
}

func newSeam(t *testing.T, rooms ...string) (*seamStore, context.Context) {
	t.Helper()
	_, db := testkit.MongoClient(t)
	st := store.New(db, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if err := st.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range rooms {
		if _, err := st.CreateRoom(ctx, store.Room{ID: r, Type: store.TypeGroup}); err != nil {
			t.Fatal(err)
		}
	}
	return &seamStore{Store: st}, ctx
}

func msg(room, sender, key string) store.Message {
	return store.Message{ID: store.MessageID(room, sender, key), RoomID: room, SenderID: sender, Type: "text", Content: key, ClientMsgID: key}
}

// queue appends msgs concurrently behind a held insert, waits until all of them
// are queued on the (single) lane, and returns their results once released.
func queue(t *testing.T, ctx context.Context, s *Sequencer, release func(), msgs []store.Message) []result {
	t.Helper()
	out := make([]result, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Go(func() {
			got, dup, err := s.Append(ctx, m)
			out[i] = result{msg: got, dup: dup, err: err}
		})
	}
	l := s.lanes[0]
	testkit.Eventually(t, 10*time.Second, func() bool { return l.queued() == len(msgs) }, "%d sends queued", len(msgs))
	release()
	wg.Wait()
	return out
}

// checkRoom requires the room's stored seqs to be exactly 1..n.
func checkRoom(t *testing.T, ctx context.Context, st *store.Store, room string, n int) []store.Message {
	t.Helper()
	msgs, _, err := st.History(ctx, store.HistoryQuery{RoomID: room, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("room %s: position %d holds seq %d (gap)", room, i, m.Seq)
		}
	}
	if len(msgs) != n {
		t.Fatalf("room %s: %d stored, want %d", room, len(msgs), n)
	}
	return msgs
}

// One batch mixes three rooms; another instance took the next seq of room b (its
// summary lagging) and of room c (summary up to date). Every room stays 1..n, all
// sends are acked, the batch went out as one cross-room insert, and the conflict
// costs retries only for what came after it.
func TestSequencer_BatchAcrossRoomsWithConflict(t *testing.T) {
	seam, ctx := newSeam(t, "a", "b", "c")
	s := NewSequencer(SequencerOptions{Store: seam, Lanes: 1})
	for _, r := range []string{"a", "b", "c"} {
		if _, _, err := s.Append(ctx, msg(r, "u", "warm")); err != nil {
			t.Fatal(err)
		}
	}
	// The other instance: seq 2 of b (summary not updated) and of c (updated).
	other := []store.Message{msg("b", "x", "o1"), msg("c", "x", "o1")}
	for i := range other {
		other[i].Seq, other[i].CreatedAt = 2, store.Now()
	}
	if n, err := seam.Store.InsertMessages(ctx, other); err != nil || n != 2 {
		t.Fatalf("other instance insert: %d %v", n, err)
	}
	if err := seam.Store.AdvanceRooms(ctx, other[1:]); err != nil {
		t.Fatal(err)
	}

	started, release := seam.hold()
	first := make(chan error, 1)
	go func() { _, _, err := s.Append(ctx, msg("a", "u", "blocker")); first <- err }()
	started()
	var sends []store.Message
	for i := range 3 {
		for _, r := range []string{"c", "a", "b"} {
			sends = append(sends, msg(r, fmt.Sprintf("s%d", i), fmt.Sprint("k", i)))
		}
	}
	before := len(seam.inserts)
	res := queue(t, ctx, s, release, sends)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.err != nil || r.dup || r.msg.Seq == 0 {
			t.Fatalf("send %d (%s): %+v", i, sends[i].RoomID, r)
		}
	}
	checkRoom(t, ctx, seam.Store, "a", 5) // warm, blocker, 3
	checkRoom(t, ctx, seam.Store, "b", 5) // warm, other, 3
	checkRoom(t, ctx, seam.Store, "c", 5)
	seam.mu.Lock()
	batch := seam.inserts[before] // the first insert after the blocker's
	seam.mu.Unlock()
	rooms := map[string]bool{}
	for _, m := range batch {
		rooms[m.RoomID] = true
	}
	if len(batch) != 9 || len(rooms) != 3 {
		t.Fatalf("first insert of the batch: %d messages of %d rooms, want 9 of 3", len(batch), len(rooms))
	}
	// The batch is sorted by room (arrival order of each room's first message):
	// each room's messages are one run of consecutive seqs.
	for i := 1; i < len(batch); i++ {
		if batch[i].RoomID == batch[i-1].RoomID && batch[i].Seq != batch[i-1].Seq+1 {
			t.Fatalf("insert %d: room run not consecutive: %+v", i, batch)
		}
		if batch[i].RoomID != batch[i-1].RoomID && slices.ContainsFunc(batch[:i], func(m store.Message) bool { return m.RoomID == batch[i].RoomID }) {
			t.Fatalf("insert %d: room %s split in two runs", i, batch[i].RoomID)
		}
	}
	if c := testutil.ToFloat64(s.conflicts); c < 1 || c > 2 {
		t.Fatalf("conflicts = %v, want 1 (b; c refreshed from its summary) or 2", c)
	}
	t.Logf("inserts for the mixed batch: %d, conflicts %v", len(seam.inserts)-before, testutil.ToFloat64(s.conflicts))
}

// A batch that fails mid-way (connection reset after the store wrote a prefix;
// the driver reports nothing stored) fails every send from the failure on and
// leaves no gap: later sends continue after what was stored, and retries with the
// same clientMsgId return the stored originals.
func TestSequencer_FailureMidBatchLeavesNoGap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		report int // what the failed insert reports as stored
	}{{"outcome unknown", 0}, {"prefix reported", 4}} {
		t.Run(tc.name, func(t *testing.T) {
			seam, ctx := newSeam(t, "a", "b")
			s := NewSequencer(SequencerOptions{Store: seam, Lanes: 1})
			var committed []store.Message
			var cmu sync.Mutex
			s.o.Committed = func(_ context.Context, room string, msgs []store.Message) {
				cmu.Lock()
				committed = append(committed, msgs...)
				cmu.Unlock()
			}
			if _, _, err := s.Append(ctx, msg("a", "u", "warm")); err != nil {
				t.Fatal(err)
			}
			started, release := seam.hold()
			go func() { _, _, _ = s.Append(ctx, msg("b", "u", "blocker")) }()
			started()
			// Next batch: a×3 then b×3 (one sender each so arrival order is the
			// room order); the store keeps 4 of 6 (a's three, b's first).
			seam.failStore, seam.failReport = 4, tc.report
			seam.failNext.Store(true)
			var sends []store.Message
			var wg sync.WaitGroup
			res := make([]result, 6)
			l := s.lanes[0]
			for i := range 6 {
				room := "a"
				if i >= 3 {
					room = "b"
				}
				m := msg(room, "u", fmt.Sprint("k", i))
				sends = append(sends, m)
				wg.Go(func() {
					got, dup, err := s.Append(ctx, m)
					res[i] = result{msg: got, dup: dup, err: err}
				})
				testkit.Eventually(t, 5*time.Second, func() bool { return l.queued() == i+1 })
			}
			release()
			wg.Wait()
			for i, r := range res {
				wantOK := i < tc.report
				if (r.err == nil) != wantOK {
					t.Fatalf("send %d: err %v, want success %v", i, r.err, wantOK)
				}
				if r.err != nil && !errors.Is(r.err, command.ErrUnavailable) {
					t.Fatalf("send %d: %v, want unavailable", i, r.err)
				}
			}
			// New sends continue the rooms without a gap; retries return originals.
			for _, r := range []string{"a", "b"} {
				if _, _, err := s.Append(ctx, msg(r, "u", "after")); err != nil {
					t.Fatal(err)
				}
			}
			for i, m := range sends {
				got, dup, err := s.Append(ctx, m)
				if err != nil {
					t.Fatalf("retry %d: %v", i, err)
				}
				if wasStored := i < 4; dup != wasStored {
					t.Fatalf("retry %d: dup %v, want %v (seq %d)", i, dup, wasStored, got.Seq)
				}
			}
			checkRoom(t, ctx, seam.Store, "a", 5) // warm, k0-k2, after
			checkRoom(t, ctx, seam.Store, "b", 5) // blocker, k3, after, k4, k5
			// Committed saw every stored message once, in seq order per room.
			last := map[string]int64{}
			cmu.Lock()
			defer cmu.Unlock()
			for _, m := range committed {
				if m.Seq <= last[m.RoomID] {
					t.Fatalf("committed %s seq %d after %d", m.RoomID, m.Seq, last[m.RoomID])
				}
				last[m.RoomID] = m.Seq
			}
		})
	}
}

// countingStore counts reads of rooms documents for next seqs.
type countingStore struct {
	*seamStore
	roomReads atomic.Int64
}

func (c *countingStore) Rooms(ctx context.Context, ids []string) ([]store.Room, error) {
	c.roomReads.Add(int64(len(ids)))
	return c.seamStore.Rooms(ctx, ids)
}

// A send with a hint (the room's lastSeq from the member cache) starts a cold
// room without reading the store; a stale hint costs a conflict, never a gap or
// a duplicate seq.
func TestSequencer_HintAvoidsColdReadAndStaleHintIsSafe(t *testing.T) {
	t.Parallel()
	seam, ctx := newSeam(t, "h")
	cs := &countingStore{seamStore: seam}
	s := NewSequencer(SequencerOptions{Store: cs, Lanes: 1})
	var last int64
	for i := range 3 {
		m, _, err := s.AppendAfter(ctx, msg("h", "u", fmt.Sprintf("k%d", i)), -1)
		if err != nil {
			t.Fatal(err)
		}
		last = m.Seq
	}
	before := cs.roomReads.Load()
	// A second instance (cold cache) with an up-to-date hint: no read.
	s2 := NewSequencer(SequencerOptions{Store: cs, Lanes: 1})
	m, _, err := s2.AppendAfter(ctx, msg("h", "u", "fresh"), last)
	if err != nil || m.Seq != last+1 {
		t.Fatalf("with hint: seq %d err %v, want %d", m.Seq, err, last+1)
	}
	if n := cs.roomReads.Load() - before; n != 0 {
		t.Fatalf("%d rooms reads with a hint, want 0", n)
	}
	// A third instance with a stale hint (seq 1): it conflicts, re-reads, and
	// still stores the next seq.
	s3 := NewSequencer(SequencerOptions{Store: cs, Lanes: 1})
	m, _, err = s3.AppendAfter(ctx, msg("h", "u", "stale"), 1)
	if err != nil || m.Seq != last+2 {
		t.Fatalf("stale hint: seq %d err %v, want %d", m.Seq, err, last+2)
	}
	if testutil.ToFloat64(s3.ConflictsMetric()) < 1 {
		t.Fatal("a stale hint should have shown as a seq conflict")
	}
}

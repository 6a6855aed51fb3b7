package pipeline

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talim/realtime/services/chat/internal/store"
)

// downStore fails every summary write while down is set.
type downStore struct {
	*seamStore
	down   atomic.Bool
	writes atomic.Int64
}

func (d *downStore) AdvanceReads(ctx context.Context, marks []store.ReadMark) error {
	d.writes.Add(1)
	if d.down.Load() {
		return errors.New("injected: store down")
	}
	return d.seamStore.AdvanceReads(ctx, marks)
}

// Flush returns once the summaries are written; Close stops the writer even when
// the store stays down (no retry loop left behind) and refuses later sends.
func TestSummaries_FlushAndCloseWithStoreDown(t *testing.T) {
	t.Parallel()
	seam, ctx := newSeam(t, "s")
	ds := &downStore{seamStore: seam}
	s := NewSequencer(SequencerOptions{Store: ds, Lanes: 1})
	if _, _, err := s.Append(ctx, msg("s", "u", "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	room, err := seam.Room(ctx, "s")
	if err != nil || room.LastSeq != 1 {
		t.Fatalf("summary after Flush: %+v %v", room, err)
	}
	if _, ok := s.Unflushed("s"); ok {
		t.Fatal("still unflushed after Flush")
	}

	ds.down.Store(true)
	if _, _, err := s.Append(ctx, msg("s", "u", "b")); err != nil {
		t.Fatal(err)
	}
	// The writer retries while the store is down; Close makes one last attempt
	// and stops.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Close(cctx); err == nil {
		t.Fatal("Close reported success although the summaries could not be written")
	}
	n := ds.writes.Load()
	if _, _, err := s.Append(ctx, msg("s", "u", "c")); err == nil {
		t.Fatal("send accepted after Close")
	}
	// No writer is left retrying: nothing more is attempted.
	time.Sleep(3 * summaryRetry) // not synchronisation: proving the absence of retries
	if m := ds.writes.Load(); m != n {
		t.Fatalf("%d summary writes after Close", m-n)
	}
}

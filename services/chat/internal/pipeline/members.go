package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/talim/realtime/services/chat/internal/store"
)

// MemberStore is what the MemberWriter needs from the store.
type MemberStore interface {
	// EnsureMembers inserts the memberships that do not exist yet, with one
	// unordered insert, and reports per input what it did.
	EnsureMembers(ctx context.Context, ms []store.Member) ([]store.MemberResult, error)
}

// MemberWriter group-commits first-time joins of open rooms: every Ensure queued
// while the previous insert was in flight (any rooms) is written with ONE
// unordered insert, so a join storm of 10,000 users costs a few dozen store
// commands instead of 10,000. An idle writer inserts at once (no timer).
type MemberWriter struct {
	store    MemberStore
	maxBatch int
	timeout  time.Duration

	queue groupQueue[*memberReq]
	wg    sync.WaitGroup
}

type memberReq struct {
	ctx   context.Context
	m     store.Member
	added bool
	err   error
	done  chan struct{}
}

// NewMemberWriter returns a writer over s with batches of at most maxBatch
// (default 1,000) and timeout per insert (default 5s).
func NewMemberWriter(s MemberStore, maxBatch int, timeout time.Duration) *MemberWriter {
	if maxBatch <= 0 {
		maxBatch = 1000
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &MemberWriter{store: s, maxBatch: maxBatch, timeout: timeout}
}

// Ensure inserts m unless the membership exists (whatever its role) and reports
// whether it was inserted by this call.
func (w *MemberWriter) Ensure(ctx context.Context, m store.Member) (bool, error) {
	r := &memberReq{ctx: ctx, m: m, done: make(chan struct{})}
	if _, start := w.queue.push(r, 0); start {
		w.wg.Add(1)
		go w.run()
	}
	select {
	case <-r.done:
		return r.added, r.err
	case <-ctx.Done():
		return false, fmt.Errorf("ensure member %s of %s: %w", m.UserID, m.RoomID, ctx.Err())
	}
}

func (w *MemberWriter) run() {
	defer w.wg.Done()
	for batch := w.queue.take(w.maxBatch); batch != nil; batch = w.queue.take(w.maxBatch) {
		w.write(batch)
	}
}

// write inserts one batch. Requests for the same membership share one document;
// only the first of them reports added.
func (w *MemberWriter) write(batch []*memberReq) {
	byID := map[string][]*memberReq{}
	var ms []store.Member
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.err = fmt.Errorf("ensure member: %w", r.ctx.Err())
			close(r.done)
			continue
		}
		id := store.MemberID(r.m.RoomID, r.m.UserID)
		if _, ok := byID[id]; !ok {
			ms = append(ms, r.m)
		}
		byID[id] = append(byID[id], r)
	}
	if len(ms) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	res, err := w.store.EnsureMembers(ctx, ms)
	cancel()
	for i, m := range ms {
		rs := byID[store.MemberID(m.RoomID, m.UserID)]
		for k, r := range rs {
			switch {
			case i < len(res) && res[i] == store.MemberAdded:
				r.added = k == 0
			case i < len(res) && res[i] == store.MemberUnchanged:
			default:
				if err == nil {
					err = fmt.Errorf("ensure members: no result")
				}
				r.err = fmt.Errorf("ensure member %s of %s: %w", m.UserID, m.RoomID, err)
			}
			close(r.done)
		}
	}
}

// Close waits for the running batch to finish.
func (w *MemberWriter) Close() { w.wg.Wait() }

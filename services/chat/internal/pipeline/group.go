package pipeline

import (
	"context"
	"sync"
)

// groupQueue is the queue of a group-commit writer (the sequencer's lanes, the
// MemberWriter): senders push; the push that finds no writer running starts one,
// which takes everything queued while its previous round was in flight (at most
// max a round; group commit without a timer) until nothing is left, then ends.
type groupQueue[T any] struct {
	mu      sync.Mutex
	pending []T
	running bool
}

// push queues v, unless limit > 0 and limit items are queued already (ok is
// false: refuse). start reports that no writer runs: the caller starts one.
func (q *groupQueue[T]) push(v T, limit int) (ok, start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if limit > 0 && len(q.pending) >= limit {
		return false, false
	}
	q.pending = append(q.pending, v)
	start = !q.running
	q.running = true
	return true, start
}

// take returns the next round, at most max items; nil when nothing is queued,
// and then the writer must end (the next push starts a new one).
func (q *groupQueue[T]) take(max int) []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.pending), max)
	if n == 0 {
		q.running = false
		q.pending = nil
		return nil
	}
	round := q.pending[:n:n]
	q.pending = q.pending[n:]
	return round
}

// queued is the number of items waiting.
func (q *groupQueue[T]) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// waitCond waits on c until stop reports done or an error, or ctx ends (its
// error is returned). The caller holds c.L; c is broadcast when ctx ends, so a
// waiter never outlives its context.
func waitCond(ctx context.Context, c *sync.Cond, stop func() (bool, error)) error {
	defer context.AfterFunc(ctx, func() {
		c.L.Lock()
		c.Broadcast()
		c.L.Unlock()
	})()
	for {
		if done, err := stop(); done || err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c.Wait()
	}
}

package pipeline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/devstack/testkit"
	"github.com/talim/realtime/services/chat/internal/store"
)

type countingMembers struct {
	*store.Store
	calls atomic.Int64
	gate  chan struct{} // when set, the first call waits for it
	once  sync.Once
}

func (c *countingMembers) EnsureMembers(ctx context.Context, ms []store.Member) ([]store.MemberResult, error) {
	c.calls.Add(1)
	if c.gate != nil {
		c.once.Do(func() { <-c.gate })
	}
	return c.Store.EnsureMembers(ctx, ms)
}

// A join storm is group-committed: 300 concurrent first-time joins (some users
// twice, some already members) cost a handful of inserts; every user is added
// exactly once and reported added exactly once.
func TestMemberWriter_GroupCommitsJoins(t *testing.T) {
	t.Parallel()
	seam, ctx := newSeam(t, "open")
	if _, err := seam.EnsureMember(ctx, store.Member{RoomID: "open", UserID: "u0", Role: store.RoleMember}); err != nil {
		t.Fatal(err)
	}
	cm := &countingMembers{Store: seam.Store, gate: make(chan struct{})}
	w := NewMemberWriter(cm, 0, 0)
	defer w.Close()
	const users = 300
	var added atomic.Int64
	var wg sync.WaitGroup
	// The first join's insert is held while the others queue behind it.
	first := make(chan error, 1)
	go func() {
		_, err := w.Ensure(ctx, store.Member{RoomID: "open", UserID: "first", Role: store.RoleMember})
		first <- err
	}()
	testkit.Eventually(t, 10*time.Second, func() bool { return cm.calls.Load() > 0 }, "first insert started")
	for i := range users {
		for range 1 + i%2 { // odd users join twice at once
			wg.Go(func() {
				ok, err := w.Ensure(ctx, store.Member{RoomID: "open", UserID: fmt.Sprintf("u%d", i), Role: store.RoleMember})
				if err != nil {
					t.Error(err)
				}
				if ok {
					added.Add(1)
				}
			})
		}
	}
	// Release the held insert only once every join is queued.
	testkit.Eventually(t, 10*time.Second, func() bool { return w.queue.queued() == users+users/2 }, "joins queued")
	close(cm.gate)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := added.Load(); got != users-1 { // u0 was a member already
		t.Fatalf("added reported %d times, want %d", got, users-1)
	}
	if c := cm.calls.Load(); c > 3 {
		t.Fatalf("%d inserts for %d joins: not group-committed", c, users)
	}
	n, err := seam.CountMembers(ctx, "open")
	if err != nil || n != users+1 {
		t.Fatalf("members stored = %d (%v), want %d", n, err, users+1)
	}
}

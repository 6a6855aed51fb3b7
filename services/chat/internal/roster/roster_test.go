package roster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talim/realtime/services/chat/internal/store"
)

// fakeStore is the roster's Store with counted reads and an optional gate that
// holds RoomRoles until released (to race loads with deltas).
type fakeStore struct {
	mu    sync.Mutex
	roles map[string]string
	loads atomic.Int64
	gate  chan struct{} // when set, RoomRoles waits for it after reading
	read  chan struct{} // when set, signalled once RoomRoles has read
}

func (f *fakeStore) Room(_ context.Context, id string) (*store.Room, error) {
	return &store.Room{ID: id, Type: store.TypeOpen}, nil
}

func (f *fakeStore) RoomRoles(_ context.Context, _ string) (map[string]string, error) {
	f.loads.Add(1)
	f.mu.Lock()
	out := make(map[string]string, len(f.roles))
	for k, v := range f.roles {
		out[k] = v
	}
	gate, read := f.gate, f.read
	f.mu.Unlock()
	if read != nil {
		read <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	return out, nil
}

func members(st *State) map[string]bool {
	m := st.Members()
	out := map[string]bool{}
	for k := range Shards {
		for i, u := range m.Shards[k] {
			if m.Subjects[k][i] == "" || ShardOf(u) != k {
				panic(fmt.Sprintf("user %s in shard %d", u, k))
			}
			out[u] = true
		}
	}
	if len(out) != m.N {
		panic("N differs from the members listed")
	}
	return out
}

func TestDeltasNeverReload(t *testing.T) {
	fs := &fakeStore{roles: map[string]string{}}
	for i := range 10_000 {
		fs.roles[fmt.Sprintf("u%d", i)] = store.RoleMember
	}
	c := New(fs, time.Hour, nil)
	ctx := context.Background()
	st, err := c.Get(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(members(st)); got != 10_000 {
		t.Fatalf("members = %d", got)
	}
	at := time.Now().UnixNano()
	for i := range 1000 {
		at++
		c.Apply("r", []Delta{{UserID: fmt.Sprintf("new%d", i), Role: store.RoleMember}}, at)
		if _, err := c.Get(ctx, "r"); err != nil {
			t.Fatal(err)
		}
	}
	c.Apply("r", []Delta{{UserID: "u1"}, {UserID: "u2", Role: store.RoleTeacher}}, at+1)
	st, _ = c.Get(ctx, "r")
	if fs.loads.Load() != 1 {
		t.Fatalf("store loads = %d, want 1 (deltas must not reload)", fs.loads.Load())
	}
	ms := members(st)
	if len(ms) != 10_999 || ms["u1"] || !ms["new999"] {
		t.Fatalf("members after deltas: %d, u1 %v, new999 %v", len(ms), ms["u1"], ms["new999"])
	}
	if r, _ := st.Role("u2"); r != store.RoleTeacher {
		t.Fatalf("u2 role = %q", r)
	}
}

func TestDeltasOutOfOrderSettleOnLatest(t *testing.T) {
	fs := &fakeStore{roles: map[string]string{"a": store.RoleMember}}
	c := New(fs, time.Hour, nil)
	st, _ := c.Get(context.Background(), "r")
	// Removed at t=20 by one instance, re-added at t=10 by another, arriving late.
	c.Apply("r", []Delta{{UserID: "a"}}, 20)
	c.Apply("r", []Delta{{UserID: "a", Role: store.RoleMember}}, 10)
	if _, ok := st.Role("a"); ok {
		t.Fatal("an older add undid a newer removal")
	}
	c.Apply("r", []Delta{{UserID: "a", Role: store.RoleOwner}}, 30)
	if r, ok := st.Role("a"); !ok || r != store.RoleOwner {
		t.Fatalf("newer add not applied: %q %v", r, ok)
	}
}

func TestDeltaDuringLoadIsApplied(t *testing.T) {
	fs := &fakeStore{roles: map[string]string{"a": store.RoleMember}, gate: make(chan struct{}), read: make(chan struct{}, 1)}
	c := New(fs, time.Hour, nil)
	got := make(chan *State, 1)
	go func() {
		st, err := c.Get(context.Background(), "r")
		if err != nil {
			t.Error(err)
		}
		got <- st
	}()
	select {
	case <-fs.read: // the load has read the old member set
	case <-time.After(10 * time.Second):
		t.Fatal("load did not start")
	}
	c.Apply("r", []Delta{{UserID: "b", Role: store.RoleMember}, {UserID: "a"}}, time.Now().UnixNano())
	close(fs.gate)
	var st *State
	select {
	case st = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("load did not finish")
	}
	ms := members(st)
	if !ms["b"] || ms["a"] {
		t.Fatalf("deltas during the load lost: %v", ms)
	}
}

func TestInvalidateReloads(t *testing.T) {
	fs := &fakeStore{roles: map[string]string{"a": store.RoleMember}}
	c := New(fs, time.Hour, nil)
	if _, err := c.Get(context.Background(), "r"); err != nil {
		t.Fatal(err)
	}
	c.Invalidate("r")
	if _, err := c.Get(context.Background(), "r"); err != nil {
		t.Fatal(err)
	}
	if fs.loads.Load() != 2 {
		t.Fatalf("loads = %d, want 2", fs.loads.Load())
	}
}

func TestApplyUncachedIsNoop(t *testing.T) {
	fs := &fakeStore{roles: map[string]string{"a": store.RoleMember}}
	c := New(fs, time.Hour, nil)
	c.Apply("r", []Delta{{UserID: "b", Role: store.RoleMember}}, 1)
	st, err := c.Get(context.Background(), "r")
	if err != nil {
		t.Fatal(err)
	}
	if ms := members(st); ms["b"] || !ms["a"] {
		t.Fatalf("members = %v (the store is the truth for an uncached room)", ms)
	}
}

// BenchmarkJoinDelta shows a join's cost does not depend on the room's size.
func BenchmarkJoinDelta(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			fs := &fakeStore{roles: map[string]string{}}
			for i := range n {
				fs.roles[fmt.Sprintf("u%d", i)] = store.RoleMember
			}
			c := New(fs, time.Hour, nil)
			if _, err := c.Get(context.Background(), "r"); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				c.Apply("r", []Delta{{UserID: fmt.Sprintf("j%d", i), Role: store.RoleMember}}, int64(i+1))
			}
		})
	}
}

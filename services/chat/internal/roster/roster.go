// Package roster caches, per chat instance, each room's metadata (type, archived,
// name) and member set with roles, so access checks and fan-out do not read the
// store for every message.
//
// Membership changes are deltas: every change of a room's members is followed by
// a chatv1.MembershipChanged on talim.chat.v1.membership.<room> carrying the
// changed users and their new roles; every instance applies them to its cached
// entry (Apply), so a join, leave, add or remove costs O(1) in a room of any
// size — the member set is never reloaded because one user joined. A change of
// the room's own metadata (archiving) carries no deltas and drops the entry
// (Invalidate); the next request reloads it.
//
// Ordering: each delta carries the changing instance's clock; an entry applies a
// user's delta only when it is newer than the last one applied for that user
// (removals leave a tombstone with their time), so deltas of two instances that
// arrive out of order settle on the later change. A load from the store that
// races with deltas replays the deltas that arrived during the load on top of
// its result. NATS core delivery is at-most-once, so entries also expire after
// TTL (refreshed ahead of expiry while in use) as a safety net.
package roster

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/talim/realtime/pkg/subject"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Store is what the roster reads.
type Store interface {
	Room(ctx context.Context, id string) (*store.Room, error)
	RoomRoles(ctx context.Context, roomID string) (map[string]string, error)
}

// DefaultTTL is how long an entry lives without being reloaded.
const DefaultTTL = 2 * time.Minute

// Shards is the number of member shards of a room's fan-out: a user is always in
// shard hash(user) % Shards, so publishing the shards in parallel keeps every
// user's events in order.
const Shards = 8

// maxTombstones bounds the remembered removals of one room.
const maxTombstones = 4096

// Delta is one user's new membership; Role empty means removed.
type Delta struct {
	UserID string
	Role   string
}

var shardSeed = maphash.MakeSeed()

// ShardOf returns the fan-out shard of userID.
func ShardOf(userID string) int { return int(maphash.String(shardSeed, userID) % Shards) }

// State is a room's cached state. Room is read-only (LastSeq/LastMessage are
// stale: read the store for those); the member set changes by delta and is read
// through Role, Len and Members.
type State struct {
	Room store.Room

	mu     sync.RWMutex
	roles  map[string]string
	stamps map[string]int64 // time of the last delta applied per user (tombstones too)
	tombs  int
	snap   *Members // nil after a change; rebuilt by Members
}

// Members is an immutable snapshot of a room's members, grouped by fan-out shard.
type Members struct {
	Shards   [Shards][]string // user ids
	Subjects [Shards][]string // their subjects (subject.User), index by index
	N        int
}

// NewState returns a state with the given members (for tests and loads).
func NewState(room store.Room, roles map[string]string) *State {
	if roles == nil {
		roles = map[string]string{}
	}
	return &State{Room: room, roles: roles, stamps: map[string]int64{}}
}

// Role returns userID's role and whether they are a member.
func (s *State) Role(userID string) (string, bool) {
	s.mu.RLock()
	r, ok := s.roles[userID]
	s.mu.RUnlock()
	return r, ok
}

// Len is the number of members.
func (s *State) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.roles)
}

// Members returns the current member snapshot (shared: do not modify). It is
// rebuilt at most once per change, by the first reader after it.
func (s *State) Members() *Members {
	s.mu.RLock()
	m := s.snap
	s.mu.RUnlock()
	if m != nil {
		return m
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap == nil {
		m = &Members{N: len(s.roles)}
		for u := range s.roles {
			k := ShardOf(u)
			m.Shards[k] = append(m.Shards[k], u)
			m.Subjects[k] = append(m.Subjects[k], subject.User(u))
		}
		s.snap = m
	}
	return s.snap
}

// apply applies deltas made at time at; it reports whether anything changed.
func (s *State) apply(deltas []Delta, at int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, d := range deltas {
		if last, ok := s.stamps[d.UserID]; ok && at != 0 && at < last {
			continue // a later change of this user was applied already
		}
		if at != 0 {
			if _, ok := s.stamps[d.UserID]; !ok && d.Role == "" {
				s.tombs++
			}
			s.stamps[d.UserID] = at
		}
		cur, ok := s.roles[d.UserID]
		switch {
		case d.Role == "" && ok:
			delete(s.roles, d.UserID)
			changed = true
		case d.Role != "" && (!ok || cur != d.Role):
			s.roles[d.UserID] = d.Role
			changed = true
		}
	}
	if s.tombs > maxTombstones {
		// Forget the oldest knowledge: keep stamps of current members only.
		for u := range s.stamps {
			if _, ok := s.roles[u]; !ok {
				delete(s.stamps, u)
			}
		}
		s.tombs = 0
	}
	if changed {
		s.snap = nil
	}
	return changed
}

// Cache is the member cache. Safe for concurrent use.
type Cache struct {
	store   Store
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]*entry
	reloads map[string]*entry // background reloads in flight
	hits    prometheus.Counter
	misses  prometheus.Counter
	deltas  prometheus.Counter
}

type entry struct {
	ready      chan struct{}
	st         *State
	err        error
	loadedAt   time.Time
	refreshing bool           // a background reload runs (guarded by Cache.mu)
	pending    []pendingDelta // deltas that arrived while this entry loads (guarded by Cache.mu)
}

type pendingDelta struct {
	deltas []Delta
	at     int64
}

// New returns a cache over s.
func New(s Store, ttl time.Duration, reg prometheus.Registerer) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	c := &Cache{store: s, ttl: ttl, entries: map[string]*entry{}, reloads: map[string]*entry{},
		hits:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "roster_hits_total", Help: "Member cache hits."}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "roster_misses_total", Help: "Member cache loads from the store."}),
		deltas: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "roster_deltas_total", Help: "Membership deltas applied to cached rooms."}),
	}
	if reg != nil {
		reg.MustRegister(c.hits, c.misses, c.deltas)
	}
	return c
}

// Get returns roomID's state, loading it once for concurrent callers. A missing
// room is store.ErrNotFound (not cached).
func (c *Cache) Get(ctx context.Context, roomID string) (*State, error) {
	c.mu.Lock()
	e, ok := c.entries[roomID]
	if ok {
		select {
		case <-e.ready:
			if age := time.Since(e.loadedAt); e.err == nil && age < c.ttl {
				if age >= c.ttl*3/4 && !e.refreshing {
					// Refresh ahead of expiry so a busy room never waits for its
					// reload; the entry still never outlives the TTL.
					e.refreshing = true
					go c.refresh(roomID, e)
				}
				c.mu.Unlock()
				c.hits.Inc()
				return e.st, nil
			}
			ok = false // failed or expired: load again
		default:
		}
	}
	if !ok {
		e = &entry{ready: make(chan struct{})}
		c.entries[roomID] = e
		c.mu.Unlock()
		c.misses.Inc()
		c.load(roomID, e)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-e.ready:
		return e.st, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("members of %s: %w", roomID, ctx.Err())
	}
}

func (c *Cache) load(roomID string, e *entry) { c.loadInto(roomID, e, nil) }

// loadInto loads roomID into e. With replacing set (a refresh), e replaces it
// when it is still the cached entry. Deltas recorded while the load ran are
// applied to its result in the same critical section that publishes it, so no
// delta falls between the load and the swap.
func (c *Cache) loadInto(roomID string, e, replacing *entry) {
	// Loads use their own deadline so one impatient caller does not fail the others.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var st *State
	room, err := c.store.Room(ctx, roomID)
	if err == nil {
		var roles map[string]string
		roles, err = c.store.RoomRoles(ctx, roomID)
		if err == nil {
			st = NewState(*room, roles)
		}
	}
	c.mu.Lock()
	if st != nil {
		// Deltas published while the load ran may or may not be in its result;
		// applying them again is idempotent and settles on the newest.
		for _, p := range e.pending {
			st.apply(p.deltas, p.at)
		}
	}
	e.pending = nil
	e.st, e.err, e.loadedAt = st, err, time.Now()
	if c.reloads[roomID] == e {
		delete(c.reloads, roomID)
	}
	switch {
	case replacing != nil:
		if err == nil && c.entries[roomID] == replacing {
			c.entries[roomID] = e
		} else {
			replacing.refreshing = false
		}
	case err != nil && c.entries[roomID] == e:
		delete(c.entries, roomID)
	}
	c.mu.Unlock()
	close(e.ready)
}

// refresh reloads roomID in the background and replaces old with the result,
// unless old was invalidated (or replaced) meanwhile. Deltas arriving during the
// reload are applied to old (still served) and recorded for the new entry.
func (c *Cache) refresh(roomID string, old *entry) {
	e := &entry{ready: make(chan struct{})}
	c.mu.Lock()
	c.reloads[roomID] = e
	c.mu.Unlock()
	c.misses.Inc()
	c.loadInto(roomID, e, old)
}

// Apply applies membership deltas made at time at (Unix ns; 0: unordered) to
// roomID's cached entry. Nothing cached: nothing to do (the next load reads the
// store). A load in flight records them and applies them to its result.
func (c *Cache) Apply(roomID string, deltas []Delta, at int64) {
	if len(deltas) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.reloads[roomID]; ok {
		r.pending = append(r.pending, pendingDelta{deltas: deltas, at: at})
	}
	e, ok := c.entries[roomID]
	if !ok {
		return
	}
	select {
	case <-e.ready:
		if e.st != nil {
			e.st.apply(deltas, at)
			c.deltas.Add(float64(len(deltas)))
		}
	default:
		e.pending = append(e.pending, pendingDelta{deltas: deltas, at: at})
	}
}

// Invalidate drops roomID's entry; the next Get reloads it.
func (c *Cache) Invalidate(roomID string) {
	c.mu.Lock()
	delete(c.entries, roomID)
	c.mu.Unlock()
}

// Sweep drops expired entries (call periodically to bound memory).
func (c *Cache) Sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.entries {
		select {
		case <-e.ready:
			if time.Since(e.loadedAt) >= c.ttl {
				delete(c.entries, id)
			}
		default:
		}
	}
}

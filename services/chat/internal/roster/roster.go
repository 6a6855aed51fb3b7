// Package roster caches, per chat instance, each room's metadata (type, archived,
// name) and member set with roles, so access checks and fan-out do not read the
// store for every message.
//
// Invalidation: every change of a room's members or metadata is followed by a
// chatv1.MembershipChanged on talim.chat.v1.membership.<room>; every instance
// subscribes to talim.chat.v1.membership.> and drops the entry. The instance that
// made the change drops its entry synchronously before publishing, so its own next
// request already sees the change; other instances see it within NATS delivery
// time. NATS core delivery is at-most-once, so entries also expire after TTL as a
// safety net. A load that races with an invalidation is served to the requests
// that were already waiting but not cached.
package roster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/talim/realtime/services/chat/internal/store"
)

// Store is what the roster reads.
type Store interface {
	Room(ctx context.Context, id string) (*store.Room, error)
	RoomRoles(ctx context.Context, roomID string) (map[string]string, error)
}

// DefaultTTL is how long an entry lives without invalidation.
const DefaultTTL = 2 * time.Minute

// State is a room's cached state. Treat it as read-only.
type State struct {
	Room  store.Room // LastSeq/LastMessage are stale: read the store for those
	Roles map[string]string
}

// Role returns userID's role and whether they are a member.
func (s *State) Role(userID string) (string, bool) {
	r, ok := s.Roles[userID]
	return r, ok
}

// Cache is the member cache. Safe for concurrent use.
type Cache struct {
	store   Store
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]*entry
	hits    prometheus.Counter
	misses  prometheus.Counter
}

type entry struct {
	ready      chan struct{}
	st         *State
	err        error
	loadedAt   time.Time
	refreshing bool // a background reload runs (guarded by Cache.mu)
}

// New returns a cache over s.
func New(s Store, ttl time.Duration, reg prometheus.Registerer) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	c := &Cache{store: s, ttl: ttl, entries: map[string]*entry{},
		hits:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "roster_hits_total", Help: "Member cache hits."}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "talim", Subsystem: "chat", Name: "roster_misses_total", Help: "Member cache loads from the store."}),
	}
	if reg != nil {
		reg.MustRegister(c.hits, c.misses)
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

func (c *Cache) load(roomID string, e *entry) {
	// Loads use their own deadline so one impatient caller does not fail the others.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var st *State
	room, err := c.store.Room(ctx, roomID)
	if err == nil {
		var roles map[string]string
		roles, err = c.store.RoomRoles(ctx, roomID)
		if err == nil {
			st = &State{Room: *room, Roles: roles}
		}
	}
	c.mu.Lock()
	e.st, e.err, e.loadedAt = st, err, time.Now()
	if err != nil && c.entries[roomID] == e {
		delete(c.entries, roomID)
	}
	c.mu.Unlock()
	close(e.ready)
}

// refresh reloads roomID in the background and replaces old with the result,
// unless old was invalidated (or replaced) meanwhile: then the reload may predate
// the change and is dropped.
func (c *Cache) refresh(roomID string, old *entry) {
	e := &entry{ready: make(chan struct{})}
	c.misses.Inc()
	c.load(roomID, e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.err == nil && c.entries[roomID] == old {
		c.entries[roomID] = e
	} else {
		old.refreshing = false
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

// Package visibility decides whose presence a user may see. Policy "all": everybody.
// Policy "shared-room" (default): users who share at least one room, asked of chat
// with a NATS request on talim.chat.v1.shared-rooms and cached per viewer until a
// membership event (talim.chat.v1.membership.>) or the TTL invalidates it. When chat
// does not answer, the check fails closed: nobody is visible.
package visibility

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
)

// Policies.
const (
	PolicySharedRoom = "shared-room"
	PolicyAll        = "all"
)

// Checker tells which of others viewer may see. Implementations must be safe for
// concurrent use. On error the caller treats every other user as not visible.
type Checker interface {
	Visible(ctx context.Context, viewer string, others []string) (map[string]bool, error)
}

// All makes everybody visible.
type All struct{}

var _ Checker = All{}

// Visible returns every id.
func (All) Visible(_ context.Context, _ string, others []string) (map[string]bool, error) {
	out := make(map[string]bool, len(others))
	for _, id := range others {
		out[id] = true
	}
	return out, nil
}

// ErrChat wraps failures to get an answer from chat.
var ErrChat = errors.New("shared-rooms request failed")

// maxViewers bounds the cache; past it the cache is cleared (cheap, rare).
const maxViewers = 50_000

// SharedRooms asks chat, with a per-viewer cache.
type SharedRooms struct {
	nc      *nats.Conn
	timeout time.Duration
	ttl     time.Duration

	mu    sync.Mutex
	cache map[string]*entry
	gen   uint64 // bumped by Invalidate; entries of older generations are stale
}

type entry struct {
	gen     uint64
	expires time.Time
	known   map[string]bool
}

var _ Checker = (*SharedRooms)(nil)

// NewSharedRooms returns a checker that asks chat over nc, waiting at most timeout,
// and caches answers for ttl.
func NewSharedRooms(nc *nats.Conn, timeout, ttl time.Duration) *SharedRooms {
	return &SharedRooms{nc: nc, timeout: timeout, ttl: ttl, cache: map[string]*entry{}}
}

// Invalidate drops every cached answer (a room's membership changed; the event does
// not say whose, and membership changes are rare next to presence lookups).
func (s *SharedRooms) Invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	clear(s.cache)
}

// Visible answers from the cache and asks chat for the rest.
func (s *SharedRooms) Visible(ctx context.Context, viewer string, others []string) (map[string]bool, error) {
	out := make(map[string]bool, len(others))
	var missing []string
	now := time.Now()
	s.mu.Lock()
	gen := s.gen
	e := s.cache[viewer]
	if e != nil && (e.gen != gen || now.After(e.expires)) {
		e = nil
	}
	for _, id := range others {
		if v, ok := e.lookup(id); ok {
			out[id] = v
		} else {
			missing = append(missing, id)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	visible, err := s.ask(ctx, viewer, missing)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == gen { // no invalidation while we asked: the answer may be cached
		e := s.cache[viewer]
		if e == nil || e.gen != gen || now.After(e.expires) {
			if len(s.cache) >= maxViewers {
				clear(s.cache)
			}
			e = &entry{gen: gen, expires: now.Add(s.ttl), known: map[string]bool{}}
			s.cache[viewer] = e
		}
		for _, id := range missing {
			e.known[id] = visible[id]
		}
	}
	for _, id := range missing {
		out[id] = visible[id]
	}
	return out, nil
}

func (e *entry) lookup(id string) (bool, bool) {
	if e == nil {
		return false, false
	}
	v, ok := e.known[id]
	return v, ok
}

func (s *SharedRooms) ask(ctx context.Context, viewer string, others []string) (map[string]bool, error) {
	b, err := proto.Marshal(&chatv1.SharedRoomsRequest{UserId: viewer, OtherUserIds: others})
	if err != nil {
		return nil, fmt.Errorf("%w: marshal: %w", ErrChat, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	m, err := s.nc.RequestWithContext(ctx, subject.ChatSharedRooms, b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChat, err)
	}
	var resp chatv1.SharedRoomsResponse
	if err := proto.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("%w: decode: %w", ErrChat, err)
	}
	if resp.GetError() != "" {
		return nil, fmt.Errorf("%w: chat: %s", ErrChat, resp.GetError())
	}
	asked := make(map[string]bool, len(others))
	for _, id := range others {
		asked[id] = true
	}
	out := make(map[string]bool, len(resp.GetVisibleUserIds()))
	for _, id := range resp.GetVisibleUserIds() {
		if asked[id] { // never trust more than we asked about
			out[id] = true
		}
	}
	return out, nil
}

// Package watch keeps every connection's presence subscriptions (the user ids it
// asked for with subscribe-presence) so the per-connection limit holds across
// commands. Each presence replica holds the sets of all connections: the replica
// that handles a command changes its own copy at once and broadcasts the delta;
// the others apply it when it arrives (see the presence package doc).
package watch

import (
	"errors"
	"sync"
)

// ErrLimit is returned by Add when the connection would watch more than the limit.
var ErrLimit = errors.New("presence subscription limit reached")

// Sets maps edge → connection → watched user ids. Safe for concurrent use.
type Sets struct {
	mu    sync.Mutex
	edges map[string]map[string]map[string]struct{}
	n     int
}

// New returns empty sets.
func New() *Sets { return &Sets{edges: map[string]map[string]map[string]struct{}{}} }

// Add adds ids to the connection's set unless that makes it larger than limit
// (limit <= 0: no limit), in which case nothing changes and the error wraps
// ErrLimit. It returns the size of the set before the call.
func (s *Sets) Add(edge, conn string, ids []string, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.edges[edge][conn]
	before := len(set)
	if limit > 0 {
		n := before
		for _, id := range ids {
			if _, ok := set[id]; !ok {
				n++
			}
		}
		if n > limit {
			return before, ErrLimit
		}
	}
	s.add(edge, conn, ids)
	return before, nil
}

// Apply applies a delta broadcast by another replica (no limit check: the sender
// checked).
func (s *Sets) Apply(edge, conn string, add, remove []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(edge, conn, add)
	s.remove(edge, conn, remove)
}

// Remove removes ids from the connection's set.
func (s *Sets) Remove(edge, conn string, ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(edge, conn, ids)
}

// DropConn forgets a closed connection.
func (s *Sets) DropConn(edge, conn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := s.edges[edge]
	s.n -= len(conns[conn])
	delete(conns, conn)
	if len(conns) == 0 {
		delete(s.edges, edge)
	}
}

// DropEdge forgets every connection of an edge that stopped or expired.
func (s *Sets) DropEdge(edge string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range s.edges[edge] {
		s.n -= len(set)
	}
	delete(s.edges, edge)
}

// Len is the number of watched ids of a connection.
func (s *Sets) Len(edge, conn string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.edges[edge][conn])
}

// Total is the number of (connection, user) subscriptions held.
func (s *Sets) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *Sets) add(edge, conn string, ids []string) {
	if len(ids) == 0 {
		return
	}
	conns := s.edges[edge]
	if conns == nil {
		conns = map[string]map[string]struct{}{}
		s.edges[edge] = conns
	}
	set := conns[conn]
	if set == nil {
		set = make(map[string]struct{}, len(ids))
		conns[conn] = set
	}
	for _, id := range ids {
		if _, ok := set[id]; !ok {
			set[id] = struct{}{}
			s.n++
		}
	}
}

func (s *Sets) remove(edge, conn string, ids []string) {
	set := s.edges[edge][conn]
	for _, id := range ids {
		if _, ok := set[id]; ok {
			delete(set, id)
			s.n--
		}
	}
	if set != nil && len(set) == 0 {
		delete(s.edges[edge], conn)
		if len(s.edges[edge]) == 0 {
			delete(s.edges, edge)
		}
	}
}

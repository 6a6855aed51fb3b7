// Package state is presence's soft state: which connections every edge holds, which
// users are therefore online, their chosen status, and the StatusChange each
// transition produces. It is a deterministic state machine driven by edge events,
// status events and the passage of time; it does no I/O, so every presence replica
// that sees the same events computes the same changes with the same versions.
//
// Every method takes the local time "now" explicitly (tests use a fake clock).
// A Tracker is safe for concurrent use: one goroutine feeds events and Advance,
// command handlers read with View and Online.
package state

import (
	"container/heap"
	"sync"
	"time"
)

// Visible statuses (docs/protocol.md "Presence") and the chosen-only status Invisible.
const (
	Online    = "online"
	Away      = "away"
	Busy      = "busy"
	Offline   = "offline"
	Invisible = "invisible"
)

// ValidStatus reports whether s is a status a user may choose with set-status.
func ValidStatus(s string) bool {
	switch s {
	case Online, Away, Busy, Invisible:
		return true
	}
	return false
}

// Config tunes a Tracker.
type Config struct {
	// Grace is how long a user whose last connection closed still counts as online.
	Grace time.Duration
	// Heartbeat is the edges' heartbeat interval, used when a heartbeat does not
	// carry its own interval and for edges heard only through connection events.
	Heartbeat time.Duration
	// WarmUp is how long after Start the first heartbeat of an edge this tracker has
	// never heard of is adopted silently (its users were online before we started;
	// another replica already announced them). Default 2 × Heartbeat.
	WarmUp time.Duration
	// Retain is how long an offline user stays in memory (its lastSeenAt answers
	// queries while the store write may still be in flight). Default 1 min.
	Retain time.Duration
}

// Change is a visible status change to publish as a presencev1.StatusChange.
type Change struct {
	UserID string
	Status string // online, away, busy or offline
	// LastSeenMs is the public lastSeenAt (Unix ms, edge clock); 0 = never.
	LastSeenMs int64
	Version    int64
	// PersistLastSeen is set when the user went (visibly) offline: LastSeenMs must be
	// stored.
	PersistLastSeen bool
}

// ConnRef names one connection.
type ConnRef struct{ Edge, Conn string }

// Result is what one event or Advance produced.
type Result struct {
	Changes []Change
	// GoneConns are connections that closed (their presence subscriptions die).
	GoneConns []ConnRef
	// GoneEdges are edges that stopped or expired with all their connections.
	GoneEdges []string
}

// Stats are gauges for metrics.
type Stats struct {
	Edges, Connections, OnlineUsers int
}

type conn struct {
	user string
	atMs int64 // edge time it was added
}

type edge struct {
	conns     map[string]conn
	gone      map[string]int64 // tombstones: connection → disconnect time (edge ms)
	interval  time.Duration
	lastHeard time.Time // local time of the last heartbeat or event
	lastMs    int64     // edge time of the last heartbeat or event
	synced    bool      // a heartbeat was applied
}

type user struct {
	conns int
	// grace: the user's last connection closed at disconnectMs (edge clock); the
	// user is still online until graceUntil (local clock). Zero when not in grace.
	graceUntil   time.Time
	graceSeq     uint64
	disconnectMs int64

	pub        string // last published visible status ("" = offline, never published)
	lastSeenMs int64  // public lastSeenAt
	version    int64
	offlineAt  time.Time // local time it became fully offline, for pruning
}

type manual struct {
	status string
	atMs   int64
}

// Tracker is the soft state. The zero value is not usable; call New.
type Tracker struct {
	mu        sync.Mutex
	cfg       Config
	start     time.Time
	edges     map[string]*edge
	users     map[string]*user
	statuses  map[string]manual
	graces    graceHeap
	conns     int
	online    int
	lastPrune time.Time
}

// New returns a tracker that considers itself started at now.
func New(cfg Config, now time.Time) *Tracker {
	if cfg.WarmUp == 0 {
		cfg.WarmUp = 2 * cfg.Heartbeat
	}
	if cfg.Retain == 0 {
		cfg.Retain = time.Minute
	}
	return &Tracker{
		cfg: cfg, start: now, lastPrune: now,
		edges: map[string]*edge{}, users: map[string]*user{}, statuses: map[string]manual{},
	}
}

// LoadStatus seeds a user's chosen status (from the store at start). Older than what
// the tracker already holds is ignored. It produces no change.
func (t *Tracker) LoadStatus(userID, status string, atMs int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, ok := t.statuses[userID]; ok && cur.atMs > atMs {
		return
	}
	t.statuses[userID] = manual{status: status, atMs: atMs}
}

// Connected handles a KIND_CONNECTED event of edgeID at atMs (edge clock).
func (t *Tracker) Connected(edgeID, connID, userID string, atMs int64, now time.Time) Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	var r Result
	e := t.edge(edgeID, atMs, now)
	if d, ok := e.gone[connID]; ok && d >= atMs {
		return r // closed already
	}
	if _, ok := e.conns[connID]; ok {
		return r
	}
	e.conns[connID] = conn{user: userID, atMs: atMs}
	t.addConn(&r, userID, atMs, false)
	return r
}

// Disconnected handles a KIND_DISCONNECTED event.
func (t *Tracker) Disconnected(edgeID, connID string, atMs int64, now time.Time) Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	var r Result
	e := t.edge(edgeID, atMs, now)
	e.gone[connID] = atMs
	r.GoneConns = append(r.GoneConns, ConnRef{edgeID, connID})
	c, ok := e.conns[connID]
	if !ok {
		return r
	}
	delete(e.conns, connID)
	t.conns--
	t.removeConn(c.user, atMs, now.Add(t.cfg.Grace))
	return r
}

// HeartbeatConn is one connection listed in a heartbeat.
type HeartbeatConn struct{ Conn, User string }

// Heartbeat replaces edgeID's connections with list (a snapshot taken at atMs, edge
// clock). Connections added, and tombstones of connections closed, at or after atMs
// are newer than the snapshot and win over it. stopping removes the edge.
func (t *Tracker) Heartbeat(edgeID string, list []HeartbeatConn, interval time.Duration, atMs int64, stopping bool, now time.Time) Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	var r Result
	e, known := t.edges[edgeID]
	if stopping {
		if known {
			for id, c := range e.conns {
				r.GoneConns = append(r.GoneConns, ConnRef{edgeID, id})
				t.removeConn(c.user, atMs, now.Add(t.cfg.Grace))
			}
			t.conns -= len(e.conns)
			delete(t.edges, edgeID)
		}
		r.GoneEdges = append(r.GoneEdges, edgeID)
		return r
	}
	e = t.edge(edgeID, atMs, now)
	silent := !e.synced && now.Before(t.start.Add(t.cfg.WarmUp))
	e.synced = true
	if interval > 0 {
		e.interval = interval
	}
	listed := make(map[string]string, len(list))
	for _, c := range list {
		listed[c.Conn] = c.User
	}
	for id, c := range e.conns {
		if _, ok := listed[id]; ok || c.atMs >= atMs {
			continue
		}
		delete(e.conns, id)
		t.conns--
		r.GoneConns = append(r.GoneConns, ConnRef{edgeID, id})
		t.removeConn(c.user, atMs, now.Add(t.cfg.Grace))
	}
	for id, uid := range listed {
		if _, ok := e.conns[id]; ok {
			continue
		}
		if d, ok := e.gone[id]; ok && d >= atMs {
			continue
		}
		e.conns[id] = conn{user: uid, atMs: atMs}
		t.addConn(&r, uid, atMs, silent)
	}
	for id, d := range e.gone {
		if d < atMs {
			delete(e.gone, id)
		}
	}
	return r
}

// SetStatus applies a chosen status set at atMs (the set-status handler's clock).
// An older status than the one held is ignored, so replicas receiving status events
// in different orders agree.
func (t *Tracker) SetStatus(userID, status string, atMs int64, now time.Time) Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	var r Result
	if cur, ok := t.statuses[userID]; ok && cur.atMs > atMs {
		return r
	}
	t.statuses[userID] = manual{status: status, atMs: atMs}
	if u, ok := t.users[userID]; ok {
		t.update(&r, userID, u, atMs, false)
	}
	return r
}

// Advance fires what is due at now: edges not heard from for two intervals expire
// (their users' grace counts from the last time the edge was heard, so they go
// offline at once unless the grace is longer than two intervals) and graces that
// ended turn users offline. It returns the result and when to call it again.
func (t *Tracker) Advance(now time.Time) (Result, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var r Result
	for id, e := range t.edges {
		if now.Sub(e.lastHeard) < 2*e.interval {
			continue
		}
		for cid, c := range e.conns {
			r.GoneConns = append(r.GoneConns, ConnRef{id, cid})
			t.removeConn(c.user, e.lastMs, e.lastHeard.Add(t.cfg.Grace))
		}
		t.conns -= len(e.conns)
		delete(t.edges, id)
		r.GoneEdges = append(r.GoneEdges, id)
	}
	for len(t.graces) > 0 && !t.graces[0].until.After(now) {
		g := heap.Pop(&t.graces).(graceItem)
		u, ok := t.users[g.user]
		if !ok || u.graceSeq != g.seq || u.graceUntil.IsZero() {
			continue // cancelled by a reconnect
		}
		u.graceUntil = time.Time{}
		u.offlineAt = now
		t.online--
		t.update(&r, g.user, u, u.disconnectMs, false)
	}
	if now.Sub(t.lastPrune) >= t.cfg.Retain/2 {
		t.lastPrune = now
		for id, u := range t.users {
			if u.conns == 0 && u.graceUntil.IsZero() && now.Sub(u.offlineAt) >= t.cfg.Retain {
				delete(t.users, id)
			}
		}
	}
	next := t.lastPrune.Add(t.cfg.Retain / 2)
	for _, e := range t.edges {
		if d := e.lastHeard.Add(2 * e.interval); d.Before(next) {
			next = d
		}
	}
	if len(t.graces) > 0 && t.graces[0].until.Before(next) {
		next = t.graces[0].until
	}
	return r, next
}

// View is what a tracker knows of one user.
type View struct {
	Status     string // online, away, busy or offline (as others see it)
	LastSeenMs int64  // 0 when unknown here (look in the store)
	Connected  bool   // has a live connection (or is in grace), whatever the status
}

// View returns the current views of ids, in order.
func (t *Tracker) View(ids []string) []View {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]View, len(ids))
	for i, id := range ids {
		u, ok := t.users[id]
		if !ok {
			out[i] = View{Status: Offline}
			continue
		}
		out[i] = View{Status: t.visible(id, u), LastSeenMs: u.lastSeenMs, Connected: u.connected()}
	}
	return out
}

// Stats returns the tracker's gauges.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Stats{Edges: len(t.edges), Connections: t.conns, OnlineUsers: t.online}
}

// edge returns edge id, creating it, and records that it was heard at atMs (edge
// clock) and now (local clock).
func (t *Tracker) edge(id string, atMs int64, now time.Time) *edge {
	e, ok := t.edges[id]
	if !ok {
		e = &edge{conns: map[string]conn{}, gone: map[string]int64{}, interval: t.cfg.Heartbeat}
		t.edges[id] = e
	}
	e.lastHeard = now
	e.lastMs = max(e.lastMs, atMs)
	return e
}

func (u *user) connected() bool { return u.conns > 0 || !u.graceUntil.IsZero() }

func (t *Tracker) addConn(r *Result, uid string, atMs int64, silent bool) {
	t.conns++
	u, ok := t.users[uid]
	if !ok {
		u = &user{}
		t.users[uid] = u
	}
	if !u.connected() {
		t.online++
	}
	u.conns++
	if !u.graceUntil.IsZero() {
		u.graceUntil = time.Time{} // reconnected within the grace period: no flap
		u.graceSeq++
	}
	t.update(r, uid, u, atMs, silent)
}

// removeConn drops one connection of uid (the caller removed it from its edge and
// adjusts t.conns). When it was the user's last, the grace period starts; it ends
// at until (local clock) and the user's lastSeenAt will be atMs (edge clock).
func (t *Tracker) removeConn(uid string, atMs int64, until time.Time) {
	u, ok := t.users[uid]
	if !ok || u.conns == 0 {
		return
	}
	u.conns--
	if u.conns > 0 {
		return
	}
	u.graceSeq++
	u.graceUntil = until
	u.disconnectMs = atMs
	heap.Push(&t.graces, graceItem{until: until, user: uid, seq: u.graceSeq})
}

func (t *Tracker) visible(uid string, u *user) string {
	if !u.connected() {
		return Offline
	}
	switch m := t.statuses[uid].status; m {
	case Invisible:
		return Offline
	case "", Online:
		return Online
	default:
		return m
	}
}

// update recomputes uid's visible status after an event at atMs and records a
// Change when it differs from the last one published. Versions are
// max(atMs×1000, previous+1): derived from the triggering event's time, which every
// replica sees identically, and still strictly increasing per user. A silent
// update (warm-up adoption) changes the state without a Change or a new version.
func (t *Tracker) update(r *Result, uid string, u *user, atMs int64, silent bool) {
	v := t.visible(uid, u)
	prev := u.pub
	if prev == "" {
		prev = Offline
	}
	if v == prev {
		return
	}
	u.pub = v
	u.lastSeenMs = atMs
	if silent {
		return
	}
	u.version = max(atMs*1000, u.version+1)
	r.Changes = append(r.Changes, Change{
		UserID: uid, Status: v, LastSeenMs: atMs, Version: u.version, PersistLastSeen: v == Offline,
	})
}

type graceItem struct {
	until time.Time
	user  string
	seq   uint64
}

type graceHeap []graceItem

func (h graceHeap) Len() int           { return len(h) }
func (h graceHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h graceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *graceHeap) Push(x any)        { *h = append(*h, x.(graceItem)) }
func (h *graceHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

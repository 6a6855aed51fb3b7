package edge

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	presencev1 "github.com/talim/realtime/proto/talim/presence/v1"
	"github.com/talim/realtime/services/edge/internal/envelope"
)

// The edge side of presence (issue 6): connection events and heartbeats go to the
// presence service; StatusChange events of watched users come back and are delivered
// as `presence` frames to the connections watching them.

func (s *Server) publishConnEvent(c *Conn, connected bool) {
	kind := presencev1.ConnectionEvent_KIND_DISCONNECTED
	if connected {
		kind = presencev1.ConnectionEvent_KIND_CONNECTED
	}
	b, err := proto.Marshal(&presencev1.ConnectionEvent{
		Kind: kind, EdgeId: s.rt.InstanceID, ConnectionId: c.id, UserId: c.userID,
		AtUnixMs: time.Now().UnixMilli(),
	})
	if err == nil {
		err = s.rt.NC.Publish(subject.PresenceConn+s.rt.InstanceID, b)
	}
	if err != nil {
		s.log.Warn("publish presence connection event", "err", err)
	}
}

func (s *Server) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PresenceHeartbeat)
	defer t.Stop()
	s.publishHeartbeat(false)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.publishHeartbeat(false)
		}
	}
}

// publishHeartbeat lists every live connection. stopping marks the last one of a
// draining edge.
func (s *Server) publishHeartbeat(stopping bool) {
	hb := &presencev1.Heartbeat{
		EdgeId: s.rt.InstanceID, IntervalMs: s.cfg.PresenceHeartbeat.Milliseconds(),
		AtUnixMs: time.Now().UnixMilli(), Stopping: stopping,
	}
	if !stopping {
		s.connsMu.Lock()
		hb.Connections = make([]*presencev1.Connection, 0, len(s.conns))
		for c := range s.conns {
			if !c.closed.Load() {
				hb.Connections = append(hb.Connections, &presencev1.Connection{ConnectionId: c.id, UserId: c.userID})
			}
		}
		s.connsMu.Unlock()
	}
	b, err := proto.Marshal(hb)
	if err == nil {
		if max := s.rt.NC.MaxPayload(); max > 0 && int64(len(b)) > max {
			s.log.Error("presence heartbeat exceeds the NATS max payload; raise max_payload", "bytes", len(b), "max", max)
		}
		err = s.rt.NC.Publish(subject.PresenceHeartbeat+s.rt.InstanceID, b)
	}
	if err != nil {
		s.log.Warn("publish presence heartbeat", "err", err)
	}
}

// watcher holds one NATS subscription per watched user on this edge, refcounted by
// the connections watching that user, and drops StatusChanges whose version is not
// newer than the last one delivered (several presence replicas publish the same
// change).
type watcher struct {
	s  *Server
	nc *nats.Conn

	mu        sync.Mutex
	users     map[string]*watchEntry
	bySubject map[string]*watchEntry
}

type watchEntry struct {
	userID, subject string
	sub             *nats.Subscription
	conns           map[*Conn]struct{}
	version         int64
}

func newWatcher(s *Server, nc *nats.Conn) *watcher {
	return &watcher{s: s, nc: nc, users: map[string]*watchEntry{}, bySubject: map[string]*watchEntry{}}
}

func (w *watcher) add(userID string, c *Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.users[userID]
	if e == nil {
		subj := subject.PresenceChangedFor(userID)
		sub, err := w.nc.ChanSubscribe(subj, w.s.disp.shard(subj))
		if err != nil {
			w.s.log.Warn("subscribe presence changes", "user", userID, "err", err)
			return
		}
		e = &watchEntry{userID: userID, subject: subj, sub: sub, conns: map[*Conn]struct{}{}}
		w.users[userID] = e
		w.bySubject[subj] = e
	}
	e.conns[c] = struct{}{}
}

func (w *watcher) remove(userID string, c *Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.users[userID]
	if e == nil {
		return
	}
	delete(e.conns, c)
	if len(e.conns) == 0 {
		_ = e.sub.Unsubscribe()
		delete(w.users, userID)
		delete(w.bySubject, e.subject)
	}
}

func (w *watcher) subscriptions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.users)
}

func (w *watcher) deliver(m *nats.Msg, st *shardState) {
	var sc presencev1.StatusChange
	if err := proto.Unmarshal(m.Data, &sc); err != nil {
		w.s.log.Warn("malformed presence change", "subject", m.Subject, "err", err)
		return
	}
	w.mu.Lock()
	e := w.bySubject[m.Subject]
	if e == nil || (sc.GetVersion() != 0 && sc.GetVersion() <= e.version) {
		w.mu.Unlock()
		return
	}
	if sc.GetVersion() != 0 {
		e.version = sc.GetVersion()
	}
	st.conns = st.conns[:0]
	for c := range e.conns {
		st.conns = append(st.conns, c)
	}
	w.mu.Unlock()
	defer clear(st.conns)

	data := envelope.AppendString([]byte(`{"userId":`), sc.GetUserId())
	data = append(data, `,"status":`...)
	data = envelope.AppendString(data, sc.GetStatus())
	data = append(data, `,"lastSeenAt":`...)
	if sc.GetLastSeenAt() == "" {
		data = append(data, "null"...)
	} else {
		data = envelope.AppendString(data, sc.GetLastSeenAt())
	}
	data = append(data, '}')
	fs := frameSet{s: w.s, event: "presence", data: data}
	for _, c := range st.conns {
		c.enqueue(fs.get(c.proto), nil)
	}
}

// watchUsers adds users to the connection's presence watch set (capped).
func (c *Conn) watchUsers(users []string) {
	var added []string
	c.mu.Lock()
	if !c.closed.Load() {
		if c.watches == nil {
			c.watches = map[string]struct{}{}
		}
		for _, u := range users {
			if _, ok := c.watches[u]; ok || len(c.watches) >= c.s.cfg.MaxPresenceWatches {
				continue
			}
			c.watches[u] = struct{}{}
			added = append(added, u)
		}
	}
	c.mu.Unlock()
	for _, u := range added {
		c.s.watch.add(u, c)
	}
	// A connection closed meanwhile removed its watches before these were added.
	if c.closed.Load() {
		for _, u := range added {
			c.s.watch.remove(u, c)
		}
	}
}

func (c *Conn) unwatch(users []string) {
	var removed []string
	c.mu.Lock()
	for _, u := range users {
		if _, ok := c.watches[u]; ok {
			delete(c.watches, u)
			removed = append(removed, u)
		}
	}
	c.mu.Unlock()
	for _, u := range removed {
		c.s.watch.remove(u, c)
	}
}

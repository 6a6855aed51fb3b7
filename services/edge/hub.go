package edge

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge/internal/wsio"
)

// hub holds the per-user outbound subscriptions of this edge: one NATS subscription
// per connected user on talim.user.v1.<user>, shared by that user's connections and
// removed when the last one closes. It also counts connection slots for the
// per-user cap (reserved before the upgrade).
//
// hub.mu is never held while calling into a Conn (deliveries copy the connection list
// first), so Conn methods may call back into the hub.
type hub struct {
	s  *Server
	nc *nats.Conn

	mu        sync.RWMutex
	users     map[string]*userEntry // by user id
	bySubject map[string]*userEntry
}

type userEntry struct {
	userID  string
	subject string
	sub     *nats.Subscription
	slots   int // reserved + attached connections
	conns   []*Conn
}

func newHub(s *Server, nc *nats.Conn) *hub {
	return &hub{s: s, nc: nc, users: map[string]*userEntry{}, bySubject: map[string]*userEntry{}}
}

// errUserCap is returned by reserve when the user holds the maximum of connections.
var errUserCap = fmt.Errorf("too many connections for this user")

// reserve takes one connection slot of userID, subscribing to the user's subject when
// it is the first. The slot is given back by release (failed upgrade) or detach.
func (h *hub) reserve(userID string, maxConns int) error {
	h.mu.Lock()
	e := h.users[userID]
	if e != nil && e.slots >= maxConns {
		h.mu.Unlock()
		return errUserCap
	}
	created := false
	if e == nil {
		subj := subject.User(userID)
		sub, err := h.nc.ChanSubscribe(subj, h.s.disp.shard(subj))
		if err != nil {
			h.mu.Unlock()
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		e = &userEntry{userID: userID, subject: subj, sub: sub}
		h.users[userID] = e
		h.bySubject[subj] = e
		created = true
	}
	e.slots++
	h.mu.Unlock()
	if created {
		// Make sure the server registered the subscription before the client is told
		// it is connected, so nothing published after `connected` is missed.
		_ = h.nc.FlushTimeout(2 * time.Second)
	}
	return nil
}

// release gives back a slot that never became a connection.
func (h *hub) release(userID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.users[userID]; e != nil {
		e.slots--
		h.maybeRemove(e)
	}
}

// attach adds a connection to its user's entry (its slot is already reserved).
func (h *hub) attach(c *Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.users[c.userID]
	e.conns = append(e.conns, c)
}

// detach removes a connection and gives back its slot.
func (h *hub) detach(c *Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.users[c.userID]
	if e == nil {
		return
	}
	if i := slices.Index(e.conns, c); i >= 0 {
		e.conns = slices.Delete(e.conns, i, i+1)
		e.slots--
	}
	h.maybeRemove(e)
}

func (h *hub) maybeRemove(e *userEntry) {
	if e.slots > 0 {
		return
	}
	_ = e.sub.Unsubscribe()
	delete(h.users, e.userID)
	delete(h.bySubject, e.subject)
}

// Subscriptions reports the number of per-user subscriptions (for tests and metrics).
func (h *hub) subscriptions() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users)
}

// shardState is per dispatcher shard scratch space, reused across messages.
type shardState struct {
	out    edgev1.Outbound
	conns  []*Conn
	frames frameCache
}

// frameSet lazily builds each distinct frame of one delivery once per protocol.
// With a cache, identical events of many users (one room message fanned out to
// every member: the same bytes on each member's subject) share one built frame
// per protocol instead of building and allocating it per user.
type frameSet struct {
	s      *Server
	event  string
	data   []byte
	cache  *frameCache
	slot   *cachedFrames
	frames [maxProtocols][]byte
}

func (f *frameSet) get(proto uint8) []byte {
	if f.frames[proto] != nil {
		return f.frames[proto]
	}
	if f.cache != nil && f.slot == nil {
		f.slot = f.cache.lookup(f.event, f.data)
	}
	if f.slot != nil && f.slot.frames[proto] != nil {
		f.frames[proto] = f.slot.frames[proto]
		return f.frames[proto]
	}
	b := wsio.Begin(make([]byte, 0, wsio.HeadRoom+len(f.event)+len(f.data)+32))
	b = f.s.protos[proto].AppendEvent(b, f.event, f.data)
	f.frames[proto] = wsio.Finish(b, ws.OpText)
	if f.slot != nil {
		f.slot.frames[proto] = f.frames[proto] // frames are never written after Finish
	}
	return f.frames[proto]
}

// frameCacheSlots is the size of one dispatcher shard's frame cache (direct
// mapped by hash of event and data).
const frameCacheSlots = 256

// frameCache remembers the frames built for recent events of one dispatcher
// shard. A hit compares the event and the data byte by byte, so a hash
// collision can only cost a rebuild, never deliver the wrong frame.
type frameCache struct {
	seed  maphash.Seed
	slots *[frameCacheSlots]cachedFrames
}

type cachedFrames struct {
	used   bool
	hash   uint64
	event  string
	data   []byte
	frames [maxProtocols][]byte
}

func (c *frameCache) lookup(event string, data []byte) *cachedFrames {
	if c.slots == nil {
		c.seed, c.slots = maphash.MakeSeed(), new([frameCacheSlots]cachedFrames)
	}
	var h maphash.Hash
	h.SetSeed(c.seed)
	_, _ = h.WriteString(event)
	_, _ = h.Write(data)
	sum := h.Sum64()
	sl := &c.slots[sum%frameCacheSlots]
	if sl.used && sl.hash == sum && sl.event == event && bytes.Equal(sl.data, data) {
		return sl
	}
	*sl = cachedFrames{used: true, hash: sum, event: event, data: bytes.Clone(data)}
	return sl
}

// deliver applies one edgev1.Outbound to the local connections of its user
// (delivery rule in edge.proto). It runs on a dispatcher shard goroutine.
func (h *hub) deliver(m *nats.Msg, st *shardState) {
	h.mu.RLock()
	e := h.bySubject[m.Subject]
	if e == nil {
		h.mu.RUnlock()
		return
	}
	st.conns = append(st.conns[:0], e.conns...)
	h.mu.RUnlock()
	defer clear(st.conns)

	out := &st.out
	proto.Reset(out)
	if err := proto.Unmarshal(m.Data, out); err != nil {
		h.s.log.Warn("malformed outbound", "subject", m.Subject, "err", err)
		return
	}
	if span := deliverSpan(m, out); span != nil {
		defer endDeliver(span, len(st.conns))
	}
	if items := out.GetBatch(); len(items) > 0 {
		// A batch of room events (chat's group delivery): each in order, as if
		// published one by one. Items are never batches themselves.
		for _, item := range items {
			item.Batch = nil
			h.s.deliverOutboundCached(item, st.conns, &st.frames)
		}
		return
	}
	h.s.deliverOutboundCached(out, st.conns, &st.frames)
}

// deliverOutbound is the delivery rule, separate from NATS for benchmarks.
func (s *Server) deliverOutbound(out *edgev1.Outbound, conns []*Conn) {
	s.deliverOutboundCached(out, conns, nil)
}

// deliverOutboundCached is deliverOutbound sharing frames through cache (nil:
// none).
func (s *Server) deliverOutboundCached(out *edgev1.Outbound, conns []*Conn, cache *frameCache) {
	ctrl := out.GetControl()
	if rooms := ctrl.GetRemoveRooms(); len(rooms) > 0 {
		for _, c := range conns {
			c.leaveRooms(rooms)
		}
	}
	if out.GetEvent() != "" {
		main := frameSet{s: s, event: out.GetEvent(), data: out.GetData(), cache: cache}
		alt := frameSet{s: s, event: out.GetAltEvent(), data: out.GetAltData(), cache: cache}
		room, only, except := out.GetRoomId(), out.GetOnlyConnections(), out.GetExceptConnection()
		for _, c := range conns {
			if except != "" && c.id == except {
				continue
			}
			if len(only) > 0 && !slices.Contains(only, c.id) {
				continue
			}
			switch {
			case room == "" || c.joined(room):
				c.enqueue(main.get(c.proto), nil)
			case alt.event != "":
				c.enqueue(alt.get(c.proto), nil)
			}
		}
	}
	if code := ctrl.GetCloseCode(); code != 0 {
		d := Disconnect{Code: ws.StatusCode(code), Reason: ctrl.GetCloseReason()}
		for _, c := range conns {
			c.Close(d)
		}
	}
}

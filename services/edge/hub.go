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
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge/internal/sio"
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
	conns []*Conn
	cache outboundCache
}

// frameSet lazily builds each distinct frame of one delivery once per protocol.
type frameSet struct {
	s      *Server
	event  string
	data   []byte
	offset string // Socket.IO recovery offset of a chat-message ("" none)
	frames [maxProtocols][]byte
}

func (f *frameSet) get(proto uint8) []byte {
	if f.frames[proto] == nil {
		b := wsio.Begin(make([]byte, 0, wsio.HeadRoom+len(f.event)+len(f.data)+len(f.offset)+32))
		if proto == protoSocketIO && f.offset != "" {
			b = sio.AppendEventOffset(b, f.event, f.data, f.offset)
		} else {
			b = f.s.protos[proto].AppendEvent(b, f.event, f.data)
		}
		f.frames[proto] = wsio.Finish(b, ws.OpText)
	}
	return f.frames[proto]
}

// outboundCacheSlots is the size of one dispatcher shard's outbound cache.
const outboundCacheSlots = 256

// outboundCache remembers, per dispatcher shard, recently delivered outbound
// events by their encoded bytes: decoded once, with their frames built once per
// protocol. One room message fanned out to 1,000 members arrives as the same
// bytes on 1,000 user subjects; with the cache the shard decodes and frames it
// once, not 1,000 times. A hit compares the bytes in full, so a hash collision
// can only cost a decode, never deliver the wrong event. Only the shard's own
// goroutine touches its cache.
type outboundCache struct {
	seed  maphash.Seed
	slots *[outboundCacheSlots]cachedOutbound
}

type cachedOutbound struct {
	used      bool
	hash      uint64
	raw       []byte
	out       *edgev1.Outbound
	main, alt frameSet
}

// get returns the decoded event of raw (nil when it is not a valid Outbound).
func (c *outboundCache) get(s *Server, raw []byte) *cachedOutbound {
	if c.slots == nil {
		c.seed, c.slots = maphash.MakeSeed(), new([outboundCacheSlots]cachedOutbound)
	}
	sum := maphash.Bytes(c.seed, raw)
	sl := &c.slots[sum%outboundCacheSlots]
	if sl.used && sl.hash == sum && bytes.Equal(sl.raw, raw) {
		return sl
	}
	out := &edgev1.Outbound{}
	if err := proto.Unmarshal(raw, out); err != nil {
		return nil
	}
	out.Batch = nil // items are never batches themselves
	*sl = cachedOutbound{used: true, hash: sum, raw: bytes.Clone(raw), out: out,
		main: frameSet{s: s, event: out.GetEvent(), data: out.GetData()},
		alt:  frameSet{s: s, event: out.GetAltEvent(), data: out.GetAltData()}}
	return sl
}

// outboundBatchField is edgev1.Outbound.batch.
const outboundBatchField = 10

// deliver applies one edgev1.Outbound to the local connections of its user
// (delivery rule in edge.proto). It runs on a dispatcher shard goroutine. A
// batch (chat's group delivery, field 10) is applied item by item, in order, as
// if each had been published on its own; its items are read with protowire and
// looked up in the shard's cache by their bytes.
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

	if items, ok := batchItems(m.Data); ok {
		for i, raw := range items {
			c := st.cache.get(h.s, raw)
			if c == nil {
				h.s.log.Warn("malformed outbound batch item", "subject", m.Subject)
				return
			}
			if i == 0 {
				if span := deliverSpan(m, c.out.GetEvent(), len(items)); span != nil {
					defer endDeliver(span, len(st.conns))
				}
			}
			h.s.deliverDecoded(c.out, st.conns, &c.main, &c.alt)
		}
		return
	}
	c := st.cache.get(h.s, m.Data)
	if c == nil {
		h.s.log.Warn("malformed outbound", "subject", m.Subject)
		return
	}
	if span := deliverSpan(m, c.out.GetEvent(), 0); span != nil {
		defer endDeliver(span, len(st.conns))
	}
	h.s.deliverDecoded(c.out, st.conns, &c.main, &c.alt)
}

// batchItems returns the encoded items of an Outbound that is a batch (only
// field 10 present); ok is false for anything else (decoded as one event).
func batchItems(b []byte) (items [][]byte, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != outboundBatchField || typ != protowire.BytesType {
			return nil, false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, false
		}
		items = append(items, v)
		b = b[n:]
	}
	return items, len(items) > 0
}

// deliverOutbound is the delivery rule, separate from NATS for benchmarks.
func (s *Server) deliverOutbound(out *edgev1.Outbound, conns []*Conn) {
	main := frameSet{s: s, event: out.GetEvent(), data: out.GetData()}
	alt := frameSet{s: s, event: out.GetAltEvent(), data: out.GetAltData()}
	s.deliverDecoded(out, conns, &main, &alt)
}

// deliverDecoded applies out with its frame sets (built lazily, shared by every
// connection and, through the shard cache, by every user).
func (s *Server) deliverDecoded(out *edgev1.Outbound, conns []*Conn, main, alt *frameSet) {
	ctrl := out.GetControl()
	if rooms := ctrl.GetRemoveRooms(); len(rooms) > 0 {
		for _, c := range conns {
			c.leaveRooms(rooms)
		}
	}
	if out.GetEvent() != "" {
		room, only, except := out.GetRoomId(), out.GetOnlyConnections(), out.GetExceptConnection()
		seq := out.GetSeq()
		if seq > 0 && room != "" && main.offset == "" && main.event == "chat-message" {
			main.offset = sioOffset(seq, room)
		}
		for _, c := range conns {
			if except != "" && c.id == except {
				continue
			}
			if len(only) > 0 && !slices.Contains(only, c.id) {
				continue
			}
			joined := room == ""
			if !joined {
				var held bool
				joined, held = c.admitRoomEvent(room, func() heldEvent {
					h := heldEvent{main: main.get(c.proto), seq: seq, message: main.event == "chat-message", offset: main.offset != ""}
					if alt.event != "" {
						h.alt = alt.get(c.proto)
					}
					return h
				})
				if held {
					continue // released after the join's ack (joingate.go)
				}
			}
			switch {
			case joined:
				if main.offset != "" && c.sio != nil && !c.sio.delivered(room, seq) {
					continue // already sent by the recovery (socketio_recovery.go)
				}
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

package edge

import (
	"encoding/json"

	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

// A join gate closes the window between a join's history read and the moment the
// edge learns that the connection joined (docs/protocol.md, "Recovering what you
// missed"). Chat reads the history, then answers; a message stored in between is
// published to the member's subject before the answer arrives, when the
// connection has not joined the room yet, so it would reach the client only as a
// `room-updated` badge and the client would notice the gap only at the room's
// next message. While a `join-chat-room` of a room is in flight, the connection's
// events of that room are held in order (at most maxHeldPerJoin); after the ack
// and the history frames they are released: a chat-message whose seq the ack's
// lastSeq covers is dropped (the history holds it or the client pages to it),
// the rest is delivered as if it had arrived after the join.
const maxHeldPerJoin = 256

type joinGate struct {
	joins   int // joins of the room in flight on this connection
	held    []heldEvent
	dropped int
}

type heldEvent struct {
	main, alt []byte // frames for the connection's protocol; alt may be nil
	seq       int64
	message   bool // a chat-message (filtered by the join's lastSeq)
	offset    bool // has a Socket.IO recovery offset
}

// joinRoomID is the room of a join-chat-room command's data; "" when the data
// does not name one (chat rejects such a join; nothing is gated).
func joinRoomID(data []byte) string {
	var req struct {
		RoomID string `json:"roomId"`
	}
	if json.Unmarshal(data, &req) != nil || len(req.RoomID) > 256 {
		return ""
	}
	return req.RoomID
}

// openJoinGate starts holding room's events for a join in flight.
func (c *Conn) openJoinGate(room string) {
	c.mu.Lock()
	if c.joinGates == nil {
		c.joinGates = make(map[string]*joinGate)
	}
	g := c.joinGates[room]
	if g == nil {
		g = &joinGate{}
		c.joinGates[room] = g
	}
	g.joins++
	c.mu.Unlock()
}

// admitRoomEvent decides, under one lock, how a room event reaches c: held while
// a join of the room is in flight (held is true; hold builds the entry), else
// as the main event when c joined the room, else as the alternative.
func (c *Conn) admitRoomEvent(room string, hold func() heldEvent) (joined, held bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.joinGates[room]; g != nil {
		if len(g.held) < maxHeldPerJoin {
			g.held = append(g.held, hold())
		} else {
			g.dropped++ // recovered by the client at the room's next message
		}
		return false, true
	}
	_, joined = c.rooms[room]
	return joined, false
}

// closeJoinGate releases what was held for one join of room, after its reply
// (nil when it failed) was turned into frames. The last join in flight removes
// the gate; the loop takes what arrives while it releases, so the held events
// stay in order with the live ones that follow.
func (c *Conn) closeJoinGate(room string, rep *edgev1.Reply) {
	lastSeq := int64(-1) // -1: not parsed yet
	for {
		c.mu.Lock()
		g := c.joinGates[room]
		if g == nil {
			c.mu.Unlock()
			return
		}
		held := g.held
		g.held = nil
		if len(held) == 0 {
			if g.joins--; g.joins <= 0 {
				delete(c.joinGates, room)
				if g.dropped > 0 {
					c.s.log.Debug("join gate overflowed", "conn", c.id, "room", room, "dropped", g.dropped)
				}
			}
			c.mu.Unlock()
			return
		}
		if g.joins > 1 {
			// Another join of the room is still in flight: it releases them.
			g.held = held
			g.joins--
			c.mu.Unlock()
			return
		}
		_, joined := c.rooms[room]
		c.mu.Unlock()
		if lastSeq < 0 {
			lastSeq = ackLastSeq(rep)
		}
		for _, h := range held {
			switch {
			case !joined:
				if h.alt != nil {
					c.enqueue(h.alt, nil)
				}
			case h.message && h.seq > 0 && h.seq <= lastSeq:
				// In the history sent with the ack, or before it.
			case h.offset && c.sio != nil && !c.sio.delivered(room, h.seq):
			default:
				c.enqueue(h.main, nil)
			}
		}
	}
}

// ackLastSeq is the lastSeq of a successful join's ack data (0 when absent).
func ackLastSeq(rep *edgev1.Reply) int64 {
	if rep == nil || rep.GetError() != nil {
		return 0
	}
	var d struct {
		LastSeq int64 `json:"lastSeq"`
	}
	_ = json.Unmarshal(rep.GetData(), &d)
	return d.LastSeq
}

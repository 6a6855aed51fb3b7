package edge

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/pkg/command"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge/internal/envelope"
)

// handleText handles one client text message. msg is only valid during the call.
func (c *Conn) handleText(msg []byte) {
	env, derr := c.s.protos[c.proto].Decode(msg)
	if derr != nil {
		c.sendError(derr.ID, command.CodeBadRequest, derr.Reason, 0)
		c.abuse(false)
		return
	}
	if len(env.Event) == 0 {
		return // protocol-internal message
	}
	c.handleCommand(env)
}

// handleCommand rate-limits, routes and forwards one decoded client event, whatever
// the wire protocol (handleText for native frames, sioConn.handleText for Socket.IO
// events). env's slices are only valid during the call.
func (c *Conn) handleCommand(env envelope.Envelope) {
	if r := c.limiter.Reserve(); !r.OK() || r.Delay() > 0 {
		d := r.Delay()
		r.Cancel()
		retry := (d + time.Millisecond - 1).Milliseconds()
		if retry < 1 {
			retry = 1
		}
		c.sendError(env.ID, command.CodeRateLimited, "too many commands", retry)
		c.s.metrics.request(eventLabel(env.Event), resultError, 0)
		c.abuse(true)
		return
	}
	rt, ok := routes[string(env.Event)]
	if !ok {
		switch string(env.Event) {
		case eventPing:
			c.sendAck(env.ID, emptyObject)
			c.s.metrics.request(eventPing, resultOK, 0)
			return
		case eventAuthRefresh:
			c.authRefresh(env)
			return
		}
		c.sendError(env.ID, command.CodeUnknownEvent, "unknown event "+strconv.Quote(string(env.Event)), 0)
		c.s.metrics.request("unknown", resultError, 0)
		c.abuse(false)
		return
	}
	deadline := time.Now().Add(c.s.cfg.RequestTimeout)
	cmd := &edgev1.Command{
		Identity: c.identity, ConnectionId: c.id, EdgeId: c.s.rt.InstanceID, Event: rt.event,
		Data: env.Data, DeadlineUnixMs: deadline.UnixMilli(),
	}
	span := c.commandTrace(rt.event, cmd)
	payload, err := proto.Marshal(cmd) // copies env.Data: msg may be reused after return
	if err != nil {
		endSpan(span, command.CodeInternal)
		c.sendError(env.ID, command.CodeInternal, "internal error", 0)
		return
	}
	var id envelope.ID
	if env.ID.Present() {
		id = append(envelope.ID(nil), env.ID...)
	}
	// Owned by the server: drain waits for forwards before NATS is closed.
	if rt.event == eventJoinRoom {
		if room := joinRoomID(env.Data); room != "" {
			c.openJoinGate(room)
			c.s.forwards.Go(func() { c.closeJoinGate(room, c.forward(rt, id, payload, deadline, span)) })
			return
		}
	}
	c.s.forwards.Go(func() { c.forward(rt, id, payload, deadline, span) })
}

var emptyObject = []byte("{}")

// forward sends one command to its service and turns the reply into frames. span
// is the command's span (nil with tracing off); forward ends it. It returns the
// service's reply (nil when there was none).
func (c *Conn) forward(rt *route, id envelope.ID, payload []byte, deadline time.Time, span trace.Span) *edgev1.Reply {
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	msg, err := c.s.rt.NC.RequestWithContext(ctx, rt.subject, payload)
	cancel()
	elapsed := time.Since(start)
	if err != nil {
		c.s.metrics.request(rt.event, resultUnavailable, elapsed)
		reason := "service unavailable, nothing was done; retry later"
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			reason = "service did not answer in time; retry later"
		}
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, context.DeadlineExceeded) {
			c.s.log.Warn("command request failed", "event", rt.event, "conn", c.id, "err", err)
		}
		endSpan(span, command.CodeUnavailable)
		c.sendError(id, command.CodeUnavailable, reason, 0)
		return nil
	}
	var rep edgev1.Reply
	if err := proto.Unmarshal(msg.Data, &rep); err != nil {
		c.s.metrics.request(rt.event, resultError, elapsed)
		c.s.log.Error("malformed reply", "event", rt.event, "err", err)
		endSpan(span, command.CodeInternal)
		c.sendError(id, command.CodeInternal, "internal error", 0)
		return nil
	}
	if e := rep.GetError(); e != nil {
		res := resultError
		if e.GetCode() == command.CodeUnavailable {
			res = resultUnavailable
		}
		c.s.metrics.request(rt.event, res, elapsed)
		endSpan(span, e.GetCode())
		c.sendError(id, e.GetCode(), e.GetMessage(), e.GetRetryAfterMs())
		return &rep
	}
	c.s.metrics.request(rt.event, resultOK, elapsed)
	// Room and watch changes first, so that live events published right after the
	// service answered reach the connection.
	c.leaveRooms(rep.GetLeaveRooms())
	c.joinRooms(rep.GetJoinRooms())
	if c.sio != nil && rt.event == eventJoinRoom {
		c.sio.joined(rep.GetData()) // recovery starts after the room's lastSeq
	}
	if len(rep.GetUnwatchUsers()) > 0 {
		c.unwatch(rep.GetUnwatchUsers())
	}
	if len(rep.GetWatchUsers()) > 0 {
		c.watchUsers(rep.GetWatchUsers())
	}
	data := rep.GetData()
	if len(data) == 0 {
		data = emptyObject
	}
	c.sendAck(id, data)
	for _, f := range rep.GetFrames() {
		c.sendEvent(f.GetEvent(), f.GetData())
	}
	endSpan(span, "")
	return &rep
}

// authRefresh replaces the connection's token by a fresher one of the same user.
func (c *Conn) authRefresh(env envelope.Envelope) {
	token, ok := jsonStringField(env.Data, "token")
	if !ok || token == "" {
		c.sendError(env.ID, command.CodeBadRequest, "data.token is required", 0)
		c.s.metrics.request(eventAuthRefresh, resultError, 0)
		return
	}
	claims, err := c.s.verifier.Verify(token)
	if err != nil {
		c.sendError(env.ID, command.CodeUnauthorized, "invalid token", 0)
		c.s.metrics.request(eventAuthRefresh, resultError, 0)
		return
	}
	if claims.UserID != c.userID {
		c.sendError(env.ID, command.CodeForbidden, "token belongs to another user", 0)
		c.s.metrics.request(eventAuthRefresh, resultError, 0)
		return
	}
	c.setExpiry(claims)
	c.s.metrics.request(eventAuthRefresh, resultOK, 0)
	b := append([]byte(`{"expiresAt":"`), claims.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000Z")...)
	c.sendAck(env.ID, append(b, `"}`...))
}

func (c *Conn) setExpiry(claims auth.Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return
	}
	c.expiresAt = claims.ExpiresAt
	// Display name and roles may change with a refreshed token.
	c.identity = &edgev1.Identity{UserId: claims.UserID, DisplayName: claims.Name, Roles: claims.Roles}
	if c.expTimer == nil {
		c.expTimer = time.AfterFunc(time.Until(claims.ExpiresAt), c.onExpiry)
	} else {
		c.expTimer.Reset(time.Until(claims.ExpiresAt))
	}
}

// newTraceparent generates a W3C traceparent for a command that arrived without one.
func newTraceparent() string {
	const hexd = "0123456789abcdef"
	var b [55]byte
	copy(b[:], "00-")
	hi, lo, span := rand.Uint64(), rand.Uint64(), rand.Uint64()|1
	put := func(off int, v uint64) {
		for i := 15; i >= 0; i-- {
			b[off+i] = hexd[v&0xf]
			v >>= 4
		}
	}
	put(3, hi)
	put(19, lo)
	b[35] = '-'
	put(36, span)
	copy(b[52:], "-01")
	return string(b[:])
}

package edge

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/talim/realtime/pkg/auth"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/edge/internal/envelope"
	"github.com/talim/realtime/services/edge/internal/writer"
	"github.com/talim/realtime/services/edge/internal/wsio"
)

// Conn is one client connection (a session), whatever its wire protocol.
//
// Goroutines: none while idle. Inbound bytes are read by the edge's netpoll workers
// when the socket becomes readable (read.go; a reading goroutine per connection only
// where netpoll is unavailable); the writer runs a flush goroutine only while it has
// frames to write; pings come from one wheel for all connections (pingwheel.go); the
// token expiry is a time.AfterFunc timer. NATS deliveries only enqueue.
//
// Locking: c.mu guards the room and watch sets, the token expiry and the abuse
// counters; it is a leaf lock (nothing else is locked while holding it).
type Conn struct {
	s        *Server
	id       string
	proto    uint8
	userID   string
	identity *edgev1.Identity
	netConn  net.Conn
	w        *writer.Writer
	limiter  *rate.Limiter
	in       *inbound           // netpoll read state (read.go); nil with a reading goroutine
	onText   func([]byte)       // text message handler of a non-native protocol; nil: handleText
	trace    *trace.SpanContext // the client's traceparent from the connect request; nil: none

	lastRead atomic.Int64 // unix nanoseconds of the last complete inbound frame

	mu        sync.Mutex
	pingTimer *time.Timer // Socket.IO pings; native connections use the ping wheel
	expTimer  *time.Timer
	rooms     map[string]struct{}
	joinGates map[string]*joinGate // rooms with a join in flight (joingate.go)
	sio       *sioTrack            // Socket.IO connection state recovery; nil for native
	watches   map[string]struct{}
	expiresAt time.Time
	abuseWin  time.Time // start of the current abuse window
	errCount  int
	rlCount   int

	closed    atomic.Bool
	closeOnce sync.Once
	reason    Disconnect
}

// ID is the connection id ("c_" + random hex).
func (c *Conn) ID() string { return c.id }

// UserID is the authenticated user.
func (c *Conn) UserID() string { return c.userID }

func newConnID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "c_" + hex.EncodeToString(b[:])
}

// serve runs a connection after a successful upgrade: it registers the connection,
// sends the greeting and starts the reader. src yields handshake leftovers first.
// The user's connection slot (hub.reserve) must already be held.
func (s *Server) serve(netConn net.Conn, src io.Reader, proto uint8, claims auth.Claims, parent *trace.SpanContext) {
	c := &Conn{
		s: s, id: newConnID(), proto: proto, userID: claims.UserID, netConn: netConn, trace: parent,
		identity:  &edgev1.Identity{UserId: claims.UserID, DisplayName: claims.Name, Roles: claims.Roles},
		limiter:   rate.NewLimiter(rate.Limit(s.cfg.CommandRate), s.cfg.CommandBurst),
		expiresAt: claims.ExpiresAt,
	}
	c.w = writer.New(netConn, &s.wopts)
	c.w.SetDone(c.socketClosed)
	c.in = s.newInbound(netConn, src)
	c.lastRead.Store(time.Now().UnixNano())

	s.connsMu.Lock()
	s.conns[c] = struct{}{}
	s.connsWG.Add(1) // the open socket: Done in socketClosed (writer done)
	s.connsMu.Unlock()
	s.hub.attach(c)
	s.metrics.connected()
	s.publishConnEvent(c, true)

	c.sendEvent("connected", appendConnected(nil, c.userID, c.id, time.Now(), s.cfg.PingInterval))
	if s.pings != nil {
		s.pings.add(c)
	}
	c.mu.Lock()
	if !c.expiresAt.IsZero() {
		c.expTimer = time.AfterFunc(time.Until(c.expiresAt), c.onExpiry)
	}
	c.mu.Unlock()
	c.startReading(src)
	if s.draining.Load() {
		c.Close(DisconnectRestart) // slipped in after drain took its snapshots
	}
}

func appendConnected(dst []byte, userID, connID string, now time.Time, ping time.Duration) []byte {
	dst = append(dst, `{"userId":`...)
	dst = envelope.AppendString(dst, userID)
	dst = append(dst, `,"connectionId":`...)
	dst = envelope.AppendString(dst, connID)
	dst = append(dst, `,"serverTime":"`...)
	dst = now.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	dst = append(dst, `","pingIntervalMs":`...)
	dst = appendInt(dst, ping.Milliseconds())
	return append(dst, '}')
}

func (c *Conn) readFailed(err error) {
	if code := wsio.CloseCode(err); code != 0 {
		switch code {
		case ws.StatusMessageTooBig:
			c.Close(DisconnectTooBig)
		case ws.StatusUnsupportedData:
			c.Close(DisconnectBinary)
		case ws.StatusInvalidFramePayloadData:
			c.Close(DisconnectInvalidUTF8)
		default:
			c.Close(DisconnectProtocol)
		}
		return
	}
	// I/O error: the peer went away, or the writer closed the socket (then the
	// connection was already terminated and this is a no-op).
	c.terminate(disconnectAbnormal)
	c.w.Abort()
}

// closeByClient answers a client close frame by echoing its code, then closes.
func (c *Conn) closeByClient(code ws.StatusCode) {
	if code.Empty() {
		code = ws.StatusNormalClosure
	}
	if c.terminate(disconnectByClient) {
		c.w.Close(wsio.CloseFrame(code, ""), false)
	}
}

// Close disconnects the connection with d: the close frame is written after the
// frames already queued (a slow consumer's queue is dropped first), then the socket
// closes. It never blocks and is safe from any goroutine; only the first call counts.
func (c *Conn) Close(d Disconnect) {
	if c.terminate(d) {
		c.w.Close(wsio.CloseFrame(d.Code, d.Reason), d.Code == DisconnectSlow.Code)
	}
}

// terminate records the end of the connection once and unregisters it everywhere;
// it reports whether this call did it.
func (c *Conn) terminate(d Disconnect) bool {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closed.Store(true)
		c.reason = d
		c.mu.Lock()
		if c.pingTimer != nil {
			c.pingTimer.Stop()
		}
		if c.expTimer != nil {
			c.expTimer.Stop()
		}
		watches := c.watches
		rooms := c.rooms
		c.watches = nil
		c.rooms = nil
		c.mu.Unlock()
		s := c.s
		s.hub.detach(c)
		for u := range watches {
			s.watch.remove(u, c)
		}
		s.publishConnEvent(c, false)
		s.saveForRecovery(c, rooms, d)
		s.metrics.disconnected(d)
		s.connsMu.Lock()
		delete(s.conns, c)
		s.connsMu.Unlock()
	})
	return first
}

// enqueue queues a complete WebSocket frame; overflow closes the connection as a slow
// consumer.
func (c *Conn) enqueue(frame []byte, pooled *[]byte) {
	err := c.w.Enqueue(frame, pooled)
	if err == nil {
		return
	}
	if errors.Is(err, writer.ErrOverflow) {
		c.s.metrics.queueDrop()
		if !c.closed.Load() {
			c.s.metrics.slowConsumer()
			c.s.log.Debug("slow consumer", "conn", c.id, "user", c.userID)
			c.Close(DisconnectSlow)
		}
	}
}

// sendEvent encodes one event for this connection only, in a pooled buffer.
func (c *Conn) sendEvent(event string, data []byte) {
	b := writer.GetBuf()
	f := wsio.Begin(*b)
	f = c.s.protos[c.proto].AppendEvent(f, event, data)
	*b = f
	c.enqueue(wsio.Finish(f, ws.OpText), b)
}

func (c *Conn) sendAck(id envelope.ID, data []byte) {
	if !id.Present() {
		return
	}
	b := writer.GetBuf()
	f := c.s.protos[c.proto].AppendAck(wsio.Begin(*b), id, data)
	*b = f
	c.enqueue(wsio.Finish(f, ws.OpText), b)
}

func (c *Conn) sendError(id envelope.ID, code, message string, retryAfterMs int64) {
	b := writer.GetBuf()
	f := c.s.protos[c.proto].AppendError(wsio.Begin(*b), id, code, message, retryAfterMs)
	*b = f
	c.enqueue(wsio.Finish(f, ws.OpText), b)
}

func (c *Conn) onExpiry() {
	c.mu.Lock()
	exp := c.expiresAt
	c.mu.Unlock()
	if d := time.Until(exp); d > 0 {
		c.mu.Lock()
		if c.expTimer != nil && !c.closed.Load() {
			c.expTimer.Reset(d)
		}
		c.mu.Unlock()
		return
	}
	c.Close(DisconnectExpired)
}

// joinRooms records that the connection joined rooms.
func (c *Conn) joinRooms(rooms []string) {
	if len(rooms) == 0 {
		return
	}
	c.mu.Lock()
	if !c.closed.Load() {
		if c.rooms == nil {
			c.rooms = make(map[string]struct{}, len(rooms))
		}
		for _, r := range rooms {
			c.rooms[r] = struct{}{}
		}
	}
	c.mu.Unlock()
}

func (c *Conn) leaveRooms(rooms []string) {
	if len(rooms) == 0 {
		return
	}
	c.mu.Lock()
	for _, r := range rooms {
		delete(c.rooms, r)
	}
	c.mu.Unlock()
}

// abuse counts a protocol error (rateLimited=false) or a rate-limited command and
// closes the connection with 1008 past the thresholds: 20 errors or 100 rate-limited
// commands within 10 seconds.
func (c *Conn) abuse(rateLimited bool) {
	now := time.Now()
	c.mu.Lock()
	if now.Sub(c.abuseWin) > abuseWindow {
		c.abuseWin, c.errCount, c.rlCount = now, 0, 0
	}
	if rateLimited {
		c.rlCount++
	} else {
		c.errCount++
	}
	over := c.errCount >= abuseMaxErrors || c.rlCount >= abuseMaxRateLimited
	c.mu.Unlock()
	if over {
		c.Close(DisconnectAbuse)
	}
}

// Abuse thresholds (docs/protocol.md "Close codes": repeated protocol abuse may close it with 1008).
const (
	abuseWindow         = 10 * time.Second
	abuseMaxErrors      = 20
	abuseMaxRateLimited = 100
)

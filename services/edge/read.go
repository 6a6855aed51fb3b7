package edge

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/talim/realtime/services/edge/internal/netpoll"
	"github.com/talim/realtime/services/edge/internal/wsio"
)

// The read path.
//
// A connection's inbound messages reach onMessage, whichever way they were read:
//
//   - netpoll (the default on Linux for a *net.TCPConn): the socket is registered
//     with the edge's Poller (internal/netpoll, one epoll instance, a few worker
//     goroutines). An idle connection holds no goroutine and no read buffer. When it
//     becomes readable, a worker runs OnReadable: it reads what is there without
//     blocking into a pooled buffer (wsio.Stream), hands every complete message to
//     onMessage, returns the buffer to the pool once everything was decoded (only a
//     partial frame keeps one) and re-arms. One connection is handled by at most one
//     worker at a time, for at most readTurns reads per readiness report.
//   - a goroutine per connection (readLoop, blocking wsio.Reader): without a Poller
//     (non-Linux, New failed), for connections without a file descriptor, and when
//     the HTTP server had buffered bytes past the handshake (a client that pipelined
//     its first frame: those bytes live in a reader, not in the socket).
//
// Accounting for drain: connsWG counts open sockets. serve adds one, socketClosed
// (the writer's done hook, called once after the socket closed) ends it; a reading
// goroutine is counted separately.
//
// Porting another wire protocol's read loop (Socket.IO, socketio_conn.go) to this:
// set c.onText to the protocol's text handler (it gets the payload, valid only during
// the call; keep per-connection scratch in the protocol's own state); right after
// writer.New set the done hook (c.w.SetDone(c.socketClosed)) and c.in =
// s.newInbound(netConn, src); count the socket once in connsWG (socketClosed ends
// it); and call c.startReading(src) instead of starting a loop.
// Control frames, closing, the idle clock and the 1009/1003/1007/1002 errors are
// handled here for every protocol.

// readTurns bounds the reads of one readiness report (fairness between connections
// on a worker); bytes left in the socket report the connection again at once.
const readTurns = 8

// inbound is the netpoll read state of a connection.
type inbound struct {
	d    netpoll.Desc
	mu   sync.Mutex // held by the worker reading, and by socketClosed
	st   wsio.Stream
	dead bool // stopped reading (error, or the socket closed)
}

// newInbound returns the netpoll read state for a connection that will be read by
// the Poller, or nil when it needs a reading goroutine. Set it before the writer can
// finish (socketClosed reads it).
func (s *Server) newInbound(netConn net.Conn, src io.Reader) *inbound {
	if s.poll == nil || src != io.Reader(netConn) {
		return nil
	}
	if _, ok := netConn.(syscall.Conn); !ok {
		return nil
	}
	return &inbound{st: wsio.Stream{MaxMessage: s.cfg.MaxFrameBytes}}
}

// startReading reads src (the connection, or handshake leftovers followed by it)
// until the connection ends: registers it with the Poller when c.in is set, else
// (or when registration fails) starts a reading goroutine.
func (c *Conn) startReading(src io.Reader) {
	if in := c.in; in != nil {
		in.mu.Lock()
		if in.dead { // the socket already closed
			in.mu.Unlock()
			return
		}
		if err := c.s.poll.Register(&in.d, c.netConn.(syscall.Conn), c); err == nil {
			in.mu.Unlock()
			return
		}
		in.dead = true
		in.mu.Unlock()
	}
	c.s.connsWG.Add(1) // the reading goroutine
	go c.readLoop(src)
}

// readLoop reads src until the connection ends (blocking mode).
func (c *Conn) readLoop(src io.Reader) {
	defer c.s.connsWG.Done()
	rd := wsio.Reader{Src: src, MaxMessage: c.s.cfg.MaxFrameBytes}
	defer rd.Close()
	for {
		msg, err := rd.Next()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.onMessage(msg)
	}
}

// OnReadable reads what the socket has (netpoll mode; a Poller worker calls it).
func (c *Conn) OnReadable() {
	in := c.in
	in.mu.Lock()
	if in.dead {
		in.mu.Unlock()
		return
	}
	for turn := 0; turn < readTurns; turn++ {
		_, rerr := in.st.Fill(in.d.Read)
		for {
			msg, ok, err := in.st.Next()
			if err != nil {
				c.stopReading(err)
				return
			}
			if !ok {
				break
			}
			c.onMessage(msg)
		}
		if errors.Is(rerr, netpoll.ErrWouldBlock) {
			break
		}
		if rerr != nil {
			c.stopReading(rerr)
			return
		}
	}
	in.st.Idle()
	in.mu.Unlock()
	_ = in.d.Rearm() // fails once the socket is closed: nothing left to do then
}

// stopReading ends reading after err; called with in.mu held, releases it.
func (c *Conn) stopReading(err error) {
	in := c.in
	in.dead = true
	in.st.Close()
	in.mu.Unlock()
	c.readFailed(err)
}

// socketClosed is the writer's done hook: the socket is closed. Called once.
func (c *Conn) socketClosed(error) {
	if in := c.in; in != nil {
		in.mu.Lock()
		in.d.Unregister()
		in.dead = true
		in.st.Close()
		in.mu.Unlock()
	}
	c.s.connsWG.Done()
}

// onMessage handles one inbound message (both read modes), then releases it.
func (c *Conn) onMessage(msg wsio.Message) {
	c.lastRead.Store(time.Now().UnixNano())
	c.s.metrics.frameIn(len(msg.Payload))
	if c.closed.Load() {
		msg.Release()
		return // closing: drain input until the socket closes
	}
	switch msg.Op {
	case ws.OpText:
		if c.onText != nil {
			c.onText(msg.Payload)
		} else {
			c.handleText(msg.Payload)
		}
	case ws.OpPing:
		c.enqueue(wsio.Control(ws.OpPong, msg.Payload), nil)
	case ws.OpPong:
	case ws.OpClose:
		code, _ := ws.ParseCloseFrameData(msg.Payload)
		msg.Release()
		c.closeByClient(code)
		return
	}
	msg.Release()
}

// pollWorkers is the size of the netpoll worker pool: handlers never block on a
// socket, so a few per core suffice.
func pollWorkers(procs int) int { return max(4, 2*procs) }

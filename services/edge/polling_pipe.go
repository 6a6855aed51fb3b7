package edge

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// pollPipe is the net.Conn of a Socket.IO session on the HTTP long-polling transport
// (polling.go). The session's Conn and its writer treat it like a socket: the writer
// writes complete WebSocket frames to it (one frame per Write, see writer.flush and
// net.Buffers.WriteTo), and the pipe keeps their payloads, Engine.IO packets, until a
// polling GET takes them. Like a socket's send buffer it is bounded: a Write waits
// for room until its write deadline, so a client that stops polling backs up into
// the writer's queue and is closed as a slow consumer (4008), exactly like a
// WebSocket client that stops reading.
//
// After the upgrade to WebSocket (upgrade), the packets still waiting are written to
// the new socket as text frames and every later Write goes straight to it: the same
// Conn, writer and queue carry on over the new transport.
//
// A close frame marks the pipe closing: the next GET gets what is left followed by
// the Engine.IO close packet "1" (socket.io-client then reconnects, as after a
// WebSocket close). Close (from the writer, once the close frame was written, or on
// abort) releases waiters and, after an upgrade, closes the WebSocket.
type pollPipe struct {
	maxBytes int
	local    net.Addr
	remote   net.Addr
	onClose  func() // called once, after Close

	mu       sync.Mutex
	packets  [][]byte // Engine.IO packets for the next GET (copies)
	bytes    int
	noop     bool // answer the waiting (or next) GET with a noop: an upgrade is under way
	closing  bool // a close frame was written, or Close was called
	closed   bool
	ws       net.Conn // set by upgrade
	deadline time.Time

	ready chan struct{} // cap 1: something for the GET
	space chan struct{} // cap 1: room freed for a blocked Write
	done  chan struct{} // closed by Close
}

var _ net.Conn = (*pollPipe)(nil)

// errPipeFrame reports a Write that is not one complete server frame.
var errPipeFrame = errors.New("polling pipe: not a complete server frame")

func newPollPipe(maxBytes int, local, remote net.Addr) *pollPipe {
	return &pollPipe{
		maxBytes: maxBytes, local: local, remote: remote,
		ready: make(chan struct{}, 1), space: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Write takes one complete unmasked server frame (as built by wsio.Finish,
// wsio.Control or wsio.CloseFrame).
func (p *pollPipe) Write(b []byte) (int, error) {
	op, payload, ok := splitServerFrame(b)
	if !ok {
		return 0, errPipeFrame
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return 0, net.ErrClosed
		}
		if c := p.ws; c != nil {
			p.mu.Unlock()
			return c.Write(b)
		}
		switch op {
		case ws.OpClose:
			p.closing = true
			p.mu.Unlock()
			signal(p.ready)
			return len(b), nil
		case ws.OpText:
		default: // WebSocket pings and pongs have no meaning on polling
			p.mu.Unlock()
			return len(b), nil
		}
		if p.closing {
			p.mu.Unlock()
			return 0, net.ErrClosed
		}
		if p.bytes == 0 || p.bytes+len(payload) <= p.maxBytes {
			p.packets = append(p.packets, append([]byte(nil), payload...))
			p.bytes += len(payload)
			p.mu.Unlock()
			signal(p.ready)
			return len(b), nil
		}
		deadline := p.deadline
		p.mu.Unlock()
		var expired <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			expired = timer.C
		}
		select {
		case <-p.space:
		case <-p.done:
		case <-expired:
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// splitServerFrame returns the opcode and payload of one complete unmasked frame.
func splitServerFrame(b []byte) (ws.OpCode, []byte, bool) {
	if len(b) < 2 || b[1]&0x80 != 0 {
		return 0, nil, false
	}
	op := ws.OpCode(b[0] & 0x0f)
	n, h := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, nil, false
		}
		n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, nil, false
		}
		n, h = binary.BigEndian.Uint64(b[2:]), 10
	}
	if uint64(len(b)-h) != n {
		return 0, nil, false
	}
	return op, b[h:], true
}

// take returns the payload of one polling GET response: the waiting packets joined by
// the record separator, with the close packet last when the pipe is closing (closing
// is then true). It waits until there is something, or until abort is closed (the
// request ended: nil result).
func (p *pollPipe) take(abort <-chan struct{}) (payload []byte, closing bool) {
	for {
		p.mu.Lock()
		if p.ws != nil || p.noop {
			p.noop = false
			p.mu.Unlock()
			return []byte{'6'}, false
		}
		if len(p.packets) > 0 || p.closing {
			out := make([]byte, 0, p.bytes+len(p.packets)+2)
			for i, pkt := range p.packets {
				if i > 0 {
					out = append(out, pollSeparator)
				}
				out = append(out, pkt...)
			}
			if p.closing {
				if len(out) > 0 {
					out = append(out, pollSeparator)
				}
				out = append(out, '1')
			}
			clear(p.packets)
			p.packets, p.bytes = p.packets[:0], 0
			if cap(p.packets) > 64 {
				p.packets = nil
			}
			closing = p.closing
			p.mu.Unlock()
			signal(p.space)
			return out, closing
		}
		p.mu.Unlock()
		select {
		case <-p.ready:
		case <-p.done:
		case <-abort:
			return nil, false
		}
	}
}

// sendNoop makes the waiting (or next) GET return a noop packet, so that a client
// probing the WebSocket can pause polling (Engine.IO upgrade).
func (p *pollPipe) sendNoop() {
	p.mu.Lock()
	p.noop = true
	p.mu.Unlock()
	signal(p.ready)
}

// upgrade moves the pipe onto the WebSocket c: waiting packets are written to it as
// text frames first, in order; later Writes go to c. Close then closes c.
func (p *pollPipe) upgrade(c net.Conn, timeout time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing || p.ws != nil {
		return net.ErrClosed
	}
	bufs := make(net.Buffers, 0, len(p.packets))
	for _, pkt := range p.packets {
		bufs = append(bufs, textFrame(pkt))
	}
	if len(bufs) > 0 {
		_ = c.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := bufs.WriteTo(c); err != nil {
			return err
		}
		_ = c.SetWriteDeadline(time.Time{})
	}
	p.packets, p.bytes = nil, 0
	p.ws = c
	if !p.deadline.IsZero() {
		_ = c.SetWriteDeadline(p.deadline)
	}
	signal(p.ready)
	signal(p.space)
	return nil
}

// textFrame builds an unmasked text frame carrying payload.
func textFrame(payload []byte) []byte {
	hdr := ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(len(payload))}
	b := make([]byte, 0, ws.HeaderSize(hdr)+len(payload))
	b = append(b, 0x80|byte(ws.OpText))
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// upgraded reports whether the pipe moved onto a WebSocket.
func (p *pollPipe) upgraded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ws != nil
}

// isClosed reports whether Close was called.
func (p *pollPipe) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Close implements net.Conn.
func (p *pollPipe) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed, p.closing = true, true
	c := p.ws
	close(p.done)
	p.mu.Unlock()
	var err error
	if c != nil {
		err = c.Close()
	}
	if p.onClose != nil {
		p.onClose()
	}
	return err
}

// Read implements net.Conn; inbound packets come from POST requests (or the
// WebSocket's own reader after the upgrade), never from here.
func (p *pollPipe) Read([]byte) (int, error) { return 0, errors.New("polling pipe: not readable") }

// LocalAddr implements net.Conn.
func (p *pollPipe) LocalAddr() net.Addr { return p.local }

// RemoteAddr implements net.Conn.
func (p *pollPipe) RemoteAddr() net.Addr { return p.remote }

// SetDeadline implements net.Conn (the write deadline; reads have none).
func (p *pollPipe) SetDeadline(t time.Time) error { return p.SetWriteDeadline(t) }

// SetReadDeadline implements net.Conn; it does nothing.
func (p *pollPipe) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline implements net.Conn.
func (p *pollPipe) SetWriteDeadline(t time.Time) error {
	p.mu.Lock()
	p.deadline = t
	c := p.ws
	p.mu.Unlock()
	if c != nil {
		return c.SetWriteDeadline(t)
	}
	return nil
}

// pollSeparator separates Engine.IO packets in a polling payload (Engine.IO v4).
const pollSeparator = '\x1e'

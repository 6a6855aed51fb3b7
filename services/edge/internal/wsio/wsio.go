// Package wsio reads and writes WebSocket frames for the edge on top of gobwas/ws
// primitives, with the limits the protocol needs (docs/protocol.md "Frames"): a message size
// limit checked from the frame header before any payload is read, binary messages
// refused before their payload is read, and UTF-8 validation of text messages.
//
// An idle Reader holds no buffer: a payload buffer is taken from a pool when a frame
// arrives and handed to the caller, who returns it with Release. This keeps the
// per-connection footprint of idle connections small.
package wsio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Read errors; each maps to one close code (see CloseCode).
var (
	// ErrTooBig: a message is larger than the limit (close 1009).
	ErrTooBig = errors.New("message too big")
	// ErrBinary: a binary message arrived (close 1003).
	ErrBinary = errors.New("binary messages are not supported")
	// ErrInvalidUTF8: a text message is not valid UTF-8 (close 1007).
	ErrInvalidUTF8 = errors.New("invalid UTF-8 in text message")
	// ErrProtocol: a frame violates RFC 6455 (close 1002).
	ErrProtocol = errors.New("websocket protocol error")
)

// CloseCode returns the close code for a Reader error (0 for I/O errors).
func CloseCode(err error) ws.StatusCode {
	switch {
	case errors.Is(err, ErrTooBig):
		return ws.StatusMessageTooBig
	case errors.Is(err, ErrBinary):
		return ws.StatusUnsupportedData
	case errors.Is(err, ErrInvalidUTF8):
		return ws.StatusInvalidFramePayloadData
	case errors.Is(err, ErrProtocol):
		return ws.StatusProtocolError
	}
	return 0
}

// Message is one complete message: a text message or a control frame.
type Message struct {
	Op      ws.OpCode
	Payload []byte
	buf     *[]byte
}

// Release returns the payload buffer to the pool; Payload must not be used after.
func (m *Message) Release() {
	if m.buf != nil {
		putBuf(m.buf)
		m.buf = nil
	}
	m.Payload = nil
}

// Reader reads client (masked) frames from a blocking source, one frame header and
// payload at a time. It is not safe for concurrent use. Stream is the non-blocking
// counterpart (bytes pushed in whatever pieces arrive); both share the frame rules.
type Reader struct {
	// Src is the connection (or a reader that yields handshake leftovers first).
	Src io.Reader
	// MaxMessage is the largest accepted text message in bytes.
	MaxMessage int
	// OnFrameStart, when set, is called after the first byte of a frame arrives
	// (e.g. to arm a read deadline for the rest of the frame).
	OnFrameStart func()

	asm assembler
	hdr [ws.MaxHeaderSize]byte
}

// Next returns the next text message or control frame. Continuation frames are
// assembled; control frames in the middle of a fragmented message are returned as
// they come.
func (r *Reader) Next() (Message, error) {
	for {
		h, err := r.header()
		if err != nil {
			return Message{}, err
		}
		if err := r.asm.check(h, r.MaxMessage); err != nil {
			return Message{}, err
		}
		buf := getBuf(int(h.Length))
		p := (*buf)[:h.Length]
		if err := r.payload(p, h); err != nil {
			putBuf(buf)
			if h.OpCode == ws.OpContinuation {
				r.asm.drop()
			}
			return Message{}, err
		}
		m, ok, err := r.asm.frame(h, p, buf)
		if err != nil || ok {
			return m, err
		}
	}
}

// Close releases a partially assembled message, if any.
func (r *Reader) Close() { r.asm.drop() }

func (r *Reader) header() (ws.Header, error) {
	b := r.hdr[:2]
	if _, err := io.ReadFull(r.Src, b); err != nil {
		return ws.Header{}, err
	}
	if r.OnFrameStart != nil {
		r.OnFrameStart()
	}
	if _, _, err := parseHeader(b); err != nil {
		return ws.Header{}, err // reserved bits or unmasked: refused before reading on
	}
	n := headerLen(b)
	if _, err := io.ReadFull(r.Src, r.hdr[2:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // a frame was started: the peer cut it (found by FuzzFrames)
		}
		return ws.Header{}, err
	}
	h, _, err := parseHeader(r.hdr[:n])
	return h, err
}

func (r *Reader) payload(p []byte, h ws.Header) error {
	if _, err := io.ReadFull(r.Src, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	ws.Cipher(p, h.Mask, 0)
	return nil
}

// headerLen is the length of a client (masked) frame header given its first two
// bytes.
func headerLen(b []byte) int {
	switch b[1] & 0x7f {
	case 126:
		return 2 + 2 + 4
	case 127:
		return 2 + 8 + 4
	}
	return 2 + 4
}

// parseHeader decodes a client frame header from the start of b. n is the header
// length, 0 when b does not hold a complete header yet (err is nil then).
func parseHeader(b []byte) (h ws.Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h = ws.Header{
		Fin:    b[0]&0x80 != 0,
		Rsv:    (b[0] & 0x70) >> 4,
		OpCode: ws.OpCode(b[0] & 0x0f),
		Masked: b[1]&0x80 != 0,
	}
	if h.Rsv != 0 {
		return h, 0, fmt.Errorf("%w: reserved bits set", ErrProtocol)
	}
	if !h.Masked {
		return h, 0, fmt.Errorf("%w: unmasked client frame", ErrProtocol)
	}
	n = headerLen(b)
	if len(b) < n {
		return h, 0, nil
	}
	x := b[2:n]
	l := int64(b[1] & 0x7f)
	switch l {
	case 126:
		l = int64(binary.BigEndian.Uint16(x))
		x = x[2:]
	case 127:
		u := binary.BigEndian.Uint64(x)
		if u > 1<<62 {
			return h, 0, fmt.Errorf("%w: frame length", ErrProtocol)
		}
		l = int64(u)
		x = x[8:]
	}
	h.Length = l
	copy(h.Mask[:], x)
	return h, n, nil
}

// assembler holds the fragment state shared by Reader and Stream and applies the
// frame rules: check runs on the header before any payload is read (binary and
// too-big messages are refused from their header), frame runs on the unmasked
// payload.
type assembler struct {
	frag   *[]byte   // message being assembled from fragments
	fragOp ws.OpCode // opcode of the fragmented message
}

func (a *assembler) check(h ws.Header, max int) error {
	switch {
	case h.OpCode.IsReserved():
		// 0x3-0x7 and 0xB-0xF (IsControl is true for the latter; found by FuzzFrames).
		return fmt.Errorf("%w: reserved opcode %d", ErrProtocol, h.OpCode)
	case h.OpCode.IsControl():
		if !h.Fin || h.Length > 125 {
			return fmt.Errorf("%w: fragmented or long control frame", ErrProtocol)
		}
	case h.OpCode == ws.OpBinary || (h.OpCode == ws.OpContinuation && a.fragOp == ws.OpBinary):
		return ErrBinary
	case h.OpCode == ws.OpText:
		if a.frag != nil {
			return fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol)
		}
		if h.Length > int64(max) {
			return ErrTooBig
		}
	case h.OpCode == ws.OpContinuation:
		if a.frag == nil {
			return fmt.Errorf("%w: continuation without a message", ErrProtocol)
		}
		if int64(len(*a.frag))+h.Length > int64(max) {
			a.drop()
			return ErrTooBig
		}
	default:
		return fmt.Errorf("%w: reserved opcode %d", ErrProtocol, h.OpCode)
	}
	return nil
}

// frame handles one checked frame whose unmasked payload is p. buf is the pooled
// buffer p lives in (owned from now on), or nil when p is borrowed (a Stream's read
// buffer): a returned Message then borrows p too, and a fragment is copied. ok
// reports a complete message.
func (a *assembler) frame(h ws.Header, p []byte, buf *[]byte) (m Message, ok bool, err error) {
	switch {
	case h.OpCode.IsControl():
		return Message{Op: h.OpCode, Payload: p, buf: buf}, true, nil
	case h.OpCode == ws.OpText:
		if h.Fin {
			if !utf8.Valid(p) {
				if buf != nil {
					putBuf(buf)
				}
				return Message{}, false, ErrInvalidUTF8
			}
			return Message{Op: ws.OpText, Payload: p, buf: buf}, true, nil
		}
		if buf == nil {
			buf = getBuf(len(p))
			*buf = append((*buf)[:0], p...)
		} else {
			*buf = p
		}
		a.frag, a.fragOp = buf, ws.OpText
		return Message{}, false, nil
	default: // continuation of a text message
		have := len(*a.frag)
		fb := *a.frag
		if cap(fb) < have+len(p) {
			nb := getBuf(have + len(p))
			*nb = append((*nb)[:0], fb...)
			putBuf(a.frag)
			a.frag = nb
			fb = *nb
		}
		fb = append(fb, p...)
		*a.frag = fb
		if buf != nil {
			putBuf(buf)
		}
		if !h.Fin {
			return Message{}, false, nil
		}
		m := Message{Op: ws.OpText, Payload: fb, buf: a.frag}
		a.frag, a.fragOp = nil, 0
		if !utf8.Valid(m.Payload) {
			m.Release()
			return Message{}, false, ErrInvalidUTF8
		}
		return m, true, nil
	}
}

func (a *assembler) drop() {
	if a.frag != nil {
		putBuf(a.frag)
		a.frag, a.fragOp = nil, 0
	}
}

// Payload buffers: two size classes; larger requests are allocated and not pooled.
const (
	smallBuf = 512
	largeBuf = 64 << 10
)

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, 0, smallBuf); return &b }}
	largePool = sync.Pool{New: func() any { b := make([]byte, 0, largeBuf); return &b }}
)

func getBuf(n int) *[]byte {
	var b *[]byte
	switch {
	case n <= smallBuf:
		b = smallPool.Get().(*[]byte)
	case n <= largeBuf:
		b = largePool.Get().(*[]byte)
	default:
		nb := make([]byte, 0, n)
		return &nb
	}
	*b = (*b)[:0]
	return b
}

func putBuf(b *[]byte) {
	switch cap(*b) {
	case smallBuf:
		smallPool.Put(b)
	case largeBuf:
		largePool.Put(b)
	}
}

// bufPool pools buffers of one capacity.
type bufPool struct {
	size int
	p    sync.Pool
}

func newBufPool(size int) *bufPool {
	bp := &bufPool{size: size}
	bp.p.New = func() any { b := make([]byte, 0, size); return &b }
	return bp
}

func (bp *bufPool) get() *[]byte {
	b := bp.p.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

func (bp *bufPool) put(b *[]byte) {
	if cap(*b) == bp.size {
		bp.p.Put(b)
	}
}

// Package wsio reads and writes WebSocket frames for the edge on top of gobwas/ws
// primitives, with the limits the protocol needs (PROTOCOL.md §2): a message size
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

// Reader reads client (masked) frames. It is not safe for concurrent use.
type Reader struct {
	// Src is the connection (or a reader that yields handshake leftovers first).
	Src io.Reader
	// MaxMessage is the largest accepted text message in bytes.
	MaxMessage int
	// OnFrameStart, when set, is called after the first byte of a frame arrives
	// (e.g. to arm a read deadline for the rest of the frame).
	OnFrameStart func()

	frag    *[]byte   // message being assembled from fragments
	fragOp  ws.OpCode // opcode of the fragmented message
	hdr     [ws.MaxHeaderSize]byte
	reading bool
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
		switch {
		case h.OpCode.IsControl():
			if !h.Fin || h.Length > 125 {
				return Message{}, fmt.Errorf("%w: fragmented or long control frame", ErrProtocol)
			}
			buf := getBuf(int(h.Length))
			p := (*buf)[:h.Length]
			if err := r.payload(p, h); err != nil {
				putBuf(buf)
				return Message{}, err
			}
			return Message{Op: h.OpCode, Payload: p, buf: buf}, nil
		case h.OpCode == ws.OpBinary || (h.OpCode == ws.OpContinuation && r.fragOp == ws.OpBinary):
			return Message{}, ErrBinary
		case h.OpCode == ws.OpText:
			if r.frag != nil {
				return Message{}, fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol)
			}
			if h.Length > int64(r.MaxMessage) {
				return Message{}, ErrTooBig
			}
			buf := getBuf(int(h.Length))
			p := (*buf)[:h.Length]
			if err := r.payload(p, h); err != nil {
				putBuf(buf)
				return Message{}, err
			}
			if h.Fin {
				if !utf8.Valid(p) {
					putBuf(buf)
					return Message{}, ErrInvalidUTF8
				}
				return Message{Op: ws.OpText, Payload: p, buf: buf}, nil
			}
			*buf = p
			r.frag, r.fragOp = buf, ws.OpText
		case h.OpCode == ws.OpContinuation:
			if r.frag == nil {
				return Message{}, fmt.Errorf("%w: continuation without a message", ErrProtocol)
			}
			have := len(*r.frag)
			if int64(have)+h.Length > int64(r.MaxMessage) {
				r.dropFrag()
				return Message{}, ErrTooBig
			}
			buf := *r.frag
			if cap(buf) < have+int(h.Length) {
				nb := getBuf(have + int(h.Length))
				*nb = append((*nb)[:0], buf...)
				putBuf(r.frag)
				r.frag = nb
				buf = *nb
			}
			buf = buf[:have+int(h.Length)]
			if err := r.payload(buf[have:], h); err != nil {
				r.dropFrag()
				return Message{}, err
			}
			*r.frag = buf
			if h.Fin {
				m := Message{Op: ws.OpText, Payload: buf, buf: r.frag}
				r.frag, r.fragOp = nil, 0
				if !utf8.Valid(m.Payload) {
					m.Release()
					return Message{}, ErrInvalidUTF8
				}
				return m, nil
			}
		default:
			return Message{}, fmt.Errorf("%w: reserved opcode %d", ErrProtocol, h.OpCode)
		}
	}
}

// Close releases a partially assembled message, if any.
func (r *Reader) Close() { r.dropFrag() }

func (r *Reader) dropFrag() {
	if r.frag != nil {
		putBuf(r.frag)
		r.frag, r.fragOp = nil, 0
	}
}

func (r *Reader) header() (ws.Header, error) {
	b := r.hdr[:2]
	if _, err := io.ReadFull(r.Src, b); err != nil {
		return ws.Header{}, err
	}
	if r.OnFrameStart != nil {
		r.OnFrameStart()
	}
	h := ws.Header{
		Fin:    b[0]&0x80 != 0,
		Rsv:    (b[0] & 0x70) >> 4,
		OpCode: ws.OpCode(b[0] & 0x0f),
		Masked: b[1]&0x80 != 0,
	}
	if h.Rsv != 0 {
		return h, fmt.Errorf("%w: reserved bits set", ErrProtocol)
	}
	if !h.Masked {
		return h, fmt.Errorf("%w: unmasked client frame", ErrProtocol)
	}
	extra := 4
	l := int64(b[1] & 0x7f)
	switch l {
	case 126:
		extra += 2
	case 127:
		extra += 8
	}
	x := r.hdr[2 : 2+extra]
	if _, err := io.ReadFull(r.Src, x); err != nil {
		return h, err
	}
	switch l {
	case 126:
		l = int64(binary.BigEndian.Uint16(x))
		x = x[2:]
	case 127:
		u := binary.BigEndian.Uint64(x)
		if u > 1<<62 {
			return h, fmt.Errorf("%w: frame length", ErrProtocol)
		}
		l = int64(u)
		x = x[8:]
	}
	h.Length = l
	copy(h.Mask[:], x)
	return h, nil
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

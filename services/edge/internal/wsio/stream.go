package wsio

import (
	"errors"
	"io"

	"github.com/gobwas/ws"
)

// ErrWouldBlock is a ready-made error for a Stream's read function to return when no
// byte is available right now (EAGAIN on a non-blocking socket); any error works, the
// Stream hands it back from Fill.
var ErrWouldBlock = errors.New("would block")

// Stream decodes client frames from bytes pushed in whatever pieces arrive: it is the
// non-blocking counterpart of Reader, for a readiness-driven (netpoll) connection
// that holds no goroutine while idle. Frame rules and errors are the same as
// Reader's (they share the code): a too-big or binary message is refused from its
// header, before its payload arrives.
//
// An idle Stream holds no buffer: Fill takes a pooled read buffer, and Idle gives it
// back once every buffered byte was decoded. Only a connection with a partial frame
// buffered keeps one (bounded by the frame header plus MaxMessage).
//
// Use: on readiness, loop { Fill; loop { Next } } until Fill reports that nothing
// is available (the read function's would-block error), then call Idle. A Message returned by Next borrows the read buffer: it is valid
// until the next Fill, Next, Idle or Close call (Release is still allowed and a
// no-op). Not safe for concurrent use.
type Stream struct {
	// MaxMessage is the largest accepted text message in bytes.
	MaxMessage int

	asm     assembler
	buf     *[]byte // read buffer; len is the end of the buffered bytes; nil when idle
	off     int     // start of the undecoded bytes in *buf
	need    int     // bytes the frame at off needs in total (header + payload)
	checked bool    // the header at off was complete and checked; need is valid
}

// streamBuf is the size of a Stream's read buffer: several small frames per read.
const streamBuf = 4 << 10

var streamPool = newBufPool(streamBuf)

// Fill reads once with read into the buffer's free space, taking a pooled buffer
// when the Stream has none and growing it for a large frame. It returns read's
// result; io.EOF (peer closed) after buffered bytes is io.ErrUnexpectedEOF when a
// frame was cut.
func (s *Stream) Fill(read func(p []byte) (int, error)) (int, error) {
	if s.buf == nil {
		s.buf = streamPool.get()
		s.off, s.need, s.checked = 0, 0, false
	}
	b := *s.buf
	if s.off > 0 && s.off == len(b) {
		b, s.off = b[:0], 0
	}
	switch {
	case s.need > cap(b):
		// A frame larger than the buffer: move its bytes to a buffer that fits it.
		nb := getBuf(s.need)
		*nb = append((*nb)[:0], b[s.off:]...)
		s.putReadBuf()
		s.buf, s.off = nb, 0
		b = *nb
	case s.off > 0 && (s.need > cap(b)-s.off || cap(b)-len(b) < 512):
		// Move the partial frame to the front.
		n := copy(b, b[s.off:])
		b, s.off = b[:n], 0
	}
	n, err := read(b[len(b):cap(b)])
	if n > 0 {
		*s.buf = b[:len(b)+n]
	} else {
		*s.buf = b
	}
	if errors.Is(err, io.EOF) && len(*s.buf) > s.off {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Next decodes the next complete text message or control frame from the buffered
// bytes; ok is false when more bytes are needed.
func (s *Stream) Next() (m Message, ok bool, err error) {
	for s.buf != nil {
		b := (*s.buf)[s.off:]
		h, hn, err := parseHeader(b)
		if err != nil {
			return Message{}, false, err
		}
		if hn == 0 {
			return Message{}, false, nil
		}
		if !s.checked {
			// First time this header is seen complete: apply the header rules
			// before waiting for the payload.
			if err := s.asm.check(h, s.MaxMessage); err != nil {
				return Message{}, false, err
			}
			s.need, s.checked = hn+int(h.Length), true
		}
		if len(b) < s.need {
			return Message{}, false, nil
		}
		p := b[hn:s.need]
		ws.Cipher(p, h.Mask, 0)
		s.off += s.need
		s.need, s.checked = 0, false
		m, ok, err := s.asm.frame(h, p, nil)
		if err != nil || ok {
			return m, ok, err
		}
	}
	return Message{}, false, nil
}

// Buffered reports whether a partial frame is buffered.
func (s *Stream) Buffered() bool { return s.buf != nil && len(*s.buf) > s.off }

// Idle returns the read buffer to the pool when nothing is left to decode.
func (s *Stream) Idle() {
	if s.buf != nil && len(*s.buf) == s.off {
		s.putReadBuf()
		s.buf, s.off, s.need, s.checked = nil, 0, 0, false
	}
}

// Close releases the read buffer and a partially assembled message.
func (s *Stream) Close() {
	if s.buf != nil {
		s.putReadBuf()
		s.buf, s.off, s.need, s.checked = nil, 0, 0, false
	}
	s.asm.drop()
}

func (s *Stream) putReadBuf() {
	if cap(*s.buf) == streamBuf {
		streamPool.put(s.buf)
	} else {
		putBuf(s.buf)
	}
}

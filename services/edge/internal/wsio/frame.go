package wsio

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// HeadRoom is the space Begin reserves for the largest server frame header.
const HeadRoom = 10

var headRoom [HeadRoom]byte

// Begin starts a server text frame in dst (reusing its capacity): append the payload
// to the returned slice, then call Finish. This lets the payload be encoded in place
// without knowing its length in advance.
func Begin(dst []byte) []byte { return append(dst[:0], headRoom[:]...) }

// Finish writes the frame header in front of the payload appended after Begin and
// returns the complete frame, a sub-slice of b.
func Finish(b []byte, op ws.OpCode) []byte {
	n := len(b) - HeadRoom
	var start int
	switch {
	case n <= 125:
		start = HeadRoom - 2
		b[start+1] = byte(n)
	case n <= 0xffff:
		start = HeadRoom - 4
		b[start+1] = 126
		binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	default:
		start = 0
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	b[start] = 0x80 | byte(op)
	return b[start:]
}

// Control builds a complete unmasked control frame (payload at most 125 bytes).
func Control(op ws.OpCode, payload []byte) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	b := make([]byte, 2, 2+len(payload))
	b[0] = 0x80 | byte(op)
	b[1] = byte(len(payload))
	return append(b, payload...)
}

// PingFrame is an empty server ping; shared, never modify it.
var PingFrame = []byte{0x80 | byte(ws.OpPing), 0}

// CloseFrame builds a close frame with code and a reason cut to fit a control frame.
func CloseFrame(code ws.StatusCode, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return Control(ws.OpClose, ws.NewCloseFrameBody(code, reason))
}

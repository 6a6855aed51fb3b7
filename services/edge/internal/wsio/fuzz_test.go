package wsio

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// FuzzFrames decodes arbitrary bytes as client frames (headers, 7/16/64-bit lengths,
// masks, RSV bits, fragmentation, control frames between fragments) with both the
// blocking Reader and the non-blocking Stream, the latter fed in pieces chosen by
// the fuzzer. Neither may panic; they must return the same messages and fail with
// the same close code; every text message is valid UTF-8 within the limit and every
// control frame is a ping, pong or close of at most 125 bytes.
func FuzzFrames(f *testing.F) {
	text := clientFrame(true, ws.OpText, []byte(`{"event":"ping"}`))
	seeds := [][]byte{
		text,
		append(append(append(clientFrame(false, ws.OpText, []byte("frag-1 ")), clientFrame(true, ws.OpPing, []byte("p"))...),
			clientFrame(true, ws.OpContinuation, []byte("frag-2"))...), clientFrame(true, ws.OpClose, ws.NewCloseFrameBody(1000, "bye"))...),
		clientFrame(true, ws.OpText, bytes.Repeat([]byte("é"), 300)),                                                     // 16-bit length
		clientFrame(true, ws.OpText, bytes.Repeat([]byte("x"), 70000)),                                                   // 64-bit length, too big
		append(clientFrame(false, ws.OpText, []byte{0xe2, 0x82}), clientFrame(true, ws.OpContinuation, []byte{0xac})...), // UTF-8 split over fragments
		clientFrame(true, ws.OpText, []byte{0xff}),
		clientFrame(true, ws.OpBinary, []byte("bin")),
		clientFrame(true, ws.OpContinuation, []byte("orphan")),
		clientFrame(false, ws.OpPing, nil),                  // fragmented control
		clientFrame(true, ws.OpPing, make([]byte, 126)),     // long control
		{0x81, 0x02, 'h', 'i'},                              // unmasked
		{0xf1, 0x80, 1, 2, 3, 4},                            // RSV bits
		{0x83, 0x80, 1, 2, 3, 4},                            // reserved opcode
		{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, // 64-bit length with the top bit set
		text[:3],           // cut header
		text[:len(text)-1], // cut payload
	}
	for i, s := range seeds {
		f.Add(s, uint16(1000+i*4000), uint64(i))
	}
	f.Fuzz(func(t *testing.T, in []byte, max uint16, seed uint64) {
		limit := int(max%8192) + 1
		want, rerr := readAll(t, in, limit)
		have, serr := streamAll(t, in, limit, rand.New(rand.NewPCG(seed, 3)))
		if (rerr == nil) != (serr == nil) || CloseCode(rerr) != CloseCode(serr) {
			t.Fatalf("reader error %v, stream error %v", rerr, serr)
		}
		if len(have) != len(want) {
			t.Fatalf("stream %d messages, reader %d", len(have), len(want))
		}
		for i := range want {
			if have[i] != want[i] {
				t.Fatalf("message %d: stream %v/%q, reader %v/%q", i, have[i].op, have[i].p, want[i].op, want[i].p)
			}
			switch m := want[i]; m.op {
			case ws.OpText:
				if len(m.p) > limit || !utf8.ValidString(m.p) {
					t.Fatalf("text message %d: %d bytes (limit %d), valid UTF-8 %v", i, len(m.p), limit, utf8.ValidString(m.p))
				}
			case ws.OpPing, ws.OpPong, ws.OpClose:
				if len(m.p) > 125 {
					t.Fatalf("control frame %d of %d bytes", i, len(m.p))
				}
			default:
				t.Fatalf("message %d has opcode %v", i, m.op)
			}
		}
		if rerr != nil && CloseCode(rerr) == 0 && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			t.Fatalf("reader error %v has no close code and is not a cut frame", rerr)
		}
	})
}

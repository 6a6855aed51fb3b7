package wsio

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

func clientFrame(fin bool, op ws.OpCode, p []byte) []byte {
	var buf bytes.Buffer
	h := ws.Header{Fin: fin, OpCode: op, Length: int64(len(p)), Masked: true, Mask: [4]byte{1, 2, 3, 4}}
	_ = ws.WriteHeader(&buf, h)
	q := append([]byte(nil), p...)
	ws.Cipher(q, h.Mask, 0)
	buf.Write(q)
	return buf.Bytes()
}

type got struct {
	op ws.OpCode
	p  string
}

func readAll(t *testing.T, in []byte, max int) ([]got, error) {
	t.Helper()
	r := Reader{Src: bytes.NewReader(in), MaxMessage: max}
	defer r.Close()
	var out []got
	for {
		m, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return out, err
		}
		out = append(out, got{m.Op, string(m.Payload)})
		m.Release()
	}
}

// streamAll feeds in to a Stream in random pieces (including would-block reads).
func streamAll(t *testing.T, in []byte, max int, rnd *rand.Rand) ([]got, error) {
	t.Helper()
	s := Stream{MaxMessage: max}
	defer s.Close()
	var out []got
	src := in
	for {
		_, err := s.Fill(func(p []byte) (int, error) {
			if len(src) == 0 {
				return 0, io.EOF
			}
			if rnd.IntN(4) == 0 {
				return 0, ErrWouldBlock
			}
			n := 1 + rnd.IntN(min(len(p), 3000))
			n = copy(p, src[:min(n, len(src))])
			src = src[n:]
			return n, nil
		})
		for {
			m, ok, derr := s.Next()
			if derr != nil {
				return out, derr
			}
			if !ok {
				break
			}
			out = append(out, got{m.Op, string(m.Payload)})
			m.Release()
		}
		if errors.Is(err, ErrWouldBlock) {
			s.Idle()
			continue
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestStreamMatchesReader(t *testing.T) {
	big := strings.Repeat("é", 20000) // 40,000 bytes: larger than the read buffer
	var in []byte
	in = append(in, clientFrame(true, ws.OpText, []byte(`{"event":"ping"}`))...)
	in = append(in, clientFrame(true, ws.OpPing, []byte("hi"))...)
	in = append(in, clientFrame(false, ws.OpText, []byte("frag-1 "))...)
	in = append(in, clientFrame(true, ws.OpPing, nil)...)
	in = append(in, clientFrame(false, ws.OpContinuation, []byte("frag-2 "))...)
	in = append(in, clientFrame(true, ws.OpContinuation, []byte(big))...)
	in = append(in, clientFrame(true, ws.OpText, []byte(big))...)
	for i := 0; i < 50; i++ {
		in = append(in, clientFrame(true, ws.OpText, bytes.Repeat([]byte{'a' + byte(i%26)}, i*37))...)
	}
	in = append(in, clientFrame(true, ws.OpClose, ws.NewCloseFrameBody(1000, "bye"))...)
	want, err := readAll(t, in, 65536)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 56 {
		t.Fatalf("reader: %d messages", len(want))
	}
	for seed := uint64(0); seed < 200; seed++ {
		have, err := streamAll(t, in, 65536, rand.New(rand.NewPCG(seed, 1)))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(have) != len(want) {
			t.Fatalf("seed %d: %d messages, want %d", seed, len(have), len(want))
		}
		for i := range want {
			if have[i] != want[i] {
				t.Fatalf("seed %d: message %d differs (%v/%d vs %v/%d)", seed, i, have[i].op, len(have[i].p), want[i].op, len(want[i].p))
			}
		}
	}
}

func TestStreamErrors(t *testing.T) {
	ok := clientFrame(true, ws.OpText, []byte("ok"))
	unmasked := []byte{0x81, 0x02, 'h', 'i'}
	// A too-big or binary message is refused from its header alone.
	bigHeader := clientFrame(true, ws.OpText, make([]byte, 2000))[:8]
	binHeader := clientFrame(true, ws.OpBinary, []byte("xx"))[:6]
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"too big from header", append(append([]byte{}, ok...), bigHeader...), ErrTooBig},
		{"binary from header", append(append([]byte{}, ok...), binHeader...), ErrBinary},
		{"invalid utf8", clientFrame(true, ws.OpText, []byte{0xff, 0xfe}), ErrInvalidUTF8},
		{"unmasked", unmasked, ErrProtocol},
		{"continuation without start", clientFrame(true, ws.OpContinuation, []byte("x")), ErrProtocol},
		{"long control", clientFrame(true, ws.OpPing, make([]byte, 126)), ErrProtocol},
		{"reserved control opcode", clientFrame(true, ws.OpCode(0xd), nil), ErrProtocol},
		{"reserved data opcode", clientFrame(true, ws.OpCode(0x3), nil), ErrProtocol},
		{"header cut after two bytes", clientFrame(true, ws.OpText, []byte("x"))[:2], io.ErrUnexpectedEOF},
		{"fragmented too big", append(clientFrame(false, ws.OpText, make([]byte, 900)), clientFrame(true, ws.OpContinuation, make([]byte, 200))[:8]...), ErrTooBig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, rerr := readAll(t, tc.in, 1000)
			if !errors.Is(rerr, tc.want) {
				t.Fatalf("reader: %v, want %v", rerr, tc.want)
			}
			for seed := uint64(0); seed < 20; seed++ {
				_, serr := streamAll(t, tc.in, 1000, rand.New(rand.NewPCG(seed, 2)))
				if !errors.Is(serr, tc.want) {
					t.Fatalf("stream seed %d: %v, want %v", seed, serr, tc.want)
				}
			}
		})
	}
}

func TestStreamIdleHoldsNoBuffer(t *testing.T) {
	s := Stream{MaxMessage: 1000}
	in := clientFrame(true, ws.OpText, []byte("hello"))
	_, _ = s.Fill(func(p []byte) (int, error) { return copy(p, in[:4]), nil })
	if _, ok, _ := s.Next(); ok {
		t.Fatal("message from a partial frame")
	}
	s.Idle()
	if !s.Buffered() {
		t.Fatal("partial frame dropped")
	}
	_, _ = s.Fill(func(p []byte) (int, error) { return copy(p, in[4:]), nil })
	m, ok, err := s.Next()
	if err != nil || !ok || string(m.Payload) != "hello" {
		t.Fatalf("%v %v %q", ok, err, m.Payload)
	}
	s.Idle()
	if s.buf != nil {
		t.Fatal("idle stream keeps its buffer")
	}
}

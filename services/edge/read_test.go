package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/talim/realtime/services/edge/internal/loadclient"
)

// maskedFrame builds a client frame.
func maskedFrame(fin bool, op ws.OpCode, p []byte) []byte {
	var buf bytes.Buffer
	h := ws.Header{Fin: fin, OpCode: op, Length: int64(len(p)), Masked: true, Mask: [4]byte{9, 8, 7, 6}}
	_ = ws.WriteHeader(&buf, h)
	q := append([]byte(nil), p...)
	ws.Cipher(q, h.Mask, 0)
	buf.Write(q)
	return buf.Bytes()
}

// readServerFrame reads one unmasked server frame.
func readServerFrame(t *testing.T, br *bufio.Reader) (ws.OpCode, []byte) {
	t.Helper()
	h, err := ws.ReadHeader(br)
	if err != nil {
		t.Fatalf("read header: %v", err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h.OpCode, p
}

// TestRead_IdleConnectionsHoldNoGoroutine: with netpoll reads, idle connections add
// no goroutine to the edge.
func TestRead_IdleConnectionsHoldNoGoroutine(t *testing.T) {
	h := startEdge(t, nil)
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	var conns []net.Conn
	for i := 0; i < 100; i++ {
		c, err := loadclient.Dial(context.Background(), h.edge.Addr(), "", h.token(fmt.Sprintf("idle-%d", i), time.Hour), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(300 * time.Millisecond) // time.AfterFunc and flush goroutines end
	if d := runtime.NumGoroutine() - base; d > 20 {
		t.Fatalf("%d more goroutines for 100 idle connections", d)
	}
}

// TestRead_TrickledAndFragmented: a frame that arrives a few bytes at a time, a
// fragmented message with a ping between its fragments and several frames in one
// segment are all read like a blocking reader would.
func TestRead_TrickledAndFragmented(t *testing.T) {
	h := startEdge(t, nil)
	c, err := loadclient.Dial(context.Background(), h.edge.Addr(), "", h.token("trickle", time.Hour), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	expectAck := func(id string) {
		t.Helper()
		for {
			op, p := readServerFrame(t, br)
			if op == ws.OpText && bytes.Contains(p, []byte(`"`+id+`"`)) {
				return
			}
		}
	}
	f := maskedFrame(true, ws.OpText, []byte(`{"event":"ping","id":"t1"}`))
	for i := 0; i < len(f); i += 3 {
		if _, err := c.Write(f[i:min(i+3, len(f))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	expectAck("t1")

	msg := []byte(`{"event":"ping","id":"t2"}`)
	var seg []byte
	seg = append(seg, maskedFrame(false, ws.OpText, msg[:10])...)
	seg = append(seg, maskedFrame(true, ws.OpPing, []byte("p"))...)
	seg = append(seg, maskedFrame(true, ws.OpContinuation, msg[10:])...)
	seg = append(seg, maskedFrame(true, ws.OpText, []byte(`{"event":"ping","id":"t3"}`))...)
	if _, err := c.Write(seg); err != nil {
		t.Fatal(err)
	}
	op, p := readServerFrame(t, br)
	if op != ws.OpPong || string(p) != "p" {
		t.Fatalf("got %v %q, want the pong first", op, p)
	}
	expectAck("t2")
	expectAck("t3")
}

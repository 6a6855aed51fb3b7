package writer

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recConn records writes and counts write calls.
type recConn struct {
	net.Conn
	mu     sync.Mutex
	buf    bytes.Buffer
	writes atomic.Int64
	block  chan struct{} // when non-nil, writes wait on it
	closed atomic.Bool
}

func (c *recConn) Write(p []byte) (int, error) {
	if c.block != nil {
		<-c.block
	}
	c.writes.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}
func (c *recConn) Close() error                     { c.closed.Store(true); return nil }
func (c *recConn) SetWriteDeadline(time.Time) error { return nil }
func (c *recConn) String() string                   { c.mu.Lock(); defer c.mu.Unlock(); return c.buf.String() }

func TestWriter_OrderAndClose(t *testing.T) {
	done := make(chan error, 1)
	c := &recConn{}
	w := New(c, &Options{MaxBytes: 1 << 20, MaxFrames: 100, WriteTimeout: time.Second, OnDone: func(err error) { done <- err }})
	for _, s := range []string{"a", "b", "c"} {
		if err := w.Enqueue([]byte(s), nil); err != nil {
			t.Fatal(err)
		}
	}
	w.Close([]byte("Z"), false)
	if err := w.Enqueue([]byte("late"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("enqueue after close: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not done")
	}
	if c.String() != "abcZ" || !c.closed.Load() {
		t.Fatalf("wrote %q closed=%v", c.String(), c.closed.Load())
	}
}

func TestWriter_SlowConsumer_Overflows(t *testing.T) {
	c := &recConn{block: make(chan struct{})}
	w := New(c, &Options{MaxBytes: 10, MaxFrames: 100, WriteTimeout: time.Second})
	_ = w.Enqueue([]byte("12345"), nil) // taken by the flusher, which blocks
	deadline := time.Now().Add(5 * time.Second)
	for {
		if f, _ := w.Queued(); f == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flusher did not take the first frame")
		}
		time.Sleep(time.Millisecond)
	}
	if err := w.Enqueue([]byte("123456"), nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Enqueue([]byte("123456"), nil); !errors.Is(err, ErrOverflow) {
		t.Fatalf("want overflow, got %v", err)
	}
	w.Close([]byte("X"), true)
	close(c.block)
	for !c.closed.Load() {
		time.Sleep(time.Millisecond)
	}
	if got := c.String(); got != "12345X" {
		t.Fatalf("wrote %q, want the in-flight frame then the close frame", got)
	}
}

func TestWriter_Coalesces(t *testing.T) {
	c := &recConn{block: make(chan struct{})}
	w := New(c, &Options{MaxBytes: 1 << 20, MaxFrames: 1000, WriteTimeout: time.Second})
	_ = w.Enqueue([]byte("first"), nil)
	for i := 0; i < 100; i++ {
		_ = w.Enqueue([]byte("x"), nil)
	}
	close(c.block)
	deadline := time.Now().Add(5 * time.Second)
	for len(c.String()) < 105 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// recConn is not a *net.TCPConn, so net.Buffers falls back to one Write per
	// buffer; what matters is that one flush took every queued frame.
	if f, _ := w.Queued(); f != 0 {
		t.Fatalf("%d frames still queued", f)
	}
}

// BenchmarkWriter_Coalescing enqueues small frames to a writer over a real loopback
// TCP connection and reports the frames per write system call.
func BenchmarkWriter_Coalescing(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 1<<16)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	var flushes, frames atomic.Int64
	w := New(conn, &Options{MaxBytes: 64 << 20, MaxFrames: 1 << 20, WriteTimeout: 5 * time.Second,
		OnWritten: func(n, _ int) { flushes.Add(1); frames.Add(int64(n)) }})
	frame := bytes.Repeat([]byte("x"), 128)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		for w.Enqueue(frame, nil) != nil {
			time.Sleep(time.Microsecond) // queue full: let the flusher catch up
		}
	}
	w.Close(nil, false)
	if f := flushes.Load(); f > 0 {
		b.ReportMetric(float64(frames.Load())/float64(f), "frames/flush")
	}
}

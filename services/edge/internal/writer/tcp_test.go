package writer

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestWriter_TCP: frames from several goroutines over a real socket whose reader
// starts late (the socket buffer fills, flushes block under their deadline) arrive
// complete and in per-goroutine order; Close writes the last frame after them and
// the done hook runs once.
func TestWriter_TCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	o := &Options{MaxBytes: 64 << 20, MaxFrames: 1 << 20, WriteTimeout: 10 * time.Second}
	w := New(server.(*net.TCPConn), o)
	w.SetDone(func(err error) { done <- err })

	const senders, per, size = 4, 2000, 300
	var wg sync.WaitGroup
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				b := GetBuf()
				f := append((*b)[:0], make([]byte, size)...)
				binary.BigEndian.PutUint32(f, uint32(g))
				binary.BigEndian.PutUint32(f[4:], uint32(i))
				*b = f
				if err := w.Enqueue(f, b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the socket buffer fill before reading
	var all []byte
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		all, _ = io.ReadAll(client)
	}()
	wg.Wait()
	w.Close([]byte("bye"), false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writer did not finish")
	}
	<-readDone
	if len(all) != senders*per*size+3 || !bytes.HasSuffix(all, []byte("bye")) {
		t.Fatalf("read %d bytes", len(all))
	}
	next := make([]uint32, senders)
	for off := 0; off+size <= len(all)-3; off += size {
		g, i := binary.BigEndian.Uint32(all[off:]), binary.BigEndian.Uint32(all[off+4:])
		if g >= senders || i != next[g] {
			t.Fatalf("at %d: sender %d frame %d, want %d", off, g, i, next[g])
		}
		next[g]++
	}
}

// TestWriter_IdleEnqueueAllocs: a frame enqueued to an idle writer over a real
// socket is written by a flush goroutine, and nothing is allocated for it.
func TestWriter_IdleEnqueueAllocs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	o := &Options{MaxBytes: 1 << 20, MaxFrames: 1024, WriteTimeout: time.Second}
	w := New(server.(*net.TCPConn), o)
	frame := []byte("0123456789")
	_ = w.Enqueue(frame, nil) // warm up: the queue and writev arrays exist
	for w.Busy() {
		runtime.Gosched()
	}
	allocs := testing.AllocsPerRun(500, func() {
		_ = w.Enqueue(frame, nil)
		for w.Busy() { // wait until the flush goroutine wrote it
			runtime.Gosched()
		}
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocs per enqueue to an idle writer", allocs)
	}
}

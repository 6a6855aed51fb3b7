//go:build linux

package netpoll

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

type echoHandler struct {
	d    Desc
	mu   sync.Mutex
	got  []byte
	eof  chan struct{}
	once sync.Once
}

func (h *echoHandler) OnReadable() {
	var b [3]byte // small: several turns per burst
	for i := 0; i < 4; i++ {
		n, err := h.d.Read(b[:])
		if errors.Is(err, ErrWouldBlock) {
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				h.once.Do(func() { close(h.eof) })
			}
			return
		}
		h.mu.Lock()
		h.got = append(h.got, b[:n]...)
		h.mu.Unlock()
	}
	_ = h.d.Rearm()
}

func (h *echoHandler) text() string { h.mu.Lock(); defer h.mu.Unlock(); return string(h.got) }

func TestPoller(t *testing.T) {
	p, err := New(2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n = 20
	var clients []net.Conn
	var hs []*echoHandler
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		h := &echoHandler{eof: make(chan struct{})}
		if err := p.Register(&h.d, s.(*net.TCPConn), h); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		hs = append(hs, h)
	}
	for round := 0; round < 3; round++ {
		for _, c := range clients {
			if _, err := c.Write([]byte("hello world ")); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := "hello world hello world hello world "
	deadline := time.Now().Add(5 * time.Second)
	for i, h := range hs {
		for h.text() != want {
			if time.Now().After(deadline) {
				t.Fatalf("conn %d got %q", i, h.text())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i, c := range clients {
		c.Close()
		select {
		case <-hs[i].eof:
		case <-time.After(5 * time.Second):
			t.Fatalf("conn %d: no EOF", i)
		}
	}
	p.Close()
	if err := p.Register(&Desc{}, clients[0].(*net.TCPConn), hs[0]); err == nil {
		t.Fatal("register after close")
	}
}

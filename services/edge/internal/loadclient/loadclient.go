// Package loadclient opens many idle, authenticated native-protocol connections with
// as little client-side memory as possible (no goroutine per connection: each is
// dialled, upgraded, checked for its `connected` frame and then left alone). The
// edge's own tests use it: the memory bound (memory_test.go), the socket fan-out
// benchmark (fanout_socket_test.go) and the read-path tests (read_test.go).
package loadclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures Open.
type Options struct {
	// Addr is the edge's host:port.
	Addr string
	// N is the number of connections.
	N int
	// Token returns the token of connection i.
	Token func(i int) string
	// LocalIPs are source addresses used round-robin in blocks (loopback aliases such
	// as 127.0.0.2…); empty means the system's choice.
	LocalIPs []string
	// PerIP is how many consecutive connections use one local IP (default 5000).
	PerIP int
	// Concurrency is the number of dials in flight (default 64).
	Concurrency int
	// Timeout bounds one dial + handshake + first frame (default 10s).
	Timeout time.Duration
}

// Open dials opts.N connections and returns them; on error the ones opened so far
// are returned with it.
func Open(ctx context.Context, o Options) ([]net.Conn, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.PerIP <= 0 {
		o.PerIP = 5000
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	conns := make([]net.Conn, o.N)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= o.N || ctx.Err() != nil {
					return
				}
				ip := ""
				if len(o.LocalIPs) > 0 {
					ip = o.LocalIPs[(i/o.PerIP)%len(o.LocalIPs)]
				}
				c, err := Dial(ctx, o.Addr, ip, o.Token(i), o.Timeout)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i, err) })
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	out := conns[:0]
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	return out, firstErr
}

// Dial opens one connection from localIP (may be empty), upgrades it with token and
// waits for the `connected` frame.
func Dial(ctx context.Context, addr, localIP, token string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET /ws?token=" + url.QueryEscape(token) + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
		base64.StdEncoding.EncodeToString(key[:]) + "\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 1024)
	status, err := br.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, err
	}
	if len(status) < 12 || status[9:12] != "101" {
		c.Close()
		return nil, fmt.Errorf("handshake: %q", status)
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	// First frame: unmasked text, length < 126 or 16-bit.
	var h [4]byte
	if _, err := br.Read(h[:2]); err != nil {
		c.Close()
		return nil, err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		if _, err := readFull(br, h[2:4]); err != nil {
			c.Close()
			return nil, err
		}
		n = int(h[2])<<8 | int(h[3])
	}
	p := make([]byte, n)
	if _, err := readFull(br, p); err != nil {
		c.Close()
		return nil, err
	}
	if !bytes.Contains(p, []byte(`"connected"`)) {
		c.Close()
		return nil, errors.New("first frame is not connected")
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func readFull(br *bufio.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := br.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

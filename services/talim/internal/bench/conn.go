package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// maxInbound bounds one server message the bench accepts (history pages are the largest).
const maxInbound = 4 << 20

// conn is one lean client connection: a socket, a 2 KiB read buffer and one reader
// goroutine; writes (sends, pongs) are serialised by wmu. Per-room accounting lives in
// track (guarded by mu) because every bench connection joins at most one room.
type conn struct {
	w    *worker
	idx  int // index within the worker
	user string
	room string

	wmu  sync.Mutex
	nc   net.Conn
	wbuf []byte

	connected chan struct{} // closed on the first "connected" frame
	joined    chan struct{} // closed on the first join ack (or join error)
	joinOnce  sync.Once
	connOnce  sync.Once

	mu       sync.Mutex
	track    SeqTrack
	hasBase  bool
	dropping atomic.Bool
	// reconnectAt is when the reconnect after a planned drop began (Unix ns).
	reconnectAt atomic.Int64
	// probeWait, while a probe is out, receives whether it was acknowledged.
	probeWait atomic.Pointer[chan bool]
	nsent     int64
}

func (c *conn) dial(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	w := w0(c)
	tok, err := w.token(c.user)
	if err != nil {
		return nil, nil, err
	}
	nd := &net.Dialer{Timeout: 10 * time.Second}
	if w.cfg.SourceIP != "" {
		nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(w.cfg.SourceIP)}
	}
	d := ws.Dialer{
		ReadBufferSize: 2048,
		Timeout:        10 * time.Second,
		Header:         ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + tok}}),
		NetDial:        nd.DialContext,
	}
	nc, br, _, err := d.Dial(ctx, w.cfg.WSURL)
	if err != nil {
		return nil, nil, err
	}
	if br == nil {
		br = bufio.NewReaderSize(nc, 2048)
	}
	return nc, br, nil
}

func w0(c *conn) *worker { return c.w }

// write sends one masked client frame.
func (c *conn) write(op ws.OpCode, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.nc == nil {
		return net.ErrClosed
	}
	mask := ws.NewMask()
	n := len(payload)
	b := c.wbuf[:0]
	b = append(b, 0x80|byte(op))
	switch {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, payload...)
	ws.Cipher(b[start:], mask, 0)
	if cap(b) <= 4096 {
		c.wbuf = b
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

// readLoop reads frames until the connection ends for good (ctx done or a close that
// is not a planned drop). It reconnects after a planned drop (reconnect-storm).
func (c *conn) readLoop(ctx context.Context, nc net.Conn, br *bufio.Reader) {
	buf := make([]byte, 0, 512)
	for {
		err := c.readFrames(nc, br, &buf)
		c.w.closed(err)
		if ctx.Err() != nil || !c.dropping.Load() {
			return
		}
		// Planned drop: reconnect after a jitter, resume with sinceSeq.
		delay := time.Duration(rand.Int64N(c.w.dropWindow.Load() + 1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		c.reconnectAt.Store(time.Now().UnixNano())
		var err2 error
		for attempt := 0; attempt < 10; attempt++ {
			nc, br, err2 = c.dial(ctx)
			if err2 == nil {
				break
			}
			c.w.countOther("reconnect attempt failed: " + shortErr(err2))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(100+rand.IntN(400)) * time.Millisecond):
			}
		}
		if err2 != nil {
			c.w.countErr("reconnect: " + shortErr(err2))
			return
		}
		c.wmu.Lock()
		c.nc = nc
		c.wmu.Unlock()
		c.dropping.Store(false)
		c.w.reconnectedNow()
		if c.room != "" {
			c.mu.Lock()
			since := c.contiguous()
			c.mu.Unlock()
			_ = c.sendJoin(since, true)
		}
	}
}

// contiguous is the highest seq up to which the connection holds everything (mu held).
func (c *conn) contiguous() int64 {
	t := &c.track
	s := t.Base
	for s < t.MaxSeen && t.Has(s+1) {
		s++
	}
	return s
}

func (c *conn) readFrames(nc net.Conn, br *bufio.Reader, buf *[]byte) error {
	var msg []byte
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return err
		}
		if h.Length > maxInbound || int64(len(msg))+h.Length > maxInbound {
			return fmt.Errorf("frame of %d bytes over the bench limit", h.Length)
		}
		n := int(h.Length)
		if cap(*buf) < n {
			*buf = make([]byte, n)
		}
		p := (*buf)[:n]
		if _, err := io.ReadFull(br, p); err != nil {
			return err
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpPing:
			_ = c.write(ws.OpPong, p)
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			code := 1005
			if len(p) >= 2 {
				code = int(binary.BigEndian.Uint16(p))
			}
			_ = c.write(ws.OpClose, p[:min(len(p), 2)])
			_ = nc.Close()
			return closeError(code)
		}
		if !h.Fin || msg != nil {
			msg = append(msg, p...)
			if !h.Fin {
				continue
			}
			p, msg = msg, nil
		}
		c.handle(p)
		if cap(*buf) > 64<<10 {
			*buf = make([]byte, 0, 512) // do not keep a history page's buffer
		}
	}
}

type closeError int

func (e closeError) Error() string { return "close " + strconv.Itoa(int(e)) }

func (c *conn) handle(p []byte) {
	w := c.w
	now := time.Now()
	ev := jsonStr(p, "event")
	switch string(ev) {
	case "chat-message":
		seq, ok := jsonInt(p, "seq")
		if !ok {
			w.countErr("chat-message without seq")
			return
		}
		c.mu.Lock()
		isNew := c.track.Observe(seq)
		c.mu.Unlock()
		if ts, ok := stampOf(jsonStr(p, "content")); ok {
			w.delivered(now.UnixNano()-ts, isNew)
		} else {
			w.delivered(-1, isNew)
		}
	case "notification":
		title := jsonStr(p, "title")
		ts, ok1 := stampOf(title)
		k, ok2 := notifyIndex(title)
		if !ok1 || !ok2 {
			w.countOther("notification (not the bench's)")
			return
		}
		c.mu.Lock()
		isNew := c.track.Observe(k + 1)
		c.mu.Unlock()
		w.delivered(now.UnixNano()-ts, isNew)
	case "ack":
		id := jsonStr(p, "id")
		if len(id) < 2 {
			return
		}
		switch id[0] {
		case 's':
			ts, _ := strconv.ParseInt(string(id[1:]), 10, 64)
			seq, _ := jsonInt(p, "seq")
			w.acked(c.room, now.UnixNano()-ts, seq)
		case 'j':
			last, _ := jsonInt(p, "lastSeq")
			c.mu.Lock()
			if !c.hasBase {
				c.track.Base, c.hasBase = last, true
			}
			c.mu.Unlock()
			if id[1] == 'r' {
				w.rejoined(now.Sub(time.Unix(0, c.reconnectAt.Load())), now)
			} else if ts, err := strconv.ParseInt(string(id[1:]), 10, 64); err == nil {
				w.record(&w.join, now.Sub(time.Unix(0, ts)))
			}
			c.joinOnce.Do(func() { close(c.joined) })
		case 'p':
			if ts, err := strconv.ParseInt(string(id[1:]), 10, 64); err == nil {
				w.record(&w.probe, now.Sub(time.Unix(0, ts)))
			}
			c.probeDone(true)
		case 'h':
			c.history(p, now)
		}
	case "chat-room-history":
		c.history(p, now)
	case "connected":
		c.connOnce.Do(func() { close(c.connected) })
	case "error":
		c.handleError(p, now)
	default:
		w.countOther(string(ev))
	}
}

// handleError counts an error frame by the command it answers (from the id the
// bench chose) and code, with its latency and retryAfterMs.
func (c *conn) handleError(p []byte, now time.Time) {
	w := c.w
	id := jsonStr(p, "id")
	code := string(jsonStr(p, "code"))
	if code == "" {
		code = "(no code)"
	}
	retry, _ := jsonInt(p, "retryAfterMs")
	op, lat := "other", time.Duration(-1)
	stamp := func(b []byte) {
		if ts, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			lat = now.Sub(time.Unix(0, ts))
		}
	}
	switch {
	case len(id) > 1 && id[0] == 's':
		op = "send"
		stamp(id[1:])
	case len(id) > 1 && id[0] == 'j' && id[1] == 'r':
		op = "rejoin"
	case len(id) > 1 && id[0] == 'j':
		op = "join"
		stamp(id[1:])
	case len(id) > 1 && id[0] == 'p':
		op = "probe"
		stamp(id[1:])
	case len(id) > 0 && id[0] == 'h':
		op = "history"
	}
	w.refused(op, code, lat, retry)
	switch op {
	case "join", "rejoin":
		c.joinOnce.Do(func() { close(c.joined) })
	case "probe":
		c.probeDone(false)
	}
}

// probeDone hands a probe's outcome to the waiting probeAll.
func (c *conn) probeDone(ok bool) {
	if ch := c.probeWait.Swap(nil); ch != nil {
		select {
		case *ch <- ok:
		default:
		}
	}
}

// history handles a chat-room-history event or a get-chat-room-history ack: messages
// above the base count as delivered (recovered), the rest is ignored; hasMore asks
// for the next page.
func (c *conn) history(p []byte, now time.Time) {
	var f struct {
		Data struct {
			Messages []struct {
				Seq int64 `json:"seq"`
			} `json:"messages"`
			HasMore bool `json:"hasMore"`
		} `json:"data"`
	}
	if err := json.Unmarshal(p, &f); err != nil {
		c.w.countErr("history: " + shortErr(err))
		return
	}
	var last int64
	var fresh int64
	c.mu.Lock()
	if !c.hasBase {
		c.mu.Unlock()
		return // initial history before the join ack: not the bench's messages
	}
	for _, m := range f.Data.Messages {
		last = max(last, m.Seq)
		if m.Seq > c.track.Base && c.track.Observe(m.Seq) {
			fresh++
		}
	}
	c.mu.Unlock()
	c.w.recovered(fresh)
	if f.Data.HasMore && last > 0 && c.room != "" {
		body := fmt.Sprintf(`{"event":"get-chat-room-history","id":"h%d","data":{"roomId":%q,"afterSeq":%d,"limit":200}}`, now.UnixNano(), c.room, last)
		_ = c.write(ws.OpText, []byte(body))
	}
}

// sendJoin joins the connection's room: a first join (id j<ns>, the send time) or
// a resume after a reconnect (id jr<ns>, sinceSeq).
func (c *conn) sendJoin(since int64, resume bool) error {
	var body string
	now := time.Now().UnixNano()
	if resume {
		body = fmt.Sprintf(`{"event":"join-chat-room","id":"jr%d","data":{"roomId":%q,"sinceSeq":%d}}`, now, c.room, since)
	} else {
		body = fmt.Sprintf(`{"event":"join-chat-room","id":"j%d","data":{"roomId":%q,"limit":1}}`, now, c.room)
	}
	return c.write(ws.OpText, []byte(body))
}

// sendProbe sends a join of room (the connection's own room when empty) with id
// p<ns>; it does not touch the connection's accounting.
func (c *conn) sendProbe(room string) error {
	if room == "" {
		room = c.room
	}
	body := fmt.Sprintf(`{"event":"join-chat-room","id":"p%d","data":{"roomId":%q,"limit":1}}`, time.Now().UnixNano(), room)
	return c.write(ws.OpText, []byte(body))
}

// isUp reports whether the connection is open and not in a planned drop.
func (c *conn) isUp() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.nc != nil && !c.dropping.Load()
}

// send sends one chat message stamped with the current time.
func (c *conn) send(pad string) error {
	now := time.Now().UnixNano()
	c.nsent++
	body := fmt.Sprintf(`{"event":"send-chat-message","id":"s%d","data":{"roomId":%q,"content":"b%d %s","clientMsgId":"w%dc%dn%d"}}`,
		now, c.room, now, pad, c.w.cfg.Index, c.idx, c.nsent)
	return c.write(ws.OpText, []byte(body))
}

func (c *conn) drop() {
	c.dropping.Store(true)
	c.wmu.Lock()
	if c.nc != nil {
		_ = c.nc.Close()
	}
	c.wmu.Unlock()
}

func (c *conn) close() {
	c.wmu.Lock()
	if c.nc != nil {
		_ = c.nc.Close()
		c.nc = nil
	}
	c.wmu.Unlock()
}

func shortErr(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	var sb ws.StatusError
	if errors.As(err, &sb) {
		return "http " + strconv.Itoa(int(sb))
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

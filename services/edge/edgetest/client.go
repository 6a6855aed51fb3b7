// Package edgetest is a WebSocket test client for the edge's native protocol, plus a
// test responder that plays a backing service over NATS and a helper to publish
// per-user outbound events. It is used by the edge's own tests and by end-to-end tests
// of other services (services/talim/e2e).
//
// Every wait has a deadline; nothing sleeps for synchronisation. Frames that a wait
// does not want stay queued for later Next/Expect calls, in arrival order.
package edgetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// DefaultTimeout bounds Request and Dial.
const DefaultTimeout = 10 * time.Second

// Frame is one server event.
type Frame struct {
	Event string          `json:"event"`
	ID    json.RawMessage `json:"id,omitempty"`
	Data  json.RawMessage `json:"data"`
	// Raw is the frame's JSON text.
	Raw []byte `json:"-"`
}

// ProtoError is the data of an `error` event.
type ProtoError struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	RetryAfterMs int64  `json:"retryAfterMs,omitempty"`
}

func (e *ProtoError) Error() string { return e.Code + ": " + e.Message }

// CloseError is returned by Next once the server closed the connection. Code is 1006
// when the socket ended without a close frame.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("closed %d %s", e.Code, e.Reason) }

// ErrTimeout is returned by Next when no frame arrived in time.
var ErrTimeout = errors.New("edgetest: timeout waiting for a frame")

// HandshakeError is a refusal before the upgrade.
type HandshakeError struct {
	Status int
	Body   []byte
	// Code is the body's error.code (e.g. "unauthorized").
	Code string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("handshake refused: %d %s", e.Status, e.Body)
}

// Connected is the data of the first frame.
type Connected struct {
	UserID         string `json:"userId"`
	ConnectionID   string `json:"connectionId"`
	ServerTime     string `json:"serverTime"`
	PingIntervalMs int64  `json:"pingIntervalMs"`
}

type options struct {
	header     http.Header
	authHeader bool
	localIP    string
	noPong     bool
	paused     bool
	readBuffer int
	timeout    time.Duration
	query      url.Values
}

// Option configures Dial.
type Option func(*options)

// WithHeader adds a request header (e.g. Origin).
func WithHeader(key, value string) Option { return func(o *options) { o.header.Add(key, value) } }

// WithOrigin sets the Origin header.
func WithOrigin(origin string) Option { return WithHeader("Origin", origin) }

// WithAuthHeader sends the token as "Authorization: Bearer" instead of ?token=.
func WithAuthHeader() Option { return func(o *options) { o.authHeader = true } }

// WithQuery adds a query parameter (e.g. userId in development mode).
func WithQuery(key, value string) Option { return func(o *options) { o.query.Add(key, value) } }

// WithLocalIP dials from this local address (e.g. 127.0.0.2).
func WithLocalIP(ip string) Option { return func(o *options) { o.localIP = ip } }

// WithoutPong stops answering server pings (to test the idle timeout).
func WithoutPong() Option { return func(o *options) { o.noPong = true } }

// Paused does not read from the socket until Resume (a client that never reads).
func Paused() Option { return func(o *options) { o.paused = true } }

// WithReadBuffer sets the socket receive buffer. Beware: on loopback a buffer smaller
// than the MSS (64 KiB) can stall TCP for seconds (silly-window avoidance).
func WithReadBuffer(n int) Option { return func(o *options) { o.readBuffer = n } }

// Client is one test connection. Its methods are safe for concurrent use.
type Client struct {
	// Connected is the data of the `connected` frame (zero for paused clients until
	// the frame was read).
	Connected Connected

	conn    net.Conn
	br      io.Reader
	o       options
	wmu     sync.Mutex
	nextID  atomic.Int64
	resume  chan struct{}
	resumed sync.Once

	mu     sync.Mutex
	frames []Frame
	closed *CloseError
	notify chan struct{} // closed and replaced on every change
	done   chan struct{}
}

// DialContext connects without a testing.TB; a refusal is a *HandshakeError. token
// may be empty. Unless paused, it waits for the `connected` frame.
func DialContext(ctx context.Context, wsURL, token string, opts ...Option) (*Client, error) {
	o := options{header: http.Header{}, query: url.Values{}, timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, fmt.Errorf("edgetest: parse %s: %w", wsURL, err)
	}
	q := u.Query()
	for k, vs := range o.query {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	if token != "" {
		if o.authHeader {
			o.header.Set("Authorization", "Bearer "+token)
		} else {
			q.Set("token", token)
		}
	}
	u.RawQuery = q.Encode()
	var herr *HandshakeError
	d := ws.Dialer{
		Header:  ws.HandshakeHeaderHTTP(o.header),
		Timeout: o.timeout,
		OnStatusError: func(status int, _ []byte, resp io.Reader) {
			// resp is the whole response: status line, headers, body.
			var body []byte
			if r, err := http.ReadResponse(bufio.NewReader(resp), nil); err == nil {
				body, _ = io.ReadAll(io.LimitReader(r.Body, 64<<10))
				_ = r.Body.Close()
			}
			herr = &HandshakeError{Status: status, Body: body}
			var e struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if json.Unmarshal(body, &e) == nil {
				herr.Code = e.Error.Code
			}
		},
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{}
			if o.localIP != "" {
				nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.localIP)}
			}
			c, err := nd.DialContext(ctx, network, addr)
			if err == nil && o.readBuffer > 0 {
				_ = c.(*net.TCPConn).SetReadBuffer(o.readBuffer)
			}
			return c, err
		},
	}
	conn, br, _, err := d.Dial(ctx, u.String())
	if herr != nil {
		if conn != nil {
			_ = conn.Close()
		}
		return nil, herr
	}
	if err != nil {
		return nil, fmt.Errorf("edgetest: dial %s: %w", wsURL, err)
	}
	c := &Client{conn: conn, o: o, notify: make(chan struct{}), done: make(chan struct{}), resume: make(chan struct{})}
	c.br = conn
	if br != nil {
		c.br = io.MultiReader(br, conn)
	}
	go c.readLoop()
	if o.paused {
		return c, nil
	}
	c.Resume()
	f, err := c.next(o.timeout, func(f Frame) bool { return f.Event == "connected" })
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("edgetest: waiting for connected: %w", err)
	}
	if err := json.Unmarshal(f.Data, &c.Connected); err != nil {
		c.Close()
		return nil, fmt.Errorf("edgetest: connected frame %s: %w", f.Raw, err)
	}
	return c, nil
}

// Dial connects and waits for `connected`, failing the test on any error. The client
// is closed in t.Cleanup.
func Dial(t testing.TB, wsURL, token string, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	c, err := DialContext(ctx, wsURL, token, opts...)
	if err != nil {
		t.Fatalf("edgetest.Dial: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// DialRefused dials and returns the refusal, failing the test if the upgrade succeeded.
func DialRefused(t testing.TB, wsURL, token string, opts ...Option) *HandshakeError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	c, err := DialContext(ctx, wsURL, token, opts...)
	if err == nil {
		c.Close()
		t.Fatalf("edgetest.DialRefused: connection was accepted")
	}
	var herr *HandshakeError
	if !errors.As(err, &herr) {
		t.Fatalf("edgetest.DialRefused: %v", err)
	}
	return herr
}

// Resume starts reading for a Paused client.
func (c *Client) Resume() { c.resumed.Do(func() { close(c.resume) }) }

func (c *Client) readLoop() {
	defer close(c.done)
	<-c.resume
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			c.finish(&CloseError{Code: 1006, Reason: err.Error()})
			return
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			c.finish(&CloseError{Code: 1006, Reason: err.Error()})
			return
		}
		if h.Masked {
			ws.Cipher(payload, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpPing:
			if !c.o.noPong {
				_ = c.write(ws.OpPong, payload)
			}
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(payload)
			_ = c.write(ws.OpClose, ws.NewCloseFrameBody(code, ""))
			if code.Empty() {
				code = 1005
			}
			c.finish(&CloseError{Code: int(code), Reason: reason})
			_ = c.conn.Close()
			return
		case ws.OpText, ws.OpContinuation:
			var f Frame
			if err := json.Unmarshal(payload, &f); err != nil {
				f = Frame{Event: "!invalid-json"}
			}
			f.Raw = payload
			c.push(f)
		}
	}
}

func (c *Client) push(f Frame) {
	c.mu.Lock()
	c.frames = append(c.frames, f)
	close(c.notify)
	c.notify = make(chan struct{})
	c.mu.Unlock()
}

func (c *Client) finish(e *CloseError) {
	c.mu.Lock()
	if c.closed == nil {
		c.closed = e
	}
	close(c.notify)
	c.notify = make(chan struct{})
	c.mu.Unlock()
}

func (c *Client) write(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(DefaultTimeout))
	return wsutil.WriteClientMessage(c.conn, op, p)
}

// next removes and returns the first queued frame matching want, waiting up to
// timeout. Once the connection is closed and no queued frame matches, it returns the
// *CloseError.
func (c *Client) next(timeout time.Duration, want func(Frame) bool) (Frame, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for i, f := range c.frames {
			if want(f) {
				c.frames = append(c.frames[:i], c.frames[i+1:]...)
				c.mu.Unlock()
				return f, nil
			}
		}
		if c.closed != nil {
			e := c.closed
			c.mu.Unlock()
			return Frame{}, e
		}
		ch := c.notify
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return Frame{}, ErrTimeout
		}
	}
}

// Next returns the next frame (the oldest queued one), or a *CloseError once the
// connection closed, or ErrTimeout.
func (c *Client) Next(timeout time.Duration) (Frame, error) {
	return c.next(timeout, func(Frame) bool { return true })
}

// Expect returns the data of the first frame with event, leaving other frames queued.
// It fails the test on timeout or close.
func (c *Client) Expect(t testing.TB, event string, timeout time.Duration) json.RawMessage {
	t.Helper()
	f, err := c.next(timeout, func(f Frame) bool { return f.Event == event })
	if err != nil {
		t.Fatalf("edgetest: expecting %q: %v (queued: %s)", event, err, c.queued())
	}
	return f.Data
}

// ExpectNone fails the test if a frame with event is queued or arrives within window.
func (c *Client) ExpectNone(t testing.TB, event string, window time.Duration) {
	t.Helper()
	f, err := c.next(window, func(f Frame) bool { return f.Event == event })
	if err == nil {
		t.Fatalf("edgetest: unexpected %q: %s", event, f.Raw)
	}
}

// ExpectClose waits for the server to close the connection with code (frames before
// the close are skipped).
func (c *Client) ExpectClose(t testing.TB, code int, timeout time.Duration) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		t.Fatalf("edgetest: expecting close %d: still open after %v (queued: %s)", code, timeout, c.queued())
	}
	c.mu.Lock()
	got := c.closed
	c.mu.Unlock()
	if got == nil || got.Code != code {
		t.Fatalf("edgetest: expecting close %d, got %v", code, got)
	}
}

// CloseErr returns how the connection ended, or nil while it is open.
func (c *Client) CloseErr() *CloseError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Done is closed once the connection ended.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) queued() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b bytes.Buffer
	for i, f := range c.frames {
		if i == 5 {
			fmt.Fprintf(&b, " …%d more", len(c.frames)-5)
			break
		}
		raw := f.Raw
		if len(raw) > 160 {
			raw = append(raw[:160:160], "…"...)
		}
		b.Write(raw)
		b.WriteByte(' ')
	}
	return b.String()
}

// Send writes a raw text frame.
func (c *Client) Send(raw string) error { return c.write(ws.OpText, []byte(raw)) }

// SendFrame writes one frame with any opcode (binary, invalid UTF-8, ...).
func (c *Client) SendFrame(op ws.OpCode, payload []byte) error { return c.write(op, payload) }

// Emit sends an event without an id.
func (c *Client) Emit(event string, data any) error {
	b, err := json.Marshal(map[string]any{"event": event, "data": data})
	if err != nil {
		return err
	}
	return c.write(ws.OpText, b)
}

// Request sends event with an automatic integer id and waits (DefaultTimeout) for
// its ack or error. Other frames stay queued. A timeout or close is returned as a
// ProtoError with code "edgetest_timeout" or "edgetest_closed".
func (c *Client) Request(event string, data any) (json.RawMessage, *ProtoError) {
	id := strconv.FormatInt(c.nextID.Add(1), 10)
	return c.RequestWithID(json.RawMessage(id), event, data, DefaultTimeout)
}

// RequestWithID is Request with an explicit raw JSON id (e.g. `"abc"` or `17`).
func (c *Client) RequestWithID(id json.RawMessage, event string, data any, timeout time.Duration) (json.RawMessage, *ProtoError) {
	if data == nil {
		data = map[string]any{}
	}
	msg, err := json.Marshal(map[string]any{"event": event, "data": data, "id": id})
	if err != nil {
		return nil, &ProtoError{Code: "edgetest_marshal", Message: err.Error()}
	}
	if err := c.write(ws.OpText, msg); err != nil {
		return nil, &ProtoError{Code: "edgetest_closed", Message: err.Error()}
	}
	f, err := c.next(timeout, func(f Frame) bool {
		return (f.Event == "ack" || f.Event == "error") && bytes.Equal(f.ID, id)
	})
	if err != nil {
		code := "edgetest_timeout"
		var ce *CloseError
		if errors.As(err, &ce) {
			code = "edgetest_closed"
		}
		return nil, &ProtoError{Code: code, Message: err.Error()}
	}
	if f.Event == "error" {
		var pe ProtoError
		_ = json.Unmarshal(f.Data, &pe)
		return nil, &pe
	}
	return f.Data, nil
}

// Close closes the connection (with a close frame, best effort) and waits for the
// reader to end.
func (c *Client) Close() {
	c.Resume()
	_ = c.write(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
	_ = c.conn.Close()
	<-c.done
}

// Conn exposes the underlying connection (for tests that misbehave on purpose).
func (c *Client) Conn() net.Conn { return c.conn }

package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// Event is a server → client event.
type Event struct {
	Name string
	// Data is the event's data. It is not shared with other handlers' copies of the
	// frame only in the sense that nobody writes to it: do not modify it.
	Data json.RawMessage
}

// Hello is the data of the `connected` frame the server sends first.
type Hello struct {
	UserID         string    `json:"userId"`
	ConnectionID   string    `json:"connectionId"`
	ServerTime     time.Time `json:"serverTime"`
	PingIntervalMs int64     `json:"pingIntervalMs"`
}

type inEnvelope struct {
	Event string          `json:"event"`
	ID    json.RawMessage `json:"id,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

type outEnvelope struct {
	Event string `json:"event"`
	ID    uint64 `json:"id,omitempty"`
	Data  any    `json:"data,omitempty"`
}

type outFrame struct {
	op ws.OpCode
	p  []byte
}

// call is a request waiting for its ack: exactly one of ch (a goroutine waits) or fn
// (called on the reader goroutine) is set.
type call struct {
	ch chan callResult
	fn func(json.RawMessage, error)
}

type callResult struct {
	data json.RawMessage
	err  error
}

// Conn is one WebSocket connection speaking the native protocol: ids, acks, error
// frames, pings. It does not reconnect, resume or queue: Client does that on top of
// it. Load tools use it directly through DialRaw because it is small: while idle it
// holds one goroutine (the reader), a read buffer and no timer besides the socket's
// read deadline; a writer goroutine exists only while frames are waiting to be
// written.
//
// All methods are safe for concurrent use.
type Conn struct {
	nc           net.Conn
	br           *bufio.Reader
	log          *slog.Logger
	onEvent      func(Event)
	maxFrame     int64
	maxQueue     int
	writeTimeout time.Duration
	cmdTimeout   time.Duration
	readTimeout  time.Duration
	hello        Hello
	nextID       atomic.Uint64
	rhdr         [ws.MaxHeaderSize]byte // reader only
	whdr         [ws.MaxHeaderSize]byte // writer only

	mu      sync.Mutex
	pending map[uint64]*call
	queue   []outFrame
	queued  int
	writing bool  // a writer goroutine runs
	closing bool  // no more frames accepted
	err     error // why the reader stopped; set once
	done    chan struct{}
}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

// DialRaw opens one connection, waits for the `connected` frame and starts the reader
// goroutine. Options.Handler receives the server events. Reconnect, resume and outbox
// fields of Options are ignored.
func DialRaw(ctx context.Context, opts Options) (*Conn, error) {
	opts = opts.withDefaults()
	tok := opts.Token
	if opts.TokenFunc != nil {
		var err error
		if tok, err = opts.TokenFunc(ctx); err != nil {
			return nil, fmt.Errorf("client: get token: %w", err)
		}
	}
	c, err := dial(ctx, opts, tok, opts.Handler)
	if err != nil {
		return nil, err
	}
	go func() { _ = c.serve() }() // the error stays readable through Err
	return c, nil
}

// dial connects and reads the hello; the caller runs serve.
func dial(ctx context.Context, o Options, token string, onEvent func(Event)) (*Conn, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("client: parse URL: %w", err)
	}
	if o.DevUserID != "" {
		q := u.Query()
		q.Set("userId", o.DevUserID)
		u.RawQuery = q.Encode()
	}
	h := http.Header{}
	for k, v := range o.Header {
		h[k] = v
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	d := o.Dialer
	d.Header = ws.HandshakeHeaderHTTP(h)
	if d.ReadBufferSize == 0 {
		d.ReadBufferSize = o.ReadBufferSize
	}
	var refusal *HandshakeError
	d.OnStatusError = func(status int, _ []byte, resp io.Reader) {
		refusal = readRefusal(status, resp)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.CommandTimeout)
		defer cancel()
	}
	nc, br, _, err := d.Dial(ctx, u.String())
	if err != nil {
		if refusal != nil {
			return nil, refusal
		}
		var se ws.StatusError
		if errors.As(err, &se) {
			return nil, &HandshakeError{Status: int(se)}
		}
		return nil, fmt.Errorf("client: dial %s: %w", u.Redacted(), err)
	}
	if br == nil {
		br = bufio.NewReaderSize(nc, o.ReadBufferSize)
	} else if br.Size() > o.ReadBufferSize {
		// The handshake buffer holds bytes the server sent right after the
		// upgrade; keep them, but read the rest through a buffer of our size.
		rest, _ := br.Peek(br.Buffered())
		pre := bytes.Clone(rest)
		ws.PutReader(br)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pre), nc), o.ReadBufferSize)
	}
	c := &Conn{
		nc: nc, br: br, log: o.Logger, onEvent: onEvent,
		maxFrame: o.MaxFrame, maxQueue: o.MaxWriteQueue,
		writeTimeout: o.WriteTimeout, cmdTimeout: o.CommandTimeout,
		done: make(chan struct{}),
	}
	if err := c.readHello(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// readRefusal decodes the JSON body of a refused upgrade, best effort.
func readRefusal(status int, resp io.Reader) *HandshakeError {
	he := &HandshakeError{Status: status}
	r, err := http.ReadResponse(bufio.NewReader(resp), nil)
	if err != nil {
		return he
	}
	defer r.Body.Close()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if r.ContentLength > 0 && r.ContentLength < 64<<10 {
		if json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body) == nil {
			he.Code, he.Message = body.Error.Code, body.Error.Message
		}
	}
	return he
}

func (c *Conn) readHello(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetReadDeadline(dl)
	}
	for {
		op, p, err := c.readMessage()
		if err != nil {
			return fmt.Errorf("client: read connected frame: %w", err)
		}
		if op != ws.OpText {
			continue
		}
		var env inEnvelope
		if err := json.Unmarshal(p, &env); err != nil || env.Event != "connected" {
			return fmt.Errorf("client: first frame is not `connected`: %.200s", p)
		}
		if err := json.Unmarshal(env.Data, &c.hello); err != nil {
			return fmt.Errorf("client: decode connected frame: %w", err)
		}
		if c.hello.PingIntervalMs > 0 {
			c.readTimeout = time.Duration(c.hello.PingIntervalMs) * time.Millisecond * 5 / 2
		}
		_ = c.nc.SetReadDeadline(time.Time{})
		return nil
	}
}

// Hello returns the data of the `connected` frame.
func (c *Conn) Hello() Hello { return c.hello }

// ConnectionID is the server's id of this connection.
func (c *Conn) ConnectionID() string { return c.hello.ConnectionID }

// UserID is the authenticated user.
func (c *Conn) UserID() string { return c.hello.UserID }

// Done is closed when the connection has ended; Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (nil while it is up, or after Close).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// NetConn returns the underlying connection (for tests and tuning).
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close sends a normal close frame, waits up to a second for the server's answer and
// closes the socket. It waits for the reader goroutine: do not call it from a handler.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.enqueueLocked(outFrame{op: ws.OpClose, p: ws.NewCloseFrameBody(ws.StatusNormalClosure, "")}, true)
	c.closing = true
	c.mu.Unlock()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		c.nc.Close()
		<-c.done
	}
	return nil
}

// discard ends a connection whose reader never ran.
func (c *Conn) discard() { c.shutdown(ErrClosed) }

// Request sends a command with a fresh integer id and waits for its ack (returning its
// data) or error frame (returning *Error). It fails with ErrDisconnected if the
// connection ends first. Without a deadline in ctx, Options.CommandTimeout applies.
func (c *Conn) Request(ctx context.Context, event string, data any) (json.RawMessage, error) {
	ch := make(chan callResult, 1)
	id, err := c.send(event, data, &call{ch: ch})
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cmdTimeout)
		defer cancel()
	}
	select {
	case r := <-ch:
		return r.data, r.err
	case <-ctx.Done():
		c.forget(id)
		return nil, fmt.Errorf("client: %s: %w", event, ctx.Err())
	}
}

// Go sends a command with a fresh id; fn receives the ack data or the error, on the
// reader goroutine (so it must not block), or ErrDisconnected when the connection
// ends first. fn is never called if Go returns an error. There is no timeout: this
// is for open-loop senders that track their own.
func (c *Conn) Go(event string, data any, fn func(json.RawMessage, error)) error {
	_, err := c.send(event, data, &call{fn: fn})
	return err
}

// Emit sends a command without id: no ack; failures come back as `error` events.
func (c *Conn) Emit(event string, data any) error {
	_, err := c.send(event, data, nil)
	return err
}

func (c *Conn) send(event string, data any, cl *call) (uint64, error) {
	env := outEnvelope{Event: event, Data: data}
	if cl != nil {
		env.ID = c.nextID.Add(1)
	}
	p, err := json.Marshal(env)
	if err != nil {
		return 0, fmt.Errorf("client: encode %s: %w", event, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return 0, fmt.Errorf("client: %s: %w", event, ErrDisconnected)
	}
	if c.queued+len(p) > c.maxQueue {
		return 0, fmt.Errorf("client: %s: %w", event, ErrWriteQueueFull)
	}
	if cl != nil {
		if c.pending == nil {
			c.pending = make(map[uint64]*call)
		}
		c.pending[env.ID] = cl
	}
	c.enqueueLocked(outFrame{op: ws.OpText, p: p}, false)
	return env.ID, nil
}

func (c *Conn) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// enqueueLocked appends a frame and starts the writer if none runs.
func (c *Conn) enqueueLocked(f outFrame, force bool) {
	if c.closing && !force {
		return
	}
	c.queue = append(c.queue, f)
	c.queued += len(f.p)
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// writeLoop drains the queue in batches, one flush per batch, and exits when the
// queue is empty: an idle connection has no writer goroutine.
func (c *Conn) writeLoop() {
	for {
		c.mu.Lock()
		q := c.queue
		c.queue, c.queued = nil, 0
		if len(q) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if err := c.flush(q); err != nil {
			c.log.Debug("client: write failed", "err", err)
			c.nc.Close() // the reader sees it and ends the connection
			c.mu.Lock()
			c.writing, c.closing = false, true
			c.queue, c.queued = nil, 0
			c.mu.Unlock()
			return
		}
	}
}

func (c *Conn) flush(q []outFrame) error {
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(c.nc)
	defer func() {
		bw.Reset(nil)
		writerPool.Put(bw)
	}()
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return err
	}
	for _, f := range q {
		h := ws.Header{Fin: true, OpCode: f.op, Masked: true, Mask: ws.NewMask(), Length: int64(len(f.p))}
		ws.Cipher(f.p, h.Mask, 0) // the payload is ours: mask in place
		if err := ws.WriteHeaderBuffer(bw, h, c.whdr[:]); err != nil {
			return err
		}
		if _, err := bw.Write(f.p); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// readMessage reads one data message (reassembling fragments), answering pings and
// returning a *CloseError on a close frame.
func (c *Conn) readMessage() (ws.OpCode, []byte, error) {
	var (
		msg []byte
		op  ws.OpCode
	)
	for {
		h, err := ws.ReadHeaderBuffer(c.br, c.rhdr[:])
		if err != nil {
			return 0, nil, err
		}
		if h.OpCode.IsControl() && h.Length > 125 || int64(len(msg))+h.Length > c.maxFrame {
			c.mu.Lock()
			c.enqueueLocked(outFrame{op: ws.OpClose, p: ws.NewCloseFrameBody(ws.StatusMessageTooBig, "")}, false)
			c.closing = true
			c.mu.Unlock()
			return 0, nil, ErrFrameTooLarge
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.br, p); err != nil {
			return 0, nil, err
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpPing:
			c.mu.Lock()
			c.enqueueLocked(outFrame{op: ws.OpPong, p: p}, false)
			c.mu.Unlock()
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(p)
			c.mu.Lock()
			if !c.closing {
				c.enqueueLocked(outFrame{op: ws.OpClose, p: ws.NewCloseFrameBody(code, "")}, false)
				c.closing = true
			}
			c.mu.Unlock()
			if code.Empty() {
				code = ws.StatusNoStatusRcvd
			}
			return 0, nil, &CloseError{Code: int(code), Reason: reason}
		case ws.OpContinuation:
			msg = append(msg, p...)
		default:
			op, msg = h.OpCode, p
		}
		if h.Fin {
			return op, msg, nil
		}
	}
}

// serve is the reader loop; it returns when the connection ends, after failing every
// pending request.
func (c *Conn) serve() (err error) {
	defer func() { c.shutdown(err) }()
	for {
		if c.readTimeout > 0 {
			if err := c.nc.SetReadDeadline(time.Now().Add(c.readTimeout)); err != nil {
				return err
			}
		}
		op, p, err := c.readMessage()
		if err != nil {
			return err
		}
		if op != ws.OpText {
			continue
		}
		c.dispatch(p)
	}
}

func (c *Conn) dispatch(p []byte) {
	var env inEnvelope
	if err := json.Unmarshal(p, &env); err != nil {
		c.log.Warn("client: undecodable frame", "err", err, "frame", truncate(p))
		return
	}
	if env.Event == "ack" || env.Event == "error" {
		if id, ok := parseID(env.ID); ok {
			c.mu.Lock()
			cl := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if cl != nil {
				var res callResult
				if env.Event == "ack" {
					res.data = env.Data
				} else {
					res.err = decodeError(env.Data)
				}
				cl.deliver(res)
			}
			return
		}
		if env.Event == "ack" {
			return
		}
	}
	if c.onEvent != nil {
		c.onEvent(Event{Name: env.Event, Data: env.Data})
	}
}

func (cl *call) deliver(r callResult) {
	if cl.fn != nil {
		cl.fn(r.data, r.err)
	} else {
		cl.ch <- r
	}
}

func (c *Conn) shutdown(cause error) {
	c.nc.Close()
	c.mu.Lock()
	wasClosing := c.closing
	c.closing = true
	if c.err == nil {
		c.err = cause
	}
	pend := c.pending
	c.pending = nil
	c.mu.Unlock()
	if wasClosing && isLocalClose(cause) {
		cause = nil
	}
	err := fmt.Errorf("%w: %w", ErrDisconnected, cause)
	if cause == nil {
		err = ErrDisconnected
	}
	for _, cl := range pend {
		cl.deliver(callResult{err: err})
	}
	close(c.done)
}

func isLocalClose(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}

func parseID(raw json.RawMessage) (uint64, bool) {
	if len(raw) == 0 || raw[0] == '"' {
		return 0, false
	}
	id, err := strconv.ParseUint(string(raw), 10, 64)
	return id, err == nil
}

func truncate(p []byte) string {
	if len(p) > 200 {
		return string(p[:200]) + "…"
	}
	return string(p)
}

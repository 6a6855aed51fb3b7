package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Client is a connection to the edge that reconnects by itself, resumes the rooms it
// joined, keeps an outbox of sends and maps acks and error frames to return values.
// See the package documentation for the semantics. All methods are safe for
// concurrent use.
//
// Lock order: Client.mu, then Conn.mu (a Conn never calls back into the Client while
// holding its own lock); subMu is taken alone.
type Client struct {
	opts   Options
	ctx    context.Context // cancelled by Close; bounds dials and backoff waits
	cancel context.CancelFunc
	done   chan struct{} // closed when the run loop ends (or Close without one)
	doneMu sync.Once

	subMu sync.Mutex
	subs  map[string][]*subscription // copy-on-write slices

	mu          sync.Mutex
	started     bool
	closed      bool
	status      Status
	statusErr   error
	conn        *Conn // nil while disconnected
	hello       Hello
	connectedAt time.Time
	resumed     bool // the current connection re-joined every tracked room
	rooms       map[string]*room
	presence    map[string]struct{} // presence subscriptions to renew on reconnect
	outbox      []*outItem          // sends not yet written, in order
	inflight    []*outItem          // sends written on conn, waiting for their ack
	holdUntil   time.Time           // rate_limited: no outbox writes before
	holdTimer   *time.Timer
	token       string
	tokenTimer  *time.Timer
}

type subscription struct{ fn func(json.RawMessage) }

// New returns a client; nothing happens until Connect. Sends made before Connect wait
// in the outbox.
func New(opts Options) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		opts:   opts.withDefaults(),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		status: StatusDisconnected,
	}
}

// Connect opens the first connection and returns its error, if any; a failed first
// attempt may be retried by calling Connect again. Once it succeeds, a background
// loop reconnects with backoff whenever the connection drops, until Close.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.started:
		c.mu.Unlock()
		return ErrAlreadyConnected
	}
	c.started = true
	c.mu.Unlock()
	c.setStatus(StatusConnecting, nil)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { // Close aborts a first dial too
		select {
		case <-c.ctx.Done():
			stop()
		case <-ctx.Done():
		}
	}()
	cn, err := c.dial(ctx)
	if err != nil {
		c.mu.Lock()
		c.started = false
		closed := c.closed
		c.mu.Unlock()
		if closed {
			c.finish() // Close may be waiting for a run loop that never started
		}
		c.setStatus(StatusDisconnected, err)
		return err
	}
	if !c.attach(cn) {
		cn.discard()
		c.finish()
		return ErrClosed
	}
	go c.run(cn)
	return nil
}

func (c *Client) dial(ctx context.Context) (*Conn, error) {
	tok := c.opts.Token
	if c.opts.TokenFunc != nil {
		var err error
		if tok, err = c.opts.TokenFunc(ctx); err != nil {
			return nil, fmt.Errorf("client: get token: %w", err)
		}
	}
	cn, err := dial(ctx, c.opts, tok, c.handleEvent)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.token = tok
	c.mu.Unlock()
	return cn, nil
}

// run is the client's long-lived goroutine: it is the reader of the current
// connection, and between connections it waits and redials.
func (c *Client) run(cn *Conn) {
	defer c.finish()
	attempt := 0
	for {
		err := cn.serve()
		stable := time.Since(c.connectedSince()) >= c.opts.StableAfter
		c.detach(cn, err)
		if c.isClosed() {
			return
		}
		if terminal(err, c.opts.TokenFunc != nil) {
			c.setStatus(StatusError, err)
			return
		}
		if stable {
			attempt = 0
		}
		c.setStatus(StatusDisconnected, err)
		c.opts.Logger.Info("client: disconnected", "err", err, "attempt", attempt)
		for cn = nil; cn == nil; attempt++ {
			delay := c.opts.Backoff.Delay(attempt)
			t := time.NewTimer(delay)
			select {
			case <-c.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			c.setStatus(StatusConnecting, nil)
			cn, err = c.dial(c.ctx)
			if err == nil && !c.attach(cn) {
				cn.discard()
				return
			}
			if err != nil {
				if c.isClosed() {
					return
				}
				if terminal(err, c.opts.TokenFunc != nil) {
					c.setStatus(StatusError, err)
					return
				}
				c.opts.Logger.Info("client: reconnect failed", "err", err, "attempt", attempt, "delay", delay)
				c.setStatus(StatusDisconnected, err)
			}
		}
	}
}

func (c *Client) connectedSince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connectedAt
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// attach makes cn the current connection and starts resuming. It reports false if
// the client was closed meanwhile.
func (c *Client) attach(cn *Conn) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.conn = cn
	c.hello = cn.Hello()
	c.connectedAt = time.Now()
	c.scheduleRefreshLocked()
	c.resumeLocked(cn)
	c.mu.Unlock()
	c.opts.Logger.Debug("client: connected", "connectionId", cn.ConnectionID(), "userId", cn.UserID())
	c.setStatus(StatusConnected, nil)
	return true
}

// detach forgets the dropped connection: rooms wait for the next resume and sends
// written on it go back to the front of the outbox.
func (c *Client) detach(cn *Conn, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != cn {
		return
	}
	c.conn = nil
	c.resumed = false
	for _, r := range c.rooms {
		r.resuming, r.filling = false, false
	}
	var back []*outItem
	for _, it := range c.inflight {
		if !it.abandoned {
			back = append(back, it)
		}
	}
	c.outbox = append(back, c.outbox...)
	c.inflight = nil
	if c.tokenTimer != nil {
		c.tokenTimer.Stop()
		c.tokenTimer = nil
	}
}

// Close ends the connection and the reconnect loop, fails waiting sends with
// ErrClosed and returns once every goroutine of the client has ended. Do not call it
// from a handler (it waits for the reader goroutine).
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.doneIfStarted()
		return nil
	}
	c.closed = true
	cn := c.conn
	started := c.started
	items := append(c.inflight, c.outbox...)
	c.inflight, c.outbox = nil, nil
	if c.tokenTimer != nil {
		c.tokenTimer.Stop()
	}
	if c.holdTimer != nil {
		c.holdTimer.Stop()
	}
	c.mu.Unlock()
	c.cancel()
	if cn != nil {
		cn.Close()
	}
	if started {
		<-c.done
	} else {
		c.finish()
	}
	for _, it := range items {
		it.finish(Message{}, ErrClosed)
	}
	c.setStatus(StatusDisconnected, nil)
	return nil
}

func (c *Client) finish() { c.doneMu.Do(func() { close(c.done) }) }

func (c *Client) doneIfStarted() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return c.done
	}
	ch := make(chan struct{})
	close(ch)
	return ch
}

// Done is closed when the client stops for good: after Close, or after a terminal
// error (Status() == StatusError; Err says why).
func (c *Client) Done() <-chan struct{} { return c.done }

// Status returns the connection status.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Err returns the error behind the last status change (nil when connected).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statusErr
}

func (c *Client) setStatus(s Status, err error) {
	c.mu.Lock()
	if c.closed && s != StatusDisconnected {
		c.mu.Unlock()
		return
	}
	changed := c.status != s
	c.status, c.statusErr = s, err
	c.mu.Unlock()
	if changed && c.opts.OnStatus != nil {
		c.opts.OnStatus(s, err)
	}
}

// ConnectionID is the server's id of the current (or last) connection.
func (c *Client) ConnectionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello.ConnectionID
}

// UserID is the authenticated user, known after the first connection.
func (c *Client) UserID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello.UserID
}

// currentConn returns the connection, or ErrDisconnected / ErrClosed.
func (c *Client) currentConn() (*Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, ErrClosed
	case c.conn == nil:
		return nil, ErrDisconnected
	}
	return c.conn, nil
}

// Request sends a command and waits for its ack data, or returns *Error for an error
// frame. It fails with ErrDisconnected when no connection is up or when it drops
// before the answer: commands are not replayed (use Send for messages, which are).
// Without a deadline in ctx, Options.CommandTimeout applies.
func (c *Client) Request(ctx context.Context, event string, data any) (json.RawMessage, error) {
	cn, err := c.currentConn()
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", event, err)
	}
	return cn.Request(ctx, event, data)
}

// request is Request decoding the ack into out.
func (c *Client) request(ctx context.Context, event string, data, out any) error {
	raw, err := c.Request(ctx, event, data)
	if err != nil {
		return err
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("client: decode %s ack: %w", event, err)
	}
	return nil
}

// On registers fn for a server event; it returns a function that removes it. fn runs
// on the reader goroutine: it must not block nor wait for a request's answer.
// chat-message events of rooms joined with JoinRoom arrive deduplicated, in seq order,
// including the messages recovered after a reconnect or a gap.
func (c *Client) On(event string, fn func(json.RawMessage)) (unsubscribe func()) {
	s := &subscription{fn: fn}
	c.subMu.Lock()
	if c.subs == nil {
		c.subs = make(map[string][]*subscription)
	}
	c.subs[event] = append(c.subs[event][:len(c.subs[event]):len(c.subs[event])], s)
	c.subMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.subMu.Lock()
			defer c.subMu.Unlock()
			old := c.subs[event]
			next := make([]*subscription, 0, len(old))
			for _, o := range old {
				if o != s {
					next = append(next, o)
				}
			}
			if len(next) == 0 {
				delete(c.subs, event)
			} else {
				c.subs[event] = next
			}
		})
	}
}

func (c *Client) emit(ev Event) {
	if c.opts.Handler != nil {
		c.opts.Handler(ev)
	}
	c.subMu.Lock()
	list := c.subs[ev.Name]
	c.subMu.Unlock()
	for _, s := range list {
		s.fn(ev.Data)
	}
}

// handleEvent runs on the reader goroutine for every server event.
func (c *Client) handleEvent(ev Event) {
	switch ev.Name {
	case "chat-message":
		if c.onChatMessage(ev) {
			return
		}
	case "chat-room-history":
		if c.onRoomHistory(ev) {
			return
		}
	}
	c.emit(ev)
}

// isDisconnect reports whether err only says that the connection dropped.
func isDisconnect(err error) bool { return errors.Is(err, ErrDisconnected) }

package client

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/gobwas/ws"
)

// Options configure a Client (New) or a raw connection (DialRaw). Zero values take the
// defaults given on each field.
type Options struct {
	// URL of the native endpoint, e.g. ws://127.0.0.1:8080/ws. Required.
	URL string
	// Token is a static JWT, sent as "Authorization: Bearer". TokenFunc, when set,
	// wins: it is called before every (re)connect and before the current token
	// expires (the new token is sent with auth-refresh).
	Token     string
	TokenFunc func(ctx context.Context) (string, error)
	// DevUserID connects as ?userId=<id> (edges in development mode only).
	DevUserID string
	// Header holds extra handshake headers (Origin, ...).
	Header http.Header

	// Dialer is the gobwas dialer; its Header field is replaced by Token/Header.
	// Set Dialer.NetDial to control the TCP connection (tests use it to kill sockets).
	Dialer ws.Dialer
	// LocalAddr binds outgoing connections to this local IP ("127.0.0.2"), so a load
	// tool can spread over several source addresses. Ignored when Dialer.NetDial is set.
	LocalAddr string

	// Backoff between reconnect attempts (full jitter).
	Backoff Backoff
	// StableAfter resets the backoff once a connection has lived this long. Default 10s.
	StableAfter time.Duration
	// CommandTimeout bounds a request whose context has no deadline. Default 10s.
	CommandTimeout time.Duration
	// WriteTimeout bounds one socket flush. Default 10s.
	WriteTimeout time.Duration
	// RefreshBefore is how long before the token's exp auth-refresh is sent, at most
	// a fifth of the token's remaining lifetime. Default 1 minute.
	RefreshBefore time.Duration

	// Logger receives connection, reconnect and resume logs. Default: discard.
	Logger *slog.Logger

	// OutboxLimit bounds the sends waiting for their ack (queued or in flight).
	// Default 1000.
	OutboxLimit int

	// Handler, when set, receives every server event (not acks) after the client's
	// own processing: chat-message events of tracked rooms arrive deduplicated and in
	// seq order. It runs on the connection's reader goroutine: it must not block and
	// must not wait for a request's answer (hand work to another goroutine).
	Handler func(Event)
	// OnStatus is called on every status change, with the error that caused it (if
	// any). Same rules as Handler.
	OnStatus func(Status, error)

	// MaxFrame bounds a server frame (history pages can be large). Default 8 MiB.
	MaxFrame int64
	// ReadBufferSize is the per-connection read buffer. Default 2048 bytes.
	ReadBufferSize int
	// MaxWriteQueue bounds the bytes waiting to be written per connection.
	// Default 4 MiB.
	MaxWriteQueue int
}

// Backoff is an exponential backoff with full jitter: attempt n waits a uniformly
// random duration in [0, min(Max, Initial·Factor^n)).
type Backoff struct {
	Initial time.Duration // default 250ms
	Max     time.Duration // default 10s
	Factor  float64       // default 2
}

// Delay returns the wait before reconnect attempt n (0-based).
func (b Backoff) Delay(attempt int) time.Duration {
	return time.Duration(rand.Int64N(int64(b.Cap(attempt)) + 1))
}

// Cap returns the upper bound of Delay(attempt).
func (b Backoff) Cap(attempt int) time.Duration {
	d := float64(b.Initial)
	for i := 0; i < attempt && d < float64(b.Max); i++ {
		d *= b.Factor
	}
	return min(time.Duration(d), b.Max)
}

func (o Options) withDefaults() Options {
	if o.Backoff.Initial <= 0 {
		o.Backoff.Initial = 250 * time.Millisecond
	}
	if o.Backoff.Max <= 0 {
		o.Backoff.Max = 10 * time.Second
	}
	if o.Backoff.Max < o.Backoff.Initial {
		o.Backoff.Max = o.Backoff.Initial
	}
	if o.Backoff.Factor < 1 {
		o.Backoff.Factor = 2
	}
	if o.StableAfter <= 0 {
		o.StableAfter = 10 * time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.RefreshBefore <= 0 {
		o.RefreshBefore = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OutboxLimit <= 0 {
		o.OutboxLimit = 1000
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = 8 << 20
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = 2048
	}
	if o.MaxWriteQueue <= 0 {
		o.MaxWriteQueue = 4 << 20
	}
	if o.Dialer.NetDial == nil && o.LocalAddr != "" {
		ip := net.ParseIP(o.LocalAddr)
		var laddr *net.TCPAddr
		if ip != nil {
			laddr = &net.TCPAddr{IP: ip}
		} else if a, err := net.ResolveTCPAddr("tcp", o.LocalAddr); err == nil {
			laddr = a
		}
		if laddr != nil {
			d := &net.Dialer{LocalAddr: laddr}
			o.Dialer.NetDial = d.DialContext
		}
	}
	return o
}

// Status is the state of a Client's connection.
type Status string

// Statuses (same names as the JavaScript client).
const (
	StatusConnecting   Status = "connecting"
	StatusConnected    Status = "connected"
	StatusDisconnected Status = "disconnected"
	// StatusError: the client stopped reconnecting (refused token, policy close,
	// too many connections). Err() says why.
	StatusError Status = "error"
)

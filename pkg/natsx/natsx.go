// Package natsx connects to NATS the way every Talim service should: a named
// connection that reconnects forever with backoff and jitter, logs state changes,
// exposes a connected gauge and drains on shutdown.
package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures Connect.
type Options struct {
	URL      string // one or more comma-separated nats:// URLs, tried in this order
	Name     string // connection name shown in NATS monitoring, e.g. "edge-7f3a"
	User     string
	Password string
	Creds    string // path to a .creds file
	Logger   *slog.Logger
	// Connected, when set, tracks 1 while connected and 0 otherwise.
	Connected prometheus.Gauge
	// ConnectTimeout bounds the first connection attempt (default 10s). The client
	// keeps retrying in the background after that (RetryOnFailedConnect).
	ConnectTimeout time.Duration
}

// Connect dials NATS. The first connection attempt is retried until ctx ends or
// ConnectTimeout passes; afterwards the connection reconnects forever.
func Connect(ctx context.Context, o Options) (*nats.Conn, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	setGauge := func(v float64) {
		if o.Connected != nil {
			o.Connected.Set(v)
		}
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		// Keep the URL order: a service's list starts with its home node (the one in
		// its zone or on its host) and the rest are failover. nats.go shuffles the
		// list unless told not to.
		nats.DontRandomize(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			// Exponential backoff capped at 2s plus jitter added by the client.
			d := 100 * time.Millisecond << min(attempts, 5)
			return min(d, 2*time.Second)
		}),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ReconnectBufSize(8 << 20),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(c *nats.Conn) {
			setGauge(1)
			log.Info("nats connected", "url", c.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			setGauge(0)
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			setGauge(1)
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			setGauge(0)
			log.Info("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("nats async error", "subject", subj, "err", err)
		}),
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", o.URL, err)
	}
	timeout := o.ConnectTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !nc.IsConnected() {
		select {
		case <-wait.Done():
			nc.Close()
			return nil, fmt.Errorf("connect to nats %s: %w", o.URL, errors.Join(wait.Err(), nc.LastError()))
		case <-tick.C:
		}
	}
	setGauge(1)
	return nc, nil
}

// Drain drains nc (finishing in-flight callbacks and flushing publishes) and waits up
// to timeout for it to close.
func Drain(nc *nats.Conn, timeout time.Duration) {
	if nc == nil || nc.IsClosed() {
		return
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(timeout):
		nc.Close()
	}
}

// Publish publishes data to subj with headers h (trace context from
// tracing.Header), or as a plain publish when h is empty: no message struct and no
// header encoding on the untraced path.
func Publish(nc *nats.Conn, subj string, data []byte, h nats.Header) error {
	if len(h) == 0 {
		return nc.Publish(subj, data)
	}
	return nc.PublishMsg(&nats.Msg{Subject: subj, Data: data, Header: h})
}

package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxPerRound bounds the entries one subscription delivers per poll round, so a
// long backlog does not hold a concurrency slot forever.
const maxPerRound = 100

// DispatcherOptions configures a Dispatcher.
type DispatcherOptions struct {
	Store  *Store
	Config Config
	// Owner names this instance in leases (default: random).
	Owner string
	// Now is the clock of schedules, leases and webhook-timestamp (default time.Now).
	Now func() time.Time
	// Backoff is the retry schedule (default DefaultBackoff).
	Backoff Backoff
	// Client sends the requests (default: Config.Timeout, no redirects, no proxy,
	// non-public addresses refused unless Config.AllowPrivate).
	Client *http.Client
	Log    *slog.Logger
}

// Dispatcher delivers outbox entries (see the package documentation for the
// order and multi-instance guarantees).
type Dispatcher struct {
	o   DispatcherOptions
	cfg Config
	log *slog.Logger

	held sync.Map // subscription id -> struct{}: leases this instance claimed
}

// NewDispatcher returns a dispatcher; it does no I/O.
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	cfg := o.Config.withDefaults()
	if o.Owner == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		o.Owner = fmt.Sprintf("d-%x", b)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Backoff.Base == 0 {
		o.Backoff = DefaultBackoff
	}
	if o.Client == nil {
		o.Client = NewClient(cfg)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{o: o, cfg: cfg, log: o.Log}
}

// NewClient returns the HTTP client deliveries use: cfg.Timeout per attempt, no
// redirects followed (a 3xx is a failure), no proxy from the environment, and
// unless cfg.AllowPrivate no connection to a non-public address.
func NewClient(cfg Config) *http.Client {
	cfg = cfg.withDefaults()
	dialer := &net.Dialer{Timeout: cfg.Timeout}
	if !cfg.AllowPrivate {
		dialer.ControlContext = DialControl
	}
	tr := &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: cfg.Timeout,
		MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Run delivers until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	defer d.releaseAll()
	for {
		d.Round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// releaseAll gives up this instance's leases so a restart or another instance
// takes over at once instead of after Config.Lease.
func (d *Dispatcher) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.held.Range(func(k, _ any) bool {
		d.o.Store.release(ctx, k.(string), d.o.Owner)
		d.held.Delete(k)
		return true
	})
}

// Round runs one poll round: every subscription whose lease this instance gets
// delivers its due entries in order, up to Config.Concurrency at once.
func (d *Dispatcher) Round(ctx context.Context) {
	subs, err := d.o.Store.Subscriptions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.WarnContext(ctx, "webhook round", "err", err)
		}
		return
	}
	sem := make(chan struct{}, d.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range subs {
		sem <- struct{}{}
		wg.Add(1)
		go func(sub *Subscription) {
			defer func() { <-sem; wg.Done() }()
			if err := d.drain(ctx, sub); err != nil && ctx.Err() == nil {
				d.log.WarnContext(ctx, "webhook deliveries", "subscription", sub.ID, "err", err)
			}
		}(&subs[i])
	}
	wg.Wait()
}

// drain delivers sub's due entries in seq order and stops at the first that is not
// due or fails (it blocks the subscription until it succeeds or is dead-lettered).
func (d *Dispatcher) drain(ctx context.Context, sub *Subscription) error {
	pending, err := d.o.Store.Pending(ctx, sub.ID)
	if err != nil || len(pending) == 0 {
		return err
	}
	if len(pending) > maxPerRound {
		pending = pending[:maxPerRound]
	}
	for _, e := range pending {
		now := d.o.Now()
		if e.NextAt.After(now) {
			return nil
		}
		// Claim before every attempt: an instance that lost the lease stops here.
		ok, err := d.o.Store.claim(ctx, sub.ID, d.o.Owner, now, d.cfg.Lease)
		if err != nil || !ok {
			return err
		}
		d.held.Store(sub.ID, struct{}{})
		if e.Attempts > 0 && now.Sub(e.CreatedAt) >= d.cfg.MaxAge {
			if err := d.o.Store.bury(ctx, e, now, "max age reached: "+e.LastError); err != nil {
				return err
			}
			continue
		}
		status, retryAfter, derr := d.deliver(ctx, sub, e, now)
		if ctx.Err() != nil {
			return nil // shutting down: the attempt's outcome is retried by whoever runs next
		}
		if derr == nil {
			if err := d.o.Store.delivered(ctx, e.ID); err != nil {
				return err
			}
			continue
		}
		attempts := e.Attempts + 1
		e.Attempts, e.LastError = attempts, derr.Error()
		after := d.o.Now()
		switch {
		case status == http.StatusGone:
			err = d.o.Store.bury(ctx, e, after, "410 Gone: "+derr.Error())
		case attempts >= d.cfg.MaxAttempts:
			err = d.o.Store.bury(ctx, e, after, fmt.Sprintf("%d attempts: %v", attempts, derr))
		case after.Sub(e.CreatedAt) >= d.cfg.MaxAge:
			err = d.o.Store.bury(ctx, e, after, "max age reached: "+derr.Error())
		default:
			wait := max(d.o.Backoff.Delay(attempts), min(retryAfter, time.Hour))
			d.log.DebugContext(ctx, "webhook attempt failed", "subscription", sub.ID, "event", e.EventID,
				"attempt", attempts, "retry_in", wait, "err", derr)
			return d.o.Store.failed(ctx, e.ID, attempts, after.Add(wait), derr.Error())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// errStatus is a non-2xx answer.
type errStatus struct{ code int }

func (e errStatus) Error() string { return "HTTP " + strconv.Itoa(e.code) }

// deliver makes one attempt: the status (0 without an answer), a Retry-After in
// seconds if the receiver sent one, and nil only for a 2xx.
func (d *Dispatcher) deliver(ctx context.Context, sub *Subscription, e Entry, now time.Time) (int, time.Duration, error) {
	keys := sub.activeKeys(now)
	if len(keys) == 0 {
		return 0, 0, errors.New("subscription has no valid signing key")
	}
	body := []byte(e.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Talim-Webhooks/1")
	Sign(req.Header, keys, e.EventID, now, body)
	resp, err := d.o.Client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp.StatusCode, 0, nil
	}
	var ra time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		ra = time.Duration(s) * time.Second
	}
	return resp.StatusCode, ra, errStatus{resp.StatusCode}
}

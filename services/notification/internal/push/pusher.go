package push

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/talim/realtime/pkg/webpush"
)

// Defaults of Config.
const (
	DefaultCollapseInterval = 30 * time.Second
	DefaultLease            = 30 * time.Second
	DefaultPoll             = time.Second
	DefaultMaxAttempts      = 8
	DefaultBaseBackoff      = 2 * time.Second
	DefaultMaxBackoff       = 10 * time.Minute
	DefaultConcurrency      = 16
	DefaultRequestTimeout   = 10 * time.Second
	DefaultTTL              = 24 * time.Hour
	// presenceTimeout bounds one presence query during fanout.
	presenceTimeout = time.Second
	batch           = 256
)

// Config configures a Pusher. Store and VAPID are required.
type Config struct {
	Store    *Store
	VAPID    *webpush.VAPID
	Gate     Gate         // AllowAll when nil
	Presence Presence     // nil: every recipient counts as offline
	Client   *http.Client // NewHTTPClient(Policy) when nil
	Policy   Policy
	Log      *slog.Logger
	// Owner names this instance in leases.
	Owner            string
	CollapseInterval time.Duration
	Lease            time.Duration
	Poll             time.Duration
	MaxAttempts      int
	BaseBackoff      time.Duration
	MaxBackoff       time.Duration
	Concurrency      int
	// NotificationID gives the notification id of a send key and recipient.
	NotificationID func(sendKey, userID string) string
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
	// OnSent, when set, is called after each accepted push (benchmarks, tests).
	OnSent func(j *Job)
}

// Pusher queues and sends pushes. It is safe for concurrent use.
type Pusher struct {
	cfg  Config
	st   *Store
	log  *slog.Logger
	wake chan struct{}
}

// New returns a pusher with defaults filled in.
func New(cfg Config) (*Pusher, error) {
	if cfg.Store == nil || cfg.VAPID == nil {
		return nil, errors.New("push: Store and VAPID are required")
	}
	if cfg.Gate == nil {
		cfg.Gate = AllowAll{}
	}
	if cfg.Client == nil {
		cfg.Client = NewHTTPClient(cfg.Policy)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Owner == "" {
		cfg.Owner = fmt.Sprintf("pusher-%d", rand.Int64())
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.CollapseInterval, DefaultCollapseInterval)
	def(&cfg.Lease, DefaultLease)
	def(&cfg.Poll, DefaultPoll)
	def(&cfg.BaseBackoff, DefaultBaseBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Pusher{cfg: cfg, st: cfg.Store, log: cfg.Log, wake: make(chan struct{}, 1)}, nil
}

// PublicKey is the VAPID public key browsers subscribe with.
func (p *Pusher) PublicKey() string { return p.cfg.VAPID.PublicKey() }

// Store returns the pusher's store.
func (p *Pusher) Store() *Store { return p.st }

func (p *Pusher) now() time.Time { return p.cfg.Now().UTC().Truncate(time.Millisecond) }

func (p *Pusher) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Enqueue durably queues a push of c to those of recipients who are offline when
// the worker fans it out. id makes it idempotent (a retried Send enqueues once).
func (p *Pusher) Enqueue(ctx context.Context, id string, recipients []string, c Content) error {
	if len(recipients) == 0 {
		return nil
	}
	if c.TTLSec <= 0 {
		c.TTLSec = int64(DefaultTTL / time.Second)
	}
	if c.Urgency == "" {
		c.Urgency = webpush.UrgencyNormal
	}
	if err := p.st.InsertFanout(ctx, id, recipients, c, p.now()); err != nil {
		return err
	}
	p.poke()
	return nil
}

// Run sends due jobs until ctx ends. Several instances may run on one database.
func (p *Pusher) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Poll)
	defer t.Stop()
	lastIdle := p.now()
	for {
		n := p.RunOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if now := p.now(); now.Sub(lastIdle) > time.Minute {
			lastIdle = now
			if _, err := p.st.DeleteIdle(ctx, now.Add(-p.cfg.CollapseInterval), 1000); err != nil {
				p.log.Warn("push: delete idle jobs", "err", err)
			}
		}
		if n == batch {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wake:
		}
	}
}

// RunOnce claims and processes the jobs due now; it returns how many it found.
func (p *Pusher) RunOnce(ctx context.Context) int {
	now := p.now()
	jobs, err := p.st.Due(ctx, now, batch)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("push: list due jobs", "err", err)
		}
		return 0
	}
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range jobs {
		j := &jobs[i]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if ok, err := p.st.Claim(ctx, j, p.cfg.Owner, now, p.cfg.Lease); err != nil || !ok {
				return
			}
			// The lease bounds the work: past it another instance may take the job.
			jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Lease)
			defer cancel()
			var err error
			if j.Kind == KindFanout {
				err = p.fanout(jctx, j)
			} else {
				err = p.deliver(jctx, j)
			}
			if err != nil {
				p.log.Warn("push: job failed; retried after its lease", "job", j.ID, "err", err)
			}
		})
	}
	wg.Wait()
	return len(jobs)
}

// fanout turns a fanout job into deliver jobs for the offline recipients.
func (p *Pusher) fanout(ctx context.Context, j *Job) error {
	now := p.now()
	if now.After(j.ExpiresAt) {
		return p.st.Done(ctx, j)
	}
	var online map[string]bool
	if p.cfg.Presence != nil {
		var err error
		if online, err = p.cfg.Presence.Online(ctx, j.Recipients); err != nil {
			// Pushing to a connected user is a duplicate; not pushing to an
			// offline one loses the message: push to all.
			p.log.Info("push: presence did not answer; pushing to every recipient", "err", err)
			online = nil
		}
	}
	// Recipients in parallel (bounded): each costs a few point reads and writes.
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, u := range j.Recipients {
		if online[u] {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := p.fanoutTo(ctx, u, j, now)
			if err != nil {
				mu.Lock()
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr // the lease runs out and the fanout is done again
	}
	if err := p.st.Done(ctx, j); err != nil {
		return err
	}
	p.poke()
	return nil
}

func (p *Pusher) fanoutTo(ctx context.Context, u string, j *Job, now time.Time) error {
	subs, err := p.st.Subscriptions(ctx, u)
	if err != nil {
		return err
	}
	for _, s := range subs {
		if err := p.st.UpsertDeliver(ctx, u, s.ID, j.Content, now, p.cfg.CollapseInterval); err != nil {
			return err
		}
	}
	return nil
}

// Payload is the JSON a push carries to the service worker
// (services/edge/web/static/talim-sw.js).
type Payload struct {
	Kind           string `json:"kind"`
	Title          string `json:"title"`
	Body           string `json:"body"`
	Count          int    `json:"count"`
	RoomID         string `json:"roomId,omitempty"`
	NotificationID string `json:"notificationId,omitempty"`
	Tag            string `json:"tag"`
	URL            string `json:"url"`
}

func (p *Pusher) payload(j *Job) ([]byte, error) {
	c := j.Content
	pl := Payload{Kind: c.Kind, Title: c.Title, Body: c.Body, Count: j.Count, RoomID: c.RoomID, Tag: c.Topic}
	switch {
	case c.RoomID != "":
		pl.URL = "/?room=" + urlQuery(c.RoomID)
	case c.SendKey != "" && p.cfg.NotificationID != nil && j.Count <= 1:
		pl.NotificationID = p.cfg.NotificationID(c.SendKey, j.UserID)
		pl.URL = "/?inbox=" + urlQuery(pl.NotificationID)
	default:
		pl.URL = "/?inbox="
	}
	for range 4 { // shorten the body until it fits one message
		b, err := json.Marshal(pl)
		if err != nil {
			return nil, fmt.Errorf("encode push payload: %w", err)
		}
		if len(b) <= webpush.MaxPayload {
			return b, nil
		}
		pl.Body = truncate(pl.Body, len(pl.Body)/2)
		pl.Title = truncate(pl.Title, 200)
	}
	return nil, webpush.ErrTooLarge
}

// deliver sends one deliver job and records the outcome.
func (p *Pusher) deliver(ctx context.Context, j *Job) error {
	now := p.now()
	if now.After(j.ExpiresAt) {
		return p.st.Drop(ctx, j)
	}
	allowed, notBefore, err := p.cfg.Gate.Decide(ctx, j.UserID, Channel, j.Content.Category, j.Content.Urgent, now)
	switch {
	case err != nil:
		return p.retry(ctx, j, now, 0, false, fmt.Errorf("gate: %w", err))
	case !allowed:
		return p.st.Drop(ctx, j)
	case notBefore.After(now):
		return p.st.Delay(ctx, j, now, notBefore)
	}
	subs, err := p.st.Subscriptions(ctx, j.UserID)
	if err != nil {
		return p.retry(ctx, j, now, 0, false, err)
	}
	var sub *Sub
	for i := range subs {
		if subs[i].ID == j.SubID {
			sub = &subs[i]
		}
	}
	if sub == nil {
		return p.st.Drop(ctx, j)
	}
	body, err := p.payload(j)
	if err != nil {
		p.log.Error("push: payload", "job", j.ID, "err", err)
		return p.st.Drop(ctx, j)
	}
	key, kerr := webpush.DecodeKey(sub.P256dh)
	auth, aerr := webpush.DecodeKey(sub.Auth)
	if kerr != nil || aerr != nil {
		return p.st.Drop(ctx, j)
	}
	msg := webpush.Message{Payload: body, TTL: j.ExpiresAt.Sub(now), Urgency: j.Content.Urgency, Topic: topicHeader(j.Content.Topic)}
	req, err := p.cfg.VAPID.NewRequest(ctx, webpush.Subscription{Endpoint: sub.Endpoint, P256dh: key, Auth: auth}, msg, now)
	if err != nil {
		p.log.Warn("push: build request", "job", j.ID, "err", err)
		return p.st.Drop(ctx, j)
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return p.retry(ctx, j, now, 0, false, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		if err := p.st.Sent(ctx, j, now, p.cfg.CollapseInterval); err != nil {
			return err
		}
		if p.cfg.OnSent != nil {
			p.cfg.OnSent(j)
		}
		return nil
	case code == http.StatusNotFound || code == http.StatusGone:
		p.log.Info("push: subscription expired; removing it", "user", j.UserID, "status", code)
		if err := p.st.RemoveSubscription(ctx, j.UserID, j.SubID); err != nil {
			return err
		}
		return p.st.Drop(ctx, j)
	case code == http.StatusTooManyRequests || code >= 500:
		ra, ok := webpush.RetryAfter(resp.Header, now)
		return p.retry(ctx, j, now, ra, ok, fmt.Errorf("push service answered %d", code))
	default: // 400, 403 (key mismatch), 413: sending again cannot help
		p.log.Warn("push: refused", "user", j.UserID, "status", code)
		return p.st.Drop(ctx, j)
	}
}

// retry schedules j again: after retryAfter when the push service gave one (capped
// at MaxBackoff), else after BaseBackoff * 2^attempts with jitter; past MaxAttempts
// the job is dropped.
func (p *Pusher) retry(ctx context.Context, j *Job, now time.Time, retryAfter time.Duration, given bool, cause error) error {
	if j.Attempts+1 >= p.cfg.MaxAttempts {
		p.log.Warn("push: giving up", "job", j.ID, "attempts", j.Attempts+1, "err", cause)
		return p.st.Drop(ctx, j)
	}
	d := p.Backoff(j.Attempts)
	if given {
		d = min(max(retryAfter, time.Second), p.cfg.MaxBackoff)
	}
	p.log.Info("push: retrying", "job", j.ID, "in", d, "err", cause)
	return p.st.Retry(ctx, j, now.Add(d), false)
}

// Backoff is the wait before retry number attempts+1: BaseBackoff * 2^attempts,
// capped at MaxBackoff, plus up to 20 % jitter.
func (p *Pusher) Backoff(attempts int) time.Duration {
	d := p.cfg.BaseBackoff << min(attempts, 20)
	if d <= 0 || d > p.cfg.MaxBackoff {
		d = p.cfg.MaxBackoff
	}
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

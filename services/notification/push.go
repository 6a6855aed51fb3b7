package notification

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/pkg/webpush"
	"github.com/talim/realtime/services/notification/internal/core"
	"github.com/talim/realtime/services/notification/internal/push"
	"github.com/talim/realtime/services/notification/internal/store"
)

// PushConfig configures Web Push (docs/operations.md "Web Push"). An empty
// VAPIDPrivateKey turns it off: the events answer that push is not configured.
type PushConfig struct {
	VAPIDPrivateKey string
	VAPIDSubject    string
	// AllowLoopback accepts http:// endpoints on loopback and local addresses (tests,
	// talim dev); never in production.
	AllowLoopback    bool
	CollapseInterval time.Duration
	Concurrency      int
	// Gate decides whether and when to push (preferences, quiet hours); AllowAll
	// when nil. Set by the caller, not from the environment.
	Gate push.Gate
	// OnSent is called after each push a push service accepted (benchmarks).
	OnSent func()
}

// Gate is the interface a preferences/quiet-hours implementation provides.
type Gate = push.Gate

// Register binds the configuration to flags and environment variables.
func (c *PushConfig) Register(s *config.Set) {
	s.String(&c.VAPIDPrivateKey, "push-vapid-private-key", "TALIM_PUSH_VAPID_PRIVATE_KEY", "",
		"Web Push VAPID private key, base64url (`talim vapid-keys` prints a pair); empty: Web Push off")
	s.String(&c.VAPIDSubject, "push-vapid-subject", "TALIM_PUSH_VAPID_SUBJECT", "",
		"Web Push VAPID contact, a mailto: or https: URI (required with a key)")
	s.Bool(&c.AllowLoopback, "push-allow-loopback", "TALIM_PUSH_ALLOW_LOOPBACK", false,
		"accept http:// push endpoints on loopback and private addresses (tests and development only)")
	s.Duration(&c.CollapseInterval, "push-collapse-interval", "TALIM_PUSH_COLLAPSE_INTERVAL", push.DefaultCollapseInterval,
		"at most one push per room or category per browser in this interval; the next carries a count")
	s.Int(&c.Concurrency, "push-concurrency", "TALIM_PUSH_CONCURRENCY", push.DefaultConcurrency, 1,
		"push requests in flight per instance")
}

// Validate checks the configuration; errors name the variable.
func (c PushConfig) Validate() error {
	if c.VAPIDPrivateKey == "" {
		return nil
	}
	if _, err := webpush.NewVAPID(c.VAPIDPrivateKey, c.VAPIDSubject); err != nil {
		return config.Errorf("TALIM_PUSH_VAPID_PRIVATE_KEY", "%v (and TALIM_PUSH_VAPID_SUBJECT)", err)
	}
	if c.CollapseInterval < 0 {
		return config.Errorf("TALIM_PUSH_COLLAPSE_INTERVAL", "want a positive duration")
	}
	return nil
}

// GenerateVAPIDKeys returns a new VAPID key pair, base64url (`talim vapid-keys`).
func GenerateVAPIDKeys() (private, public string, err error) { return webpush.GenerateVAPIDKeys() }

// pushHolder gives the gRPC API the pusher once Run started it.
type pushHolder struct{ p atomic.Pointer[push.Pusher] }

func (h *pushHolder) api() *push.GRPC { return push.NewGRPC(h.p.Load) }

// pushRun is the running Web Push part; its zero value (push off) is usable.
type pushRun struct {
	p    *push.Pusher
	sub  *nats.Subscription
	stop func()
}

// startPush starts the push worker and chat subscription when a key is configured.
func (s *Service) startPush(ctx context.Context, rt *service.Runtime, gate push.Gate) (*pushRun, error) {
	c := s.cfg.Push
	if c.VAPIDPrivateKey == "" {
		return &pushRun{stop: func() {}}, nil
	}
	v, err := webpush.NewVAPID(c.VAPIDPrivateKey, c.VAPIDSubject)
	if err != nil {
		return nil, err
	}
	st := push.NewStore(rt.DB)
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = st.EnsureIndexes(ictx)
	cancel()
	if err != nil {
		return nil, err
	}
	if c.Gate != nil {
		gate = c.Gate // a test's or an embedder's own
	}
	cfg := push.Config{Store: st, VAPID: v, Gate: gate, Presence: push.NATSPresence{NC: rt.NC, Timeout: time.Second},
		Policy: push.Policy{AllowLoopbackHTTP: c.AllowLoopback}, Log: rt.Log.With("part", "push"),
		CollapseInterval: c.CollapseInterval, Concurrency: c.Concurrency, NotificationID: core.NotificationIDFor}
	if c.OnSent != nil {
		cfg.OnSent = func(*push.Job) { c.OnSent() }
	}
	p, err := push.New(cfg)
	if err != nil {
		return nil, err
	}
	sub, err := p.SubscribeChat(rt.NC)
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(wctx) })
	s.push.p.Store(p)
	rt.Log.Info("web push on", "vapidPublicKey", p.PublicKey())
	return &pushRun{p: p, sub: sub, stop: func() {
		s.push.p.Store(nil)
		_ = sub.Unsubscribe()
		stop()
		wg.Wait()
	}}, nil
}

// onStored queues the push of a stored send (notify.Options.OnStored).
func (r *pushRun) onStored(ctx context.Context, send *store.Send) error {
	if r.p == nil {
		return nil
	}
	ct := send.Content
	c := push.Content{Kind: "notification", Category: ct.Category, Title: ct.Title, Body: ct.Body, SendKey: send.Key,
		Topic: "n:" + ct.Category, Urgency: urgency(ct.Priority), TTLSec: int64(push.DefaultTTL / time.Second)}
	if ct.ExpiresAt != nil {
		c.TTLSec = max(int64(time.Until(*ct.ExpiresAt)/time.Second), 1)
	}
	if err := r.p.Enqueue(ctx, "pf_"+send.SendID, send.Recipients, c); err != nil {
		return fmt.Errorf("queue push: %w", err)
	}
	return nil
}

func urgency(priority string) string {
	switch priority {
	case "high":
		return webpush.UrgencyHigh
	case "low":
		return webpush.UrgencyLow
	}
	return webpush.UrgencyNormal
}

func (r *pushRun) registerCommands(srv *command.Server) {
	if r.p != nil {
		r.p.RegisterCommands(srv)
		return
	}
	push.RegisterDisabled(srv)
}

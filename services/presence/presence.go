package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/config"
	pkgrecords "github.com/talim/realtime/pkg/records"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/pkg/subject"
	"github.com/talim/realtime/pkg/webhook"
	"github.com/talim/realtime/services/presence/internal/core"
	"github.com/talim/realtime/services/presence/internal/handler"
	"github.com/talim/realtime/services/presence/internal/records"
	"github.com/talim/realtime/services/presence/internal/state"
	"github.com/talim/realtime/services/presence/internal/store"
	"github.com/talim/realtime/services/presence/internal/visibility"
	"github.com/talim/realtime/services/presence/internal/watch"
)

// Visibility policies (TALIM_PRESENCE_VISIBILITY).
const (
	VisibilitySharedRoom = visibility.PolicySharedRoom
	VisibilityAll        = visibility.PolicyAll
)

// Config configures the presence service.
type Config struct {
	NATS      service.NATS
	Mongo     service.Mongo
	AdminAddr string

	// Grace is how long a user whose last connection closed still counts as online,
	// so a quick reconnect causes no offline event.
	Grace time.Duration
	// Heartbeat is the edges' heartbeat interval (must match the edges'
	// TALIM_PRESENCE_HEARTBEAT; a heartbeat's own interval_ms wins when present). An
	// edge not heard from for two intervals is expired.
	Heartbeat time.Duration
	// Visibility is shared-room (default) or all.
	Visibility string
	// VisibilityTTL bounds how long a shared-rooms answer from chat is cached.
	VisibilityTTL time.Duration
	// SharedRoomsTimeout bounds one shared-rooms request to chat.
	SharedRoomsTimeout time.Duration
	// MaxSubscriptions is the number of users one connection may watch.
	MaxSubscriptions int
}

// Register binds the configuration to flags and environment variables.
func (c *Config) Register(s *config.Set) {
	c.NATS.Register(s)
	c.Mongo.Register(s)
	s.Addr(&c.AdminAddr, "admin-addr", "TALIM_ADMIN_ADDR", ":9100", "admin HTTP address (/healthz, /readyz, /metrics)")
	s.Duration(&c.Grace, "presence-grace", "TALIM_PRESENCE_GRACE", 5*time.Second, "how long a user stays online after their last connection closed")
	s.Duration(&c.Heartbeat, "presence-heartbeat", "TALIM_PRESENCE_HEARTBEAT", 10*time.Second, "edge heartbeat interval (same value as the edges'); an edge silent for two intervals is expired")
	s.String(&c.Visibility, "presence-visibility", "TALIM_PRESENCE_VISIBILITY", VisibilitySharedRoom, "whose presence a user sees: shared-room or all")
	s.Duration(&c.VisibilityTTL, "presence-visibility-ttl", "TALIM_PRESENCE_VISIBILITY_TTL", 30*time.Second, "how long a shared-rooms answer from chat is cached")
	s.Duration(&c.SharedRoomsTimeout, "presence-shared-rooms-timeout", "TALIM_PRESENCE_SHARED_ROOMS_TIMEOUT", time.Second, "timeout of one shared-rooms request to chat")
	s.Int(&c.MaxSubscriptions, "presence-max-subscriptions", "TALIM_PRESENCE_MAX_SUBSCRIPTIONS", 200, 1, "presence subscriptions per connection")
}

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	var errs []error
	if c.Visibility != VisibilitySharedRoom && c.Visibility != VisibilityAll {
		errs = append(errs, config.Errorf("TALIM_PRESENCE_VISIBILITY", "%q: want shared-room or all", c.Visibility))
	}
	for _, d := range []struct {
		env string
		v   time.Duration
	}{
		{"TALIM_PRESENCE_GRACE", c.Grace}, {"TALIM_PRESENCE_HEARTBEAT", c.Heartbeat},
		{"TALIM_PRESENCE_VISIBILITY_TTL", c.VisibilityTTL}, {"TALIM_PRESENCE_SHARED_ROOMS_TIMEOUT", c.SharedRoomsTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, config.Errorf(d.env, "want a positive duration, got %s", d.v))
		}
	}
	if c.MaxSubscriptions < 1 {
		errs = append(errs, config.Errorf("TALIM_PRESENCE_MAX_SUBSCRIPTIONS", "want at least 1, got %d", c.MaxSubscriptions))
	}
	return errors.Join(errs...)
}

// Service is a running presence service.
type Service struct {
	cfg   Config
	log   *slog.Logger
	rt    *service.Runtime
	ready chan struct{}

	watches *watch.Sets
}

// QueryRequest is the JSON request on talim.presence.v1.query (see the package doc).
type QueryRequest = handler.QueryRequest

// QueryResponse answers a QueryRequest.
type QueryResponse = handler.QueryResponse

// New validates cfg and returns a service; it does no I/O.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: log, ready: make(chan struct{}), watches: watch.New()}, nil
}

// Ready is closed once the service serves requests.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// AdminAddr is the bound admin address (after Ready).
func (s *Service) AdminAddr() string { return s.rt.Admin.Addr() }

// Run connects, serves until ctx ends, then shuts down gracefully.
func (s *Service) Run(ctx context.Context) error {
	rt, err := service.StartRuntime(ctx, service.RuntimeOptions{
		Name: "presence", NATS: s.cfg.NATS, Mongo: &s.cfg.Mongo, AdminAddr: s.cfg.AdminAddr, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("start presence: %w", err)
	}
	s.rt = rt
	s.log = rt.Log
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rt.Close(sctx)
	}()
	tracker := state.New(state.Config{Grace: s.cfg.Grace, Heartbeat: s.cfg.Heartbeat}, time.Now())
	st := store.New(rt.DB)
	writer := store.NewWriter(st, s.log, 16384)

	// Edge events and the replicas' internal events share one channel: a channel
	// subscription is fed by the connection's reader in arrival order, so an edge's
	// connection events and heartbeats are applied in the order it published them.
	events := make(chan *nats.Msg, 65536)
	var subs []*nats.Subscription
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
	for _, subj := range handler.Subjects {
		sub, err := rt.NC.ChanSubscribe(subj, events)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		subs = append(subs, sub)
	}
	if err := rt.NC.Flush(); err != nil {
		return fmt.Errorf("flush subscriptions: %w", err)
	}
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	statuses, err := st.Statuses(lctx)
	lcancel()
	if err != nil {
		return fmt.Errorf("start presence: %w", err)
	}
	for _, status := range statuses {
		tracker.LoadStatus(status.UserID, status.Status, status.At.UnixMilli())
	}

	var vis visibility.Checker
	switch s.cfg.Visibility {
	case VisibilityAll:
		vis = visibility.All{}
	default:
		sr := visibility.NewSharedRooms(rt.NC, s.cfg.SharedRoomsTimeout, s.cfg.VisibilityTTL)
		vis = sr
		sub, err := rt.NC.Subscribe(subject.ChatMembership+">", func(*nats.Msg) { sr.Invalidate() })
		if err != nil {
			return fmt.Errorf("subscribe membership: %w", err)
		}
		subs = append(subs, sub)
	}
	hooks := core.NewHookQueue(webhook.NewProducer(webhook.NewStore(rt.DB), webhook.DefaultRefresh), s.log)
	c := core.New(core.Options{
		NC: rt.NC, InstanceID: rt.InstanceID, Logger: s.log, Registry: rt.Admin.Registry(),
		Tracker: tracker, Watches: s.watches, Visibility: vis, Store: st, Writer: writer,
		MaxSubscriptions: s.cfg.MaxSubscriptions, Hooks: hooks,
	})
	h := handler.New(c, s.log)
	qsub, err := rt.NC.QueueSubscribe(subject.PresenceQuery, "presence", h.ServeQuery)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subject.PresenceQuery, err)
	}
	subs = append(subs, qsub)
	rsubs, err := pkgrecords.Serve(rt.NC, "presence", records.New(rt.DB), s.log) // docs/safeguarding.md
	if err != nil {
		return fmt.Errorf("start presence: %w", err)
	}
	subs = append(subs, rsubs...)

	cmds := command.New(rt.NC, command.Options{Service: "presence", Logger: s.log, Registerer: rt.Admin.Registry(),
		Unavailable: []error{store.ErrUnavailable}})
	h.Register(cmds)
	if err := cmds.Start(); err != nil {
		return err
	}

	if err := rt.NC.Flush(); err != nil { // subscriptions are live before we say ready
		return fmt.Errorf("flush subscriptions: %w", err)
	}

	loopCtx, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); h.RunEvents(loopCtx, events) }()
	writerCtx, stopWriter := context.WithCancel(context.Background())
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); writer.Run(writerCtx, 2*time.Second) }()
	hooksDone := make(chan struct{})
	go func() { defer close(hooksDone); hooks.Run(writerCtx) }()

	rt.Started()
	close(s.ready)
	s.log.Info("presence ready", "admin", rt.Admin.Addr(), "visibility", s.cfg.Visibility,
		"grace", s.cfg.Grace, "heartbeat", s.cfg.Heartbeat, "statuses", len(statuses))
	<-ctx.Done()

	rt.Admin.SetDraining()
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cmds.Stop(sctx)
	stopLoop()
	<-loopDone
	stopWriter()
	<-writerDone
	<-hooksDone
	return nil
}

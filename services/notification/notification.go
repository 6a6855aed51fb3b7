// Package notification is the notification service: the NotificationService gRPC API, the per-user in-app inbox in MongoDB and live delivery through the per-user NATS subjects (docs/protocol.md "Notifications").
package notification

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/grpcx"
	"github.com/talim/realtime/pkg/logging"
	pkgrecords "github.com/talim/realtime/pkg/records"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/pkg/webhook"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	webhookv1 "github.com/talim/realtime/proto/talim/webhook/v1"
	"github.com/talim/realtime/services/notification/internal/core"
	"github.com/talim/realtime/services/notification/internal/grpcapi"
	"github.com/talim/realtime/services/notification/internal/handler"
	"github.com/talim/realtime/services/notification/internal/reach"
	"github.com/talim/realtime/services/notification/internal/records"
	"github.com/talim/realtime/services/notification/internal/store"
)

// Config configures the notification service.
type Config struct {
	NATS      service.NATS
	Mongo     service.Mongo
	AdminAddr string
	// GRPCAddr is where the gRPC API listens; empty means the caller registers the
	// API on its own server with RegisterGRPC (talim dev serves both APIs on one port).
	GRPCAddr string
	// ServiceToken authenticates gRPC callers.
	ServiceToken string
	// GRPCTLS optionally serves the own gRPC server over TLS or mTLS.
	GRPCTLS grpcx.TLS
	// CleanupInterval is how often expired notifications are deleted.
	CleanupInterval time.Duration
	// Webhooks configures the WebhookService and dispatcher this service hosts
	// (docs/webhooks.md).
	Webhooks webhook.Config
	// Push configures Web Push (docs/operations.md "Web Push").
	Push PushConfig
	// UrgentRoles may send urgent notifications (SendRequest.sender_role); empty:
	// any caller with the service token.
	UrgentRoles []string
	// Digest configures email digests.
	Digest DigestConfig
}

// Register binds the configuration to flags and environment variables.
func (c *Config) Register(s *config.Set) {
	c.NATS.Register(s)
	c.Mongo.Register(s)
	s.Addr(&c.AdminAddr, "admin-addr", "TALIM_ADMIN_ADDR", ":9100", "admin HTTP address (/healthz, /readyz, /metrics)")
	grpcx.RegisterListen(s, &c.GRPCAddr, &c.ServiceToken, &c.GRPCTLS)
	s.Duration(&c.CleanupInterval, "notification-cleanup-interval", "TALIM_NOTIFICATION_CLEANUP_INTERVAL", time.Minute,
		"how often expired notifications are deleted")
	c.Webhooks.Register(s)
	c.Push.Register(s)
	s.List(&c.UrgentRoles, "notification-urgent-roles", "TALIM_NOTIFICATION_URGENT_ROLES", "",
		"sender roles allowed to send urgent notifications, comma-separated (empty: any caller with the service token)")
	c.Digest.Register(s)
}

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	if err := grpcx.ValidateListen(c.GRPCAddr, c.ServiceToken, c.GRPCTLS); err != nil {
		return err
	}
	if c.CleanupInterval < 0 {
		return config.Errorf("TALIM_NOTIFICATION_CLEANUP_INTERVAL", "want a positive duration")
	}
	if err := c.Webhooks.Validate(); err != nil {
		return err
	}
	if err := c.Push.Validate(); err != nil {
		return err
	}
	return c.Digest.Validate()
}

// Service is a running notification service.
type Service struct {
	cfg   Config
	log   *slog.Logger
	rt    *service.Runtime
	api   *grpcapi.Server
	hooks *webhook.API
	push  *pushHolder
	reach *reach.API
	ready chan struct{}

	mu         sync.Mutex
	grpcAddr   string
	digestAddr string
}

// New validates cfg and returns a service; it does no I/O.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = logging.Discard()
	}
	if cfg.CleanupInterval == 0 {
		cfg.CleanupInterval = time.Minute
	}
	return &Service{cfg: cfg, log: log, api: grpcapi.New(log), hooks: webhook.NewAPI(cfg.Webhooks, nil, log),
		push: &pushHolder{}, reach: reach.NewAPI(log), ready: make(chan struct{})}, nil
}

// RegisterGRPC registers NotificationService, WebhookService and ReachService on
// gs. It may be called before Run; calls return Unavailable until Run has
// connected to NATS and the store.
func (s *Service) RegisterGRPC(gs *grpc.Server) {
	notificationv1.RegisterNotificationServiceServer(gs, s.api)
	webhookv1.RegisterWebhookServiceServer(gs, s.hooks)
	notificationv1.RegisterPushServiceServer(gs, s.push.api())
	notificationv1.RegisterReachServiceServer(gs, s.reach)
}

// DigestAddr is the bound address of the unsubscribe endpoint (after Ready), empty
// when digests are off.
func (s *Service) DigestAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.digestAddr
}

// Ready is closed once the service serves requests.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// AdminAddr is the bound admin address (after Ready).
func (s *Service) AdminAddr() string { return s.rt.Admin.Addr() }

// GRPCAddr is the bound address of the service's own gRPC server (after Ready),
// empty when Config.GRPCAddr is empty.
func (s *Service) GRPCAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grpcAddr
}

// Run connects, serves until ctx ends, then shuts down gracefully.
func (s *Service) Run(ctx context.Context) error {
	rt, err := service.StartRuntime(ctx, service.RuntimeOptions{
		Name: "notification", NATS: s.cfg.NATS, Mongo: &s.cfg.Mongo, AdminAddr: s.cfg.AdminAddr, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("start notification: %w", err)
	}
	s.rt = rt
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rt.Close(sctx)
	}()

	st := store.New(rt.DB)
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ttlErr, err := st.EnsureIndexes(ictx)
	cancel()
	if err != nil {
		return fmt.Errorf("start notification: %w", err)
	}
	if ttlErr != nil {
		rt.Log.Info("no TTL index on notifications.expiresAt; the cleanup loop deletes expired notifications", "reason", ttlErr)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	rr, err := startReach(rctx, s.cfg.Digest, rt.DB, rt.NC, st, rt.InstanceID, rt.Log)
	cancel()
	if err != nil {
		return fmt.Errorf("start notification: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rr.close(sctx)
	}()
	s.mu.Lock()
	s.digestAddr = rr.addr
	s.mu.Unlock()
	// Pushes ask the preferences and quiet hours (reach) whether and when to go.
	pusher, err := s.startPush(ctx, rt, rr.gate)
	if err != nil {
		return fmt.Errorf("start notification: %w", err)
	}
	hooks := webhook.NewStore(rt.DB)
	ictx, cancel = context.WithTimeout(ctx, 30*time.Second)
	err = hooks.EnsureIndexes(ictx)
	cancel()
	if err != nil {
		return fmt.Errorf("start notification: %w", err)
	}
	producer := webhook.NewProducer(hooks, s.cfg.Webhooks.Refresh)
	s.hooks.SetProducer(producer)
	c := core.New(core.Options{Store: st, NC: rt.NC, Log: rt.Log, Metrics: core.NewMetrics(rt.Admin.Registry()),
		Webhooks: producer, OnStored: pusher.onStored, UrgentRoles: s.cfg.UrgentRoles})

	cmds := command.New(rt.NC, command.Options{Service: "notification", Logger: rt.Log, Registerer: rt.Admin.Registry()})
	handler.New(c).Register(cmds)
	pusher.registerCommands(cmds)
	rr.svc.RegisterCommands(cmds)
	if err := cmds.Start(); err != nil {
		return fmt.Errorf("start notification: %w", err)
	}
	recSubs, err := pkgrecords.Serve(rt.NC, "notification", records.New(rt.DB), rt.Log) // docs/safeguarding.md
	if err != nil {
		return fmt.Errorf("start notification: %w", err)
	}
	defer func() {
		for _, sub := range recSubs {
			_ = sub.Unsubscribe()
		}
	}()
	s.api.SetCore(c)
	s.hooks.SetStore(hooks)
	s.reach.SetService(rr.svc)

	var gs *grpcx.Server
	var gerr <-chan error
	if s.cfg.GRPCAddr != "" {
		if gs, err = grpcx.Serve(grpcx.Options{ServiceToken: s.cfg.ServiceToken, Logger: rt.Log, TLS: s.cfg.GRPCTLS},
			s.cfg.GRPCAddr, notificationv1.NotificationService_ServiceDesc.ServiceName, s.RegisterGRPC); err != nil {
			return fmt.Errorf("start notification: %w", err)
		}
		gs.MarkServing(webhookv1.WebhookService_ServiceDesc.ServiceName, notificationv1.PushService_ServiceDesc.ServiceName,
			notificationv1.ReachService_ServiceDesc.ServiceName)
		s.mu.Lock()
		s.grpcAddr = gs.Addr()
		s.mu.Unlock()
		gerr = gs.Errors()
	}

	cleanupCtx, stopCleanup := context.WithCancel(context.Background())
	cleanupDone := make(chan struct{})
	go func() { defer close(cleanupDone); c.RunCleanup(cleanupCtx, s.cfg.CleanupInterval) }()
	dispatchDone := make(chan struct{})
	go func() {
		defer close(dispatchDone)
		if s.cfg.Webhooks.Dispatch {
			_ = webhook.NewDispatcher(webhook.DispatcherOptions{Store: hooks, Config: s.cfg.Webhooks,
				Owner: rt.InstanceID, Log: rt.Log.With("component", "webhooks")}).Run(cleanupCtx)
		}
	}()

	rt.Started()
	close(s.ready)
	rt.Log.Info("notification ready", "admin", rt.Admin.Addr(), "grpc", s.GRPCAddr())
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-gerr:
		if err != nil {
			runErr = fmt.Errorf("notification: %w", err)
		}
	}

	rt.Admin.SetDraining()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if gs != nil {
		gs.Shutdown(sctx)
	}
	cmds.Stop(sctx)
	stopCleanup()
	<-cleanupDone
	<-dispatchDone
	pusher.stop()
	s.api.SetCore(nil)
	s.hooks.SetStore(nil)
	s.reach.SetService(nil)
	return runErr
}

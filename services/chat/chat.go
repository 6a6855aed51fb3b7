package chat

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/grpcx"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/pkg/webhook"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	sgv1 "github.com/talim/realtime/proto/talim/safeguarding/v1"
	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/core"
	"github.com/talim/realtime/services/chat/internal/grpcapi"
	"github.com/talim/realtime/services/chat/internal/records"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Config configures the chat service.
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
	// NotificationAddr is the notification service's gRPC address: reports
	// notify the safeguarding leads through it (empty: review queue only).
	NotificationAddr string
	// Notifier replaces the gRPC notifier (talim dev, tests).
	Notifier Notifier
	// Audit receives policy changes and held-message decisions (nil: the
	// service's own audit log, shared with oversight and records).
	Audit audit.Appender
	// RetentionInterval is how often retention runs (docs/safeguarding.md).
	RetentionInterval time.Duration
}

// Register binds the configuration to flags and environment variables.
func (c *Config) Register(s *config.Set) {
	c.NATS.Register(s)
	c.Mongo.Register(s)
	s.Addr(&c.AdminAddr, "admin-addr", "TALIM_ADMIN_ADDR", ":9100", "admin HTTP address (/healthz, /readyz, /metrics)")
	grpcx.RegisterListen(s, &c.GRPCAddr, &c.ServiceToken, &c.GRPCTLS)
	s.String(&c.NotificationAddr, "notification-addr", "TALIM_NOTIFICATION_ADDR", "", "notification service gRPC address for safeguarding reports (empty: none)")
	s.Duration(&c.RetentionInterval, "retention-interval", "TALIM_RETENTION_INTERVAL", time.Hour, "how often message retention runs")
}

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	if c.RetentionInterval < 0 {
		return config.Errorf("TALIM_RETENTION_INTERVAL", "must not be negative")
	}
	return grpcx.ValidateListen(c.GRPCAddr, c.ServiceToken, c.GRPCTLS)
}

// Service is a running chat service.
type Service struct {
	cfg      Config
	log      *slog.Logger
	rt       *service.Runtime
	api      *grpcapi.Server
	recs     *records.Server
	ready    chan struct{}
	grpcAddr atomic.Value // string: bound gRPC address
}

// New validates cfg and returns a service; it does no I/O.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: log, api: &grpcapi.Server{}, recs: &records.Server{}, ready: make(chan struct{})}, nil
}

// RegisterGRPC registers ChatAdminService, SafeguardingService and
// RecordsService on gs (talim dev serves every API on one listener). Calls fail
// with Unavailable until Run has connected to the store.
func (s *Service) RegisterGRPC(gs *grpc.Server) {
	chatv1.RegisterChatAdminServiceServer(gs, s.api)
	sgv1.RegisterSafeguardingServiceServer(gs, &grpcapi.Safeguarding{Srv: s.api})
	sgv1.RegisterRecordsServiceServer(gs, s.recs)
}

// Ready is closed once the service serves requests.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// AdminAddr is the bound admin address (after Ready).
func (s *Service) AdminAddr() string { return s.rt.Admin.Addr() }

// GRPCAddr is the bound address of the service's own gRPC server (after Ready;
// empty when Config.GRPCAddr is empty).
func (s *Service) GRPCAddr() string {
	a, _ := s.grpcAddr.Load().(string)
	return a
}

// Run connects, serves until ctx ends, then shuts down gracefully: stop taking
// commands and gRPC calls, finish running ones, flush queued deliveries, close.
func (s *Service) Run(ctx context.Context) error {
	rt, err := service.StartRuntime(ctx, service.RuntimeOptions{
		Name: "chat", NATS: s.cfg.NATS, Mongo: &s.cfg.Mongo, AdminAddr: s.cfg.AdminAddr, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("start chat: %w", err)
	}
	s.rt = rt
	closeCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 5*time.Second)
	}
	st := store.New(rt.DB, rt.Admin.Registry())
	err = ensureIndexes(ctx, st, rt.Log)
	if err != nil {
		c, cancel := closeCtx()
		rt.Close(c)
		cancel()
		return fmt.Errorf("start chat: %w", err)
	}
	var notifier core.Notifier
	if s.cfg.Notifier != nil {
		notifier = s.cfg.Notifier
	} else if s.cfg.NotificationAddr != "" {
		gn, err := dialNotifier(s.cfg.NotificationAddr, s.cfg.ServiceToken)
		if err != nil {
			c, cancel := closeCtx()
			rt.Close(c)
			cancel()
			return fmt.Errorf("start chat: %w", err)
		}
		defer func() { _ = gn.conn.Close() }()
		notifier = gn
	}
	// One audit log for oversight, records, policy changes and held-message
	// decisions (Config.Audit replaces it for the latter in tests).
	auditLog := audit.New(rt.DB)
	var policyAudit audit.Appender = auditLog
	if s.cfg.Audit != nil {
		policyAudit = s.cfg.Audit
	}
	cr, err := core.New(core.Options{Store: st, NC: rt.NC, Logger: rt.Log, Registry: rt.Admin.Registry(),
		Safeguard: store.NewSafeguard(rt.DB), Audit: policyAudit, Notifier: notifier,
		Webhooks: webhook.NewProducer(webhook.NewStore(rt.DB), webhook.DefaultRefresh)})
	if err == nil {
		err = cr.ServeSharedRooms()
	}
	if err == nil {
		err = cr.ServeUnreadDirect()
	}
	var recs *records.Records
	if err == nil {
		recs = records.New(records.Options{Store: st, Audit: auditLog, NC: rt.NC, Members: cr, Logger: rt.Log,
			RetentionInterval: s.cfg.RetentionInterval})
	}
	cmds := command.New(rt.NC, command.Options{Service: "chat", Logger: rt.Log, Registerer: rt.Admin.Registry(),
		Unavailable: []error{store.ErrUnavailable, audit.ErrUnavailable}})
	if err == nil {
		cr.Register(cmds)
		recs.Register(cmds)
		err = cmds.Start()
	}
	var gs *grpcx.Server
	if err == nil && s.cfg.GRPCAddr != "" {
		gs, err = s.serveGRPC()
	}
	if err != nil {
		c, cancel := closeCtx()
		if recs != nil {
			recs.Close()
		}
		if cr != nil {
			cr.Close(c)
		}
		rt.Close(c)
		cancel()
		return fmt.Errorf("start chat: %w", err)
	}
	s.api.SetCore(cr)
	s.recs.Set(recs)
	backfilled := make(chan struct{})
	go func() {
		defer close(backfilled)
		backfillBuckets(ctx, st, rt.Log)
	}()
	rt.Started()
	close(s.ready)
	rt.Log.Info("chat ready", "admin", rt.Admin.Addr(), "grpc", s.GRPCAddr())

	<-ctx.Done()
	rt.Admin.SetDraining()
	sctx, scancel := closeCtx()
	defer scancel()
	<-backfilled // stops with ctx
	if gs != nil {
		gs.Shutdown(sctx)
	}
	cmds.Stop(sctx)
	recs.Close()
	cr.Close(sctx)
	s.api.SetCore(nil)
	s.recs.Set(nil)
	rt.Close(sctx)
	return nil
}

func (s *Service) serveGRPC() (*grpcx.Server, error) {
	gs, err := grpcx.Serve(grpcx.Options{ServiceToken: s.cfg.ServiceToken, Logger: s.log, TLS: s.cfg.GRPCTLS},
		s.cfg.GRPCAddr, chatv1.ChatAdminService_ServiceDesc.ServiceName, s.RegisterGRPC)
	if err != nil {
		return nil, err
	}
	gs.MarkServing(sgv1.RecordsService_ServiceDesc.ServiceName)
	s.grpcAddr.Store(gs.Addr())
	return gs, nil
}

// backfillStep bounds the updates of one BackfillBuckets call.
const backfillStep = 2000

// backfillBuckets gives messages stored before buckets existed their bucket
// (store.BackfillBuckets), a bounded step at a time, until done, ctx ends or the
// store fails (the next start goes on; History serves such rooms meanwhile with
// the range query).
func backfillBuckets(ctx context.Context, st *store.Store, log *slog.Logger) {
	total := 0
	for ctx.Err() == nil {
		n, done, err := st.BackfillBuckets(ctx, backfillStep)
		total += n
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("backfill message buckets; the next start goes on", "updated", total, "err", err)
			return
		case done:
			if total > 0 {
				log.Info("backfilled message buckets", "updated", total)
			}
			return
		}
	}
}

// ensureIndexes creates the indexes, retrying for up to 30s: FerretDB v1 (SQLite)
// drops the connection when several databases or collections are created at the
// same moment, and replicas starting together against an empty store race the same
// way; index creation itself is idempotent.
func ensureIndexes(ctx context.Context, st *store.Store, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := st.EnsureIndexes(ctx)
		if err == nil {
			return nil
		}
		log.Warn("create indexes; retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

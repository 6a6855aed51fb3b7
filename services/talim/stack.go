package talim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/devstack"
	"github.com/talim/realtime/pkg/grpcx"
	"github.com/talim/realtime/pkg/logging"
	"github.com/talim/realtime/pkg/service"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	webhookv1 "github.com/talim/realtime/proto/talim/webhook/v1"
	"github.com/talim/realtime/services/chat"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/notification"
	"github.com/talim/realtime/services/presence"
)

// Store backends for the embedded FerretDB.
const (
	StoreSQLite     = "sqlite"
	StorePostgreSQL = "postgresql"
)

// StackConfig configures StartStack. Zero values mean: embedded NATS and FerretDB,
// everything on loopback with kernel-chosen ports, data in DataDir.
type StackConfig struct {
	// DataDir holds the FerretDB data and the generated secrets. Required.
	DataDir string
	// NATSURL points at an external NATS; empty starts an embedded server on NATSAddr.
	NATSURL  string
	NATSAddr string // default 127.0.0.1:0
	// MongoURI points at an external MongoDB; empty starts an embedded FerretDB on MongoAddr.
	MongoURI  string
	MongoAddr string // default 127.0.0.1:0
	// Store is the embedded FerretDB backend: postgresql (a private PostgreSQL cluster
	// under DataDir/postgres on PostgresPort, 0 meaning a free port; talim dev's
	// default) or sqlite (the zero value here, which the tests use: no PostgreSQL
	// needed, but every query other than a point read scans its collection).
	Store        string
	PostgresPort int
	Database     string // default "talim"

	EdgeAddr string // default 127.0.0.1:0
	GRPCAddr string // default 127.0.0.1:0; one listener serves ChatAdminService and NotificationService
	// AdminAddrs per service name (edge, chat, notification, presence); default 127.0.0.1:0.
	AdminAddrs map[string]string

	// JWTSecret and ServiceToken default to secrets generated once and kept in DataDir.
	JWTSecret    string
	ServiceToken string
	// DevMode lets the edge accept ?userId= and serve /dev/tokens.
	DevMode bool
	// Seed creates the demo users' rooms (idempotent).
	Seed bool

	// Env supplies the services' other variables (limits, timeouts, ...); nil means
	// none, so every such setting takes its default. talim dev passes os.LookupEnv.
	Env func(string) (string, bool)

	Logger *slog.Logger
	// Configure, when set, may adjust each service's configuration before start.
	Configure func(*ServiceConfigs)
}

// ServiceConfigs are the configurations StartStack derives; Configure may change them.
type ServiceConfigs struct {
	Edge         *edge.Config
	Chat         *chat.Config
	Notification *notification.Config
	Presence     *presence.Config
}

// Stack is a running system.
type Stack struct {
	// EdgeURL is the edge's base URL (http://127.0.0.1:port); WSURL its native endpoint.
	EdgeURL, WSURL string
	GRPCAddr       string
	NATSURL        string
	MongoURI       string
	Database       string
	// AdminAddrs by service name.
	AdminAddrs   map[string]string
	JWTSecret    string
	ServiceToken string

	Edge         *edge.Server
	Chat         *chat.Service
	Notification *notification.Service
	Presence     *presence.Service

	log       *slog.Logger
	cancel    context.CancelFunc
	group     *errgroup.Group
	closers   []func()
	closeOnce sync.Once
	closeErr  error
}

// DemoUsers are the users talim dev seeds and hands tokens out for.
var DemoUsers = []edge.DevUser{
	{UserID: "t1", Name: "Ms. Amina Yusuf", Roles: []string{"teacher"}},
	{UserID: "s1", Name: "Bilal Ahmed", Roles: []string{"student"}},
	{UserID: "s2", Name: "Chioma Obi", Roles: []string{"student"}},
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// StartStack starts the whole system and returns once every service is ready. The
// order is: infrastructure, chat, notification and presence (each ready), the seed,
// and only then the edge, so the WebSocket port never answers before it can serve.
func StartStack(ctx context.Context, cfg StackConfig) (_ *Stack, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("talim: DataDir is required")
	}
	log := cfg.Logger
	if log == nil {
		log = logging.Discard()
	}
	st := &Stack{log: log, AdminAddrs: map[string]string{}}
	defer func() {
		if err != nil {
			st.runClosers()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if st.JWTSecret = cfg.JWTSecret; st.JWTSecret == "" {
		if st.JWTSecret, err = loadOrCreateSecret(cfg.DataDir, JWTSecretFile); err != nil {
			return nil, err
		}
	}
	if st.ServiceToken = cfg.ServiceToken; st.ServiceToken == "" {
		if st.ServiceToken, err = loadOrCreateSecret(cfg.DataDir, ServiceTokenFile); err != nil {
			return nil, err
		}
	}
	if err := st.startInfra(ctx, cfg); err != nil {
		return nil, err
	}
	st.Database = orDefault(cfg.Database, "talim")

	natsCfg := service.NATS{URL: st.NATSURL}
	mongoCfg := service.Mongo{URI: st.MongoURI, Database: st.Database}
	admin := func(name string) string { return orDefault(cfg.AdminAddrs[name], "127.0.0.1:0") }
	var ec edge.Config
	var cc chat.Config
	var nc notification.Config
	var pc presence.Config
	for _, reg := range []func(*config.Set){ec.Register, cc.Register, nc.Register, pc.Register} {
		if err := loadConfig(reg, cfg.Env); err != nil {
			return nil, err
		}
	}
	ec.NATS, ec.AdminAddr, ec.Addr = natsCfg, admin("edge"), orDefault(cfg.EdgeAddr, "127.0.0.1:0")
	ec.JWTSecret, ec.DevMode, ec.DevUsers = st.JWTSecret, cfg.DevMode, DemoUsers
	cc.NATS, cc.Mongo, cc.AdminAddr, cc.GRPCAddr, cc.ServiceToken = natsCfg, mongoCfg, admin("chat"), "", st.ServiceToken
	if a := cfg.GRPCAddr; a != "" && !strings.HasSuffix(a, ":0") {
		cc.NotificationAddr = a // one listener serves both APIs: reports reach the leads
	}
	nc.NATS, nc.Mongo, nc.AdminAddr, nc.GRPCAddr, nc.ServiceToken = natsCfg, mongoCfg, admin("notification"), "", st.ServiceToken
	if cfg.DevMode {
		nc.Webhooks.AllowPrivate = true // a developer's receiver runs on localhost (docs/webhooks.md)
	}
	pc.NATS, pc.Mongo, pc.AdminAddr = natsCfg, mongoCfg, admin("presence")
	if nc.Push.VAPIDPrivateKey == "" { // talim dev: Web Push on, to loopback endpoints too
		if nc.Push.VAPIDPrivateKey, err = loadOrCreateVAPIDKey(cfg.DataDir); err != nil {
			return nil, err
		}
		nc.Push.VAPIDSubject, nc.Push.AllowLoopback = "mailto:dev@localhost", true
	}
	cfgs := ServiceConfigs{Edge: &ec, Chat: &cc, Notification: &nc, Presence: &pc}
	if cfg.Configure != nil {
		cfg.Configure(&cfgs)
	}
	if st.Edge, err = edge.New(*cfgs.Edge, log); err != nil {
		return nil, err
	}
	if st.Chat, err = chat.New(*cfgs.Chat, log); err != nil {
		return nil, err
	}
	if st.Notification, err = notification.New(*cfgs.Notification, log); err != nil {
		return nil, err
	}
	if st.Presence, err = presence.New(*cfgs.Presence, log); err != nil {
		return nil, err
	}

	gs, err := grpcx.NewServer(grpcx.Options{ServiceToken: st.ServiceToken, Logger: log})
	if err != nil {
		return nil, err
	}
	st.Chat.RegisterGRPC(gs.Server)
	st.Notification.RegisterGRPC(gs.Server)
	if err := gs.Start(orDefault(cfg.GRPCAddr, "127.0.0.1:0")); err != nil {
		return nil, err
	}
	st.GRPCAddr = gs.Addr()

	runCtx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(runCtx)
	st.cancel, st.group = cancel, g
	type runner interface {
		Run(context.Context) error
		Ready() <-chan struct{}
	}
	services := []struct {
		name string
		r    runner
	}{{"chat", st.Chat}, {"notification", st.Notification}, {"presence", st.Presence}}
	run := func(name string, r runner) {
		g.Go(func() error {
			if err := r.Run(gctx); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		select {
		case err := <-gs.Errors():
			return err
		case <-gctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			gs.Shutdown(sctx)
			return nil
		}
	})
	waitReady := func(name string, r runner) error {
		select {
		case <-r.Ready():
			return nil
		case <-gctx.Done():
			cancel()
			return fmt.Errorf("start %s: %w", name, errors.Join(g.Wait(), gctx.Err()))
		case <-ctx.Done():
			cancel()
			_ = g.Wait()
			return fmt.Errorf("start %s: %w", name, ctx.Err())
		}
	}
	for _, s := range services {
		run(s.name, s.r)
	}
	for _, s := range services {
		if err := waitReady(s.name, s.r); err != nil {
			return nil, err
		}
	}
	gs.MarkServing(chatv1.ChatAdminService_ServiceDesc.ServiceName, notificationv1.NotificationService_ServiceDesc.ServiceName,
		webhookv1.WebhookService_ServiceDesc.ServiceName,
		notificationv1.PushService_ServiceDesc.ServiceName, notificationv1.ReachService_ServiceDesc.ServiceName)
	st.AdminAddrs["chat"] = st.Chat.AdminAddr()
	st.AdminAddrs["notification"] = st.Notification.AdminAddr()
	st.AdminAddrs["presence"] = st.Presence.AdminAddr()
	// The edge opens last, after the services answer and the demo rooms exist, so a
	// client that connects the moment the port opens can join (issue 15). The edge
	// itself also waits for the services' NATS health answers (edge/upstreams.go).
	if cfg.Seed {
		if err := st.seed(ctx); err != nil {
			_ = st.Close()
			return nil, err
		}
	}
	run("edge", st.Edge)
	if err := waitReady("edge", st.Edge); err != nil {
		return nil, err
	}
	st.EdgeURL = "http://" + st.Edge.Addr()
	st.WSURL = "ws://" + st.Edge.Addr() + "/ws"
	st.AdminAddrs["edge"] = st.Edge.AdminAddr()
	return st, nil
}

func (st *Stack) startInfra(ctx context.Context, cfg StackConfig) error {
	st.NATSURL = cfg.NATSURL
	if st.NATSURL == "" {
		host, port, err := splitHostPort(orDefault(cfg.NATSAddr, "127.0.0.1:0"))
		if err != nil {
			return fmt.Errorf("TALIM_DEV_NATS_ADDR: %w", err)
		}
		if port == 0 {
			port = devstack.RandomPort
		}
		ns, err := devstack.StartNATS(devstack.NATSOptions{Host: host, Port: port, ServerName: "talim-dev"})
		if err != nil {
			return fmt.Errorf("start embedded nats: %w", err)
		}
		st.closers = append(st.closers, ns.Shutdown)
		st.NATSURL = ns.ClientURL()
	}
	st.MongoURI = cfg.MongoURI
	if st.MongoURI != "" {
		return nil
	}
	fo := devstack.FerretOptions{ListenAddr: orDefault(cfg.MongoAddr, "127.0.0.1:0")}
	switch orDefault(cfg.Store, StoreSQLite) {
	case StoreSQLite:
		fo.Handler, fo.Dir = devstack.FerretHandlerSQLite, filepath.Join(cfg.DataDir, "ferretdb")
	case StorePostgreSQL:
		if _, err := devstack.FindPostgresBin(); err != nil {
			return fmt.Errorf("%w: %w", err, errNoPostgres)
		}
		port := cfg.PostgresPort
		if port == 0 {
			var err error
			if port, err = freePort(); err != nil {
				return fmt.Errorf("port for postgresql: %w", err)
			}
		}
		// As root PostgreSQL runs as the postgres user, which must traverse the data dir.
		if os.Geteuid() == 0 {
			_ = os.Chmod(cfg.DataDir, 0o711)
		}
		pg, err := devstack.StartPostgres(ctx, devstack.PGOptions{Dir: filepath.Join(cfg.DataDir, "postgres"), Port: port})
		if err != nil {
			return fmt.Errorf("start postgresql for ferretdb: %w", err)
		}
		st.closers = append(st.closers, func() { _ = pg.Stop() })
		fo.Handler, fo.PostgreSQLURL = devstack.FerretHandlerPostgreSQL, pg.URL()
	default:
		return fmt.Errorf("TALIM_DEV_STORE=%q: want sqlite or postgresql", cfg.Store)
	}
	fdb, err := devstack.StartFerretDB(ctx, fo)
	if err != nil {
		return fmt.Errorf("start embedded ferretdb: %w", err)
	}
	st.closers = append(st.closers, fdb.Close)
	st.MongoURI = fdb.MongoURI()
	return nil
}

// errNoPostgres says what to do when the PostgreSQL binaries are missing.
var errNoPostgres = errors.New("the default store is FerretDB over a private PostgreSQL: install PostgreSQL with `make pg-deps` " +
	"(Debian: apt-get install postgresql; `make run` does it), or run on SQLite with TALIM_DEV_STORE=sqlite " +
	"(no PostgreSQL needed, but history and member reads scan whole collections: for trying things out, not for a school)")

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := net.LookupPort("tcp", port)
	if err != nil {
		return "", 0, err
	}
	return host, p, nil
}

// loadConfig fills a service configuration with its defaults, overridden by env.
func loadConfig(register func(*config.Set), env func(string) (string, bool)) error {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	set := config.NewSet(nil, env)
	register(set)
	if err := set.Load(); err != nil {
		return fmt.Errorf("load service configuration: %w", err)
	}
	return nil
}

// Token signs a token for userID valid for ttl (24h when zero).
func (st *Stack) Token(userID, name string, ttl time.Duration, roles ...string) (string, error) {
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	return auth.SignHS256(st.JWTSecret, auth.Claims{UserID: userID, Name: name, Roles: roles, ExpiresAt: time.Now().Add(ttl)}, "", "")
}

// Close stops the services (the edge drains), then the embedded infrastructure.
func (st *Stack) Close() error {
	st.closeOnce.Do(func() {
		if st.cancel != nil {
			st.cancel()
			st.closeErr = st.group.Wait()
		}
		st.runClosers()
	})
	return st.closeErr
}

func (st *Stack) runClosers() {
	for i := len(st.closers) - 1; i >= 0; i-- {
		st.closers[i]()
	}
	st.closers = nil
}

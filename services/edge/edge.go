package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talim/realtime/pkg/admin"
	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/edge/internal/netpoll"
	"github.com/talim/realtime/services/edge/internal/writer"
)

// DevUser is a demo user whose token the development endpoint /dev/tokens hands out.
type DevUser struct {
	UserID string   `json:"userId"`
	Name   string   `json:"name"`
	Roles  []string `json:"roles"`
}

// Config configures the edge.
type Config struct {
	NATS      service.NATS
	AdminAddr string
	// Addr is the HTTP/WebSocket listen address.
	Addr string
	// JWT verification (docs/protocol.md "Connecting").
	JWTSecret, JWKS, JWTIssuer, JWTAudience string
	// DevMode accepts ?userId= without a token and serves /dev/tokens. Never in production.
	DevMode bool
	// DevUsers are listed by /dev/tokens in DevMode (set by talim dev, not by env).
	DevUsers []DevUser

	// MaxFrameBytes is the largest inbound message; larger ones close with 1009.
	MaxFrameBytes int
	// CommandRate and CommandBurst are the per-connection token bucket (commands/s).
	CommandRate  float64
	CommandBurst int
	// MaxConnsPerUser caps one user's connections on this edge (429 beyond).
	MaxConnsPerUser int
	// ConnectRate and ConnectBurst limit new connections per client address.
	ConnectRate  float64
	ConnectBurst int
	// AllowedOrigins: empty allows requests without Origin and same-host Origins;
	// "*" allows any; otherwise exact origins such as https://app.example.com.
	AllowedOrigins []string
	// TrustedProxies are CIDRs (or IPs) whose X-Forwarded-For is believed.
	TrustedProxies []string
	// PingInterval between server pings; silence for 2.5× closes the connection.
	PingInterval time.Duration
	// RequestTimeout bounds a command forwarded to a service.
	RequestTimeout time.Duration
	// DrainWindow spreads the 1012 closes of a shutdown.
	DrainWindow time.Duration
	// QueueBytes and QueueFrames bound one connection's outbound queue (4008 beyond).
	QueueBytes  int
	QueueFrames int
	// WriteTimeout is the deadline of one flush to a socket.
	WriteTimeout time.Duration
	// ReusePort sets SO_REUSEPORT so several edge processes can share Addr.
	ReusePort bool
	// PresenceHeartbeat is the interval of presence heartbeats.
	PresenceHeartbeat time.Duration
	// MaxPresenceWatches caps the users one connection watches.
	MaxPresenceWatches int
	// Upstreams are the services Run waits for (each answers a NATS health request
	// ready) before it opens Addr; see upstreams.go. Register's default is
	// chat,notification,presence; nil (a Config built in code) does not wait.
	Upstreams []string
}

// Register binds the configuration to flags and environment variables.
func (c *Config) Register(s *config.Set) {
	c.NATS.Register(s)
	s.Addr(&c.AdminAddr, "admin-addr", "TALIM_ADMIN_ADDR", ":9100", "admin HTTP address (/healthz, /readyz, /metrics)")
	s.Addr(&c.Addr, "addr", "TALIM_EDGE_ADDR", ":8080", "HTTP/WebSocket listen address")
	s.String(&c.JWTSecret, "jwt-secret", "TALIM_JWT_SECRET", "", "HS256 secret for client tokens")
	s.String(&c.JWKS, "jwt-jwks", "TALIM_JWT_JWKS", "", "JWKS file path or https URL for RS256/ES256/EdDSA tokens")
	s.String(&c.JWTIssuer, "jwt-issuer", "TALIM_JWT_ISSUER", "", "required token issuer (iss), when set")
	s.String(&c.JWTAudience, "jwt-audience", "TALIM_JWT_AUDIENCE", "", "required token audience (aud), when set")
	s.Bool(&c.DevMode, "dev-mode", "TALIM_DEV_MODE", false, "development mode: accept ?userId= without a token (never in production)")
	s.Int(&c.MaxFrameBytes, "max-frame-bytes", "TALIM_EDGE_MAX_FRAME_BYTES", 65536, 256, "largest inbound message in bytes (1009 beyond)")
	s.Float(&c.CommandRate, "command-rate", "TALIM_EDGE_COMMAND_RATE", 20, "commands per second per connection")
	s.Int(&c.CommandBurst, "command-burst", "TALIM_EDGE_COMMAND_BURST", 40, 1, "command burst per connection")
	s.Int(&c.MaxConnsPerUser, "max-conns-per-user", "TALIM_EDGE_MAX_CONNS_PER_USER", 10, 1, "connections per user on this edge (429 beyond)")
	s.Float(&c.ConnectRate, "connect-rate", "TALIM_EDGE_CONNECT_RATE", 10, "new connections per second per client address")
	s.Int(&c.ConnectBurst, "connect-burst", "TALIM_EDGE_CONNECT_BURST", 50, 1, "new connection burst per client address")
	s.List(&c.AllowedOrigins, "allowed-origins", "TALIM_EDGE_ALLOWED_ORIGINS", "", "allowed Origins, comma-separated (empty: same host only; *: any)")
	s.List(&c.TrustedProxies, "trusted-proxies", "TALIM_EDGE_TRUSTED_PROXIES", "", "CIDRs whose X-Forwarded-For is trusted, comma-separated")
	s.Duration(&c.PingInterval, "ping-interval", "TALIM_EDGE_PING_INTERVAL", 25*time.Second, "server ping interval (idle close after 2.5x)")
	s.Duration(&c.RequestTimeout, "request-timeout", "TALIM_EDGE_REQUEST_TIMEOUT", 5*time.Second, "deadline of a command forwarded to a service")
	s.Duration(&c.DrainWindow, "drain-window", "TALIM_EDGE_DRAIN_WINDOW", 10*time.Second, "window over which a shutdown closes connections with 1012")
	s.Int(&c.QueueBytes, "queue-bytes", "TALIM_EDGE_QUEUE_BYTES", 1<<20, 1024, "outbound queue bytes per connection (4008 beyond)")
	s.Int(&c.QueueFrames, "queue-frames", "TALIM_EDGE_QUEUE_FRAMES", 1024, 8, "outbound queue frames per connection (4008 beyond)")
	s.Duration(&c.WriteTimeout, "write-timeout", "TALIM_EDGE_WRITE_TIMEOUT", 5*time.Second, "deadline of one socket flush")
	s.Bool(&c.ReusePort, "reuseport", "TALIM_EDGE_REUSEPORT", false, "set SO_REUSEPORT so several edges share the address")
	s.Duration(&c.PresenceHeartbeat, "presence-heartbeat", "TALIM_PRESENCE_HEARTBEAT", 10*time.Second, "presence heartbeat interval")
	s.Int(&c.MaxPresenceWatches, "max-presence-watches", "TALIM_EDGE_MAX_PRESENCE_WATCHES", 200, 1, "users one connection may watch")
	s.List(&c.Upstreams, "upstreams", "TALIM_EDGE_UPSTREAMS", "chat,notification,presence", "services that must answer ready before the edge opens its port (empty: do not wait)")
}

// Defaults fills zero fields with the defaults Register uses, so a Config built in
// code (tests, talim dev) needs only the fields it cares about.
func (c *Config) Defaults() {
	setDef := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setDef(&c.MaxFrameBytes, 65536)
	if c.CommandRate == 0 {
		c.CommandRate = 20
	}
	setDef(&c.CommandBurst, 40)
	setDef(&c.MaxConnsPerUser, 10)
	if c.ConnectRate == 0 {
		c.ConnectRate = 10
	}
	setDef(&c.ConnectBurst, 50)
	setDur(&c.PingInterval, 25*time.Second)
	setDur(&c.RequestTimeout, 5*time.Second)
	setDur(&c.DrainWindow, 10*time.Second)
	setDef(&c.QueueBytes, 1<<20)
	setDef(&c.QueueFrames, 1024)
	setDur(&c.WriteTimeout, 5*time.Second)
	setDur(&c.PresenceHeartbeat, 10*time.Second)
	setDef(&c.MaxPresenceWatches, 200)
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = ":9100"
	}
}

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	if c.JWTSecret == "" && c.JWKS == "" {
		return config.Errorf("TALIM_JWT_SECRET", "required (or TALIM_JWT_JWKS)")
	}
	if _, err := parseCIDRs(c.TrustedProxies); err != nil {
		return config.Errorf("TALIM_EDGE_TRUSTED_PROXIES", "%v", err)
	}
	return nil
}

// Server is a running edge.
type Server struct {
	cfg      Config
	log      *slog.Logger
	rt       *service.Runtime
	ready    chan struct{}
	verifier *auth.Verifier
	metrics  *metrics
	hub      *hub
	watch    *watcher
	disp     *dispatcher
	connects *connectLimiter
	proxies  []*net.IPNet
	wopts    writer.Options
	protos   [maxProtocols]Protocol
	poll     *netpoll.Poller // reads idle connections without a goroutine each (read.go); nil: goroutines
	pings    *pingWheel      // server pings and idle closes of native connections
	polls    *pollRegistry   // Socket.IO long-polling sessions (polling.go)
	// sioRecovery keeps disconnected Socket.IO sessions (socketio_recovery.go).
	sioRecovery *sioRecoveryStore

	ln       net.Listener
	httpSrv  *http.Server
	draining atomic.Bool

	connsMu sync.Mutex
	conns   map[*Conn]struct{}
	connsWG sync.WaitGroup

	forwards tracker // commands in flight to the services (commands.go), waited for by drain
}

// New validates cfg and returns an edge; it does no I/O.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	proxies, _ := parseCIDRs(cfg.TrustedProxies)
	s := &Server{
		cfg: cfg, log: log, ready: make(chan struct{}), proxies: proxies,
		conns:       map[*Conn]struct{}{},
		connects:    newConnectLimiter(cfg.ConnectRate, cfg.ConnectBurst),
		sioRecovery: newSIORecoveryStore(sioRecoveryWindow, sioRecoveryMax),
	}
	s.protos[protoNative] = Native{}
	s.protos[protoSocketIO] = SocketIO{}
	if cfg.DevMode {
		log.Warn("EDGE DEVELOPMENT MODE: ?userId= is accepted without a token and /dev/tokens hands out tokens; never run this in production")
	}
	return s, nil
}

// Ready is closed once the edge accepts connections: NATS is connected, every
// service in Config.Upstreams answered ready and Addr is listening.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// AdminAddr is the bound admin address (after Ready).
func (s *Server) AdminAddr() string { return s.rt.Admin.Addr() }

// Addr is the bound HTTP/WebSocket address (after Ready).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// ID is the edge instance id used in presence subjects (after Ready).
func (s *Server) ID() string { return s.rt.InstanceID }

// Run serves until ctx ends, then drains (see drain.go) and returns.
func (s *Server) Run(ctx context.Context) error {
	verifier, err := auth.NewVerifier(ctx, auth.Config{
		Secret: s.cfg.JWTSecret, JWKS: s.cfg.JWKS, Issuer: s.cfg.JWTIssuer, Audience: s.cfg.JWTAudience,
	})
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	defer verifier.Close()
	s.verifier = verifier

	// /readyz stays unready until the port below listens (rt.Started), so
	// nothing is sent here before the edge can take the connection.
	gate := newUpstreamGate(s.cfg.Upstreams) // open the port only once the services answer (upstreams.go)
	rt, err := service.StartRuntime(ctx, service.RuntimeOptions{
		Name: "edge", NATS: s.cfg.NATS, AdminAddr: s.cfg.AdminAddr, Logger: s.log,
		Checks: map[string]admin.Check{"upstreams": gate.check},
	})
	if err != nil {
		return fmt.Errorf("start edge: %w", err)
	}
	s.rt = rt
	if err := gate.wait(ctx, rt.NC, rt.Log.Info); err != nil {
		rt.Close(context.Background())
		return nil // ctx ended before the edge ever served
	}
	ln, err := listen(s.cfg.Addr, s.cfg.ReusePort)
	if err != nil {
		rt.Close(context.Background())
		return fmt.Errorf("edge: listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	if p, err := netpoll.New(pollWorkers(runtime.GOMAXPROCS(0))); err == nil {
		s.poll = p
	} else {
		rt.Log.Warn("netpoll unavailable: one reading goroutine per connection", "err", err)
	}
	s.pings = newPingWheel(s.cfg.PingInterval)
	s.polls = newPollRegistry(s, rt.InstanceID)
	s.log = rt.Log
	s.metrics = newMetrics(rt.Admin.Registry(), s)
	s.disp = newDispatcher(s.log)
	s.hub = newHub(s, rt.NC)
	s.watch = newWatcher(s, rt.NC)
	s.disp.start(s.hub.deliver, s.watch.deliver)
	s.wopts = writer.Options{
		MaxBytes: s.cfg.QueueBytes, MaxFrames: s.cfg.QueueFrames, WriteTimeout: s.cfg.WriteTimeout,
		OnWritten: s.metrics.written,
	}
	rt.Admin.AddCheck("accepting", func(context.Context) error {
		if s.draining.Load() {
			return errors.New("draining")
		}
		return nil
	})

	s.httpSrv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.httpSrv.Serve(ln) }()
	hbDone := make(chan struct{})
	hbCtx, stopHB := context.WithCancel(context.Background())
	go func() { defer close(hbDone); s.heartbeatLoop(hbCtx) }()
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	go s.connects.sweepLoop(sweepCtx, time.Minute)
	s.log.Info("edge listening", "addr", ln.Addr().String(), "edge", rt.InstanceID)
	rt.Started()
	close(s.ready)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("edge: serve: %w", err)
	}
	s.drain()
	s.polls.close()
	if s.poll != nil {
		s.poll.Close()
	}
	s.pings.close()
	stopSweep()
	stopHB()
	<-hbDone
	s.publishHeartbeat(true)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.httpSrv.Shutdown(sctx)
	rt.Close(sctx)
	s.disp.stop()
	return runErr
}

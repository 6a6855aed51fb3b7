package talim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/lifecycle"
	"github.com/talim/realtime/pkg/logging"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/notification"
)

const usage = `talim — the Talim Realtime developer binary

Usage:
  talim dev      run the whole system in one process (what "make run" does)
  talim token    print a JWT for a user: talim token --user ID [--name N] [--roles R] [--ttl D]
  talim notify   send a notification through the gRPC API: talim notify --to u1,u2 --title T --body B
  talim webhooks manage webhook subscriptions: talim webhooks list|create|delete|rotate|dead|replay
  talim policy   show or set the school's messaging policy: talim policy [show|set --actor U ...]
  talim vapid-keys  print a new Web Push VAPID key pair (TALIM_PUSH_VAPID_PRIVATE_KEY and the public key)
  talim reach    preferences, quiet hours, the school calendar and email contacts: talim reach prefs get --user U
  talim bench    load scenarios: talim bench idle|fanout|rooms|notify|reconnect-storm [flags]
  talim soak     steady chat, notification and presence traffic; checks memory, goroutines, fds stay flat
  talim audit    check the safeguarding audit log: talim audit verify
  talim version  print the version

Run "talim <command> -h" for the command's flags and environment variables.
`

// Main runs the talim command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "dev":
		return devCommand(args[1:], os.LookupEnv, stdout, stderr)
	case "token":
		return tokenCommand(args[1:], os.LookupEnv, stdout, stderr)
	case "notify":
		ctx, stop := lifecycle.SignalContext(context.Background())
		defer stop()
		return notification.NotifyCommand(ctx, args[1:], stdout, stderr)
	case "webhooks":
		ctx, stop := lifecycle.SignalContext(context.Background())
		defer stop()
		return notification.WebhooksCommand(ctx, args[1:], stdout, stderr)
	case "policy":
		ctx, stop := lifecycle.SignalContext(context.Background())
		defer stop()
		return PolicyCommand(ctx, args[1:], stdout, stderr)
	case "vapid-keys":
		priv, pub, err := notification.GenerateVAPIDKeys()
		if err != nil {
			fmt.Fprintln(stderr, "talim vapid-keys:", err)
			return 1
		}
		fmt.Fprintf(stdout, "TALIM_PUSH_VAPID_PRIVATE_KEY=%s\nvapid public key: %s\n", priv, pub)
		return 0
	case "reach":
		ctx, stop := lifecycle.SignalContext(context.Background())
		defer stop()
		return notification.ReachCommand(ctx, args[1:], stdout, stderr)
	case "bench":
		ctx, stop := lifecycle.SignalContext(context.Background())
		defer stop()
		return BenchCommand(ctx, args[1:], stdout, stderr)
	case "soak":
		ctx, stop := lifecycle.SignalContext(context.Background())
		defer stop()
		return SoakCommand(ctx, args[1:], stdout, stderr)
	case "audit":
		ctx, stop := lifecycle.SignalContext(context.Background())
		defer stop()
		return auditCommand(ctx, args[1:], os.LookupEnv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, service.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "talim: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// DevConfig is the configuration of talim dev.
type DevConfig struct {
	DataDir       string
	EdgeAddr      string
	GRPCAddr      string
	NATSURL       string
	NATSAddr      string
	MongoURI      string
	MongoAddr     string
	Database      string
	Store         string
	PostgresPort  int
	AdminBasePort int
	JWTSecret     string
	ServiceToken  string
	OTel          string
	Log           service.Log
}

// Register binds talim dev's variables.
func (c *DevConfig) Register(s *config.Set) {
	s.String(&c.DataDir, "data-dir", "TALIM_DATA_DIR", "./data", "data directory (FerretDB data, generated secrets)")
	s.Addr(&c.EdgeAddr, "edge-addr", "TALIM_EDGE_ADDR", "127.0.0.1:8080", "edge HTTP/WebSocket address")
	s.Addr(&c.GRPCAddr, "grpc-addr", "TALIM_GRPC_ADDR", "127.0.0.1:9090", "gRPC address of ChatAdminService and NotificationService")
	s.String(&c.NATSURL, "nats-url", "NATS_URL", "", "external NATS URL(s); empty runs an embedded server")
	s.Addr(&c.NATSAddr, "nats-addr", "TALIM_DEV_NATS_ADDR", "127.0.0.1:4222", "embedded NATS listen address")
	s.String(&c.MongoURI, "mongodb-uri", "MONGODB_URI", "", "external MongoDB URI; empty runs an embedded FerretDB")
	s.Addr(&c.MongoAddr, "mongo-addr", "TALIM_DEV_MONGO_ADDR", "127.0.0.1:27017", "embedded FerretDB listen address")
	s.String(&c.Database, "mongodb-database", "MONGODB_DATABASE", "talim", "database name")
	s.String(&c.Store, "store", "TALIM_DEV_STORE", StorePostgreSQL, "embedded FerretDB backend: postgresql (a private PostgreSQL cluster under the data dir; needs Debian's postgresql package: make pg-deps) or sqlite (no PostgreSQL needed; every query but a point read scans its collection)")
	s.Int(&c.PostgresPort, "postgres-port", "TALIM_DEV_PG_PORT", 5433, 0, "port of the private PostgreSQL cluster (store=postgresql; 0: a free port)")
	s.Int(&c.AdminBasePort, "admin-base-port", "TALIM_DEV_ADMIN_BASE_PORT", 9101, 0, "admin ports: edge, chat, notification, presence from here (0: random)")
	s.String(&c.JWTSecret, "jwt-secret", "TALIM_JWT_SECRET", "", "HS256 secret (generated under the data dir when empty)")
	s.String(&c.ServiceToken, "service-token", "TALIM_SERVICE_TOKEN", "", "gRPC service token (generated under the data dir when empty)")
	s.String(&c.OTel, "otel", "TALIM_DEV_OTEL", "", "write every trace span as a JSON line to this file (- for stdout); the OTEL_* variables work too")
	c.Log.Register(s, "text")
}

// Validate checks what Register cannot.
func (c DevConfig) Validate() error {
	if c.NATSURL != "" {
		for _, u := range config.SplitList(c.NATSURL) {
			if err := config.ValidateURL(u, "nats", "tls"); err != nil {
				return config.Errorf("NATS_URL", "%q: %v", c.NATSURL, err)
			}
		}
	}
	if c.MongoURI != "" {
		if err := config.ValidateURL(c.MongoURI, "mongodb", "mongodb+srv"); err != nil {
			return config.Errorf("MONGODB_URI", "%q: %v", c.MongoURI, err)
		}
	}
	if c.Store != StoreSQLite && c.Store != StorePostgreSQL {
		return config.Errorf("TALIM_DEV_STORE", "%q: want sqlite or postgresql", c.Store)
	}
	return nil
}

func parse(name string, args []string, env func(string) (string, bool), stderr io.Writer, register func(*config.Set)) bool {
	fs := flag.NewFlagSet("talim "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	set := config.NewSet(fs, env)
	register(set)
	if err := fs.Parse(args); err != nil {
		return false
	}
	if err := set.Load(); err != nil {
		fmt.Fprintf(stderr, "talim %s: %v\n", name, err)
		return false
	}
	return true
}

func devCommand(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	var c DevConfig
	if !parse("dev", args, env, stderr, c.Register) {
		return 2
	}
	if err := c.Validate(); err != nil {
		fmt.Fprintf(stderr, "talim dev: %v\n", err)
		return 2
	}
	log, err := logging.New(stderr, c.Log.Format, c.Log.Level)
	if err != nil {
		fmt.Fprintf(stderr, "talim dev: %v\n", err)
		return 2
	}
	ctx, stop := lifecycle.SignalContext(context.Background())
	defer stop()
	stopTracing, err := devTracing(ctx, c.OTel, env, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "talim dev: %v\n", err)
		return 2
	}
	defer stopTracing()
	admin := map[string]string{}
	if c.AdminBasePort > 0 {
		for i, name := range []string{"edge", "chat", "notification", "presence"} {
			admin[name] = fmt.Sprintf("127.0.0.1:%d", c.AdminBasePort+i)
		}
	}
	log.Warn("development mode: ?userId= is accepted without a token and /dev/tokens hands out tokens; never expose this")
	start := time.Now()
	st, err := StartStack(ctx, StackConfig{
		DataDir: c.DataDir, NATSURL: c.NATSURL, NATSAddr: c.NATSAddr, MongoURI: c.MongoURI, MongoAddr: c.MongoAddr,
		Store: c.Store, PostgresPort: c.PostgresPort, Database: c.Database,
		EdgeAddr: c.EdgeAddr, GRPCAddr: c.GRPCAddr, AdminAddrs: admin,
		JWTSecret: c.JWTSecret, ServiceToken: c.ServiceToken, DevMode: true, Seed: true,
		Env: withDefaults(env, devDefaults), Logger: log,
	})
	if err != nil {
		if errors.Is(err, config.ErrInvalid) {
			fmt.Fprintf(stderr, "talim dev: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "talim dev: %v\n", err)
		return 1
	}
	printBanner(stdout, st, time.Since(start))
	<-ctx.Done()
	fmt.Fprintln(stdout, "talim dev: shutting down")
	if err := st.Close(); err != nil {
		fmt.Fprintf(stderr, "talim dev: %v\n", err)
		return 1
	}
	return 0
}

// devDefaults are service settings that differ in talim dev unless set explicitly:
// Ctrl-C must stop everything within a few seconds, so the edge drains over 1s.
var devDefaults = map[string]string{
	"TALIM_EDGE_DRAIN_WINDOW": "1s",
}

// withDefaults returns env, falling back to defaults for unset variables.
func withDefaults(env func(string) (string, bool), defaults map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if v, ok := env(k); ok {
			return v, true
		}
		v, ok := defaults[k]
		return v, ok
	}
}

func printBanner(w io.Writer, st *Stack, took time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nTalim Realtime is running (ready in %s)\n\n", took.Round(time.Millisecond))
	fmt.Fprintf(&b, "  demo page     %s/\n", st.EdgeURL)
	fmt.Fprintf(&b, "  WebSocket     %s\n", st.WSURL)
	fmt.Fprintf(&b, "  Socket.IO     %s/socket.io/\n", st.EdgeURL)
	fmt.Fprintf(&b, "  gRPC          %s (ChatAdminService, NotificationService)\n", st.GRPCAddr)
	fmt.Fprintf(&b, "  NATS          %s\n", st.NATSURL)
	fmt.Fprintf(&b, "  MongoDB       %s (database %s)\n", st.MongoURI, st.Database)
	for _, name := range []string{"edge", "chat", "notification", "presence"} {
		fmt.Fprintf(&b, "  %-13s http://%s/readyz  /healthz  /metrics\n", name, st.AdminAddrs[name])
	}
	b.WriteString("\nDemo users (tokens valid 24h):\n")
	for _, u := range DemoUsers {
		tok, err := st.Token(u.UserID, u.Name, 24*time.Hour, u.Roles...)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "  %-3s %-18s %s?token=%s\n", u.UserID, u.Name, st.WSURL, tok)
	}
	b.WriteString("\nTry: talim notify --to s1 --title Hello --body 'from the backend'   (Ctrl-C stops everything)\n")
	fmt.Fprint(w, b.String())
}

func tokenCommand(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	var user, name, roles, secret, dataDir, issuer, audience string
	var ttl time.Duration
	ok := parse("token", args, env, stderr, func(s *config.Set) {
		s.String(&user, "user", "TALIM_TOKEN_USER", "", "user id (sub), required")
		s.String(&name, "name", "TALIM_TOKEN_NAME", "", "display name")
		s.String(&roles, "roles", "TALIM_TOKEN_ROLES", "", "comma-separated roles, e.g. teacher")
		s.Duration(&ttl, "ttl", "TALIM_TOKEN_TTL", 24*time.Hour, "validity")
		s.String(&secret, "jwt-secret", "TALIM_JWT_SECRET", "", "HS256 secret (default: the one talim dev generated)")
		s.String(&dataDir, "data-dir", "TALIM_DATA_DIR", "./data", "data directory of talim dev")
		s.String(&issuer, "issuer", "TALIM_JWT_ISSUER", "", "iss claim")
		s.String(&audience, "audience", "TALIM_JWT_AUDIENCE", "", "aud claim")
	})
	if !ok {
		return 2
	}
	if user == "" {
		fmt.Fprintln(stderr, "talim token: --user is required")
		return 2
	}
	if secret == "" {
		var err error
		if secret, err = ReadSecret(dataDir, JWTSecretFile); err != nil {
			fmt.Fprintf(stderr, "talim token: TALIM_JWT_SECRET: %v\n", err)
			return 2
		}
	}
	tok, err := auth.SignHS256(secret, auth.Claims{UserID: user, Name: name, Roles: config.SplitList(roles), ExpiresAt: time.Now().Add(ttl)}, issuer, audience)
	if err != nil {
		fmt.Fprintf(stderr, "talim token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

package notification

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/services/notification/internal/digest"
	"github.com/talim/realtime/services/notification/internal/reach"
	"github.com/talim/realtime/services/notification/internal/store"
)

// DigestConfig configures email digests (docs/operations.md "Email digests").
// Digests are off while SMTPHost is empty.
type DigestConfig struct {
	SMTPHost     string
	SMTPPort     int
	SMTPTLS      string // starttls, tls or none
	SMTPUsername string
	SMTPPassword string
	From         string
	// PublicURL is the https base URL at which HTTPAddr is reachable from the
	// internet (the unsubscribe link); AppURL is linked from the digest.
	PublicURL  string
	AppURL     string
	Secret     string
	HTTPAddr   string
	EveryHours int
	Tick       time.Duration
	// SMTPTLSConfig overrides TLS client settings (tests; not a variable).
	SMTPTLSConfig *tls.Config
}

// Register binds the configuration to flags and environment variables.
func (c *DigestConfig) Register(s *config.Set) {
	s.String(&c.SMTPHost, "smtp-host", "TALIM_SMTP_HOST", "", "SMTP server for email digests (empty: no digests)")
	s.Int(&c.SMTPPort, "smtp-port", "TALIM_SMTP_PORT", 587, 1, "SMTP port (587 with starttls, 465 with tls)")
	s.String(&c.SMTPTLS, "smtp-tls", "TALIM_SMTP_TLS", "starttls", "starttls (required), tls (implicit) or none (loopback relays only)")
	s.String(&c.SMTPUsername, "smtp-username", "TALIM_SMTP_USERNAME", "", "SMTP AUTH user name (empty: no AUTH)")
	s.String(&c.SMTPPassword, "smtp-password", "TALIM_SMTP_PASSWORD", "", "SMTP AUTH password")
	s.String(&c.From, "digest-from", "TALIM_DIGEST_FROM", "", "From address of digests, e.g. \"Talim <noreply@school.example>\"")
	s.String(&c.PublicURL, "digest-public-url", "TALIM_DIGEST_PUBLIC_URL", "", "https base URL of the unsubscribe endpoint")
	s.String(&c.AppURL, "digest-app-url", "TALIM_DIGEST_APP_URL", "", "link to the app in digests")
	s.String(&c.Secret, "digest-secret", "TALIM_DIGEST_SECRET", "", "HMAC key of unsubscribe links (at least 32 characters)")
	s.String(&c.HTTPAddr, "digest-http-addr", "TALIM_DIGEST_HTTP_ADDR", ":8088", "listen address of the unsubscribe endpoint")
	s.Int(&c.EveryHours, "digest-every-hours", "TALIM_DIGEST_EVERY_HOURS", digest.DefaultEveryHours, 1, "hours between digests unless the school sets its own")
	s.Duration(&c.Tick, "digest-tick", "TALIM_DIGEST_TICK", digest.DefaultTick, "how often due digests are looked for")
}

// Enabled reports whether digests are configured.
func (c DigestConfig) Enabled() bool { return c.SMTPHost != "" }

// Validate checks the configuration when digests are enabled.
func (c DigestConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	if c.SMTPPort < 1 || c.SMTPPort > 65535 {
		return config.Errorf("TALIM_SMTP_PORT", "want 1..65535")
	}
	switch c.SMTPTLS {
	case "starttls", "tls", "none":
	default:
		return config.Errorf("TALIM_SMTP_TLS", "want starttls, tls or none")
	}
	if c.SMTPUsername != "" && c.SMTPTLS == "none" {
		return config.Errorf("TALIM_SMTP_TLS", "SMTP AUTH without TLS would send the password in clear; use starttls or tls")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return config.Errorf("TALIM_DIGEST_FROM", "want an address such as \"Talim <noreply@school.example>\": %v", err)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		return config.Errorf("TALIM_DIGEST_PUBLIC_URL", "want an https URL without query (RFC 8058 one-click needs https)")
	}
	if len(c.Secret) < 32 {
		return config.Errorf("TALIM_DIGEST_SECRET", "want at least 32 characters")
	}
	if err := config.ValidateAddr(c.HTTPAddr); err != nil {
		return config.Errorf("TALIM_DIGEST_HTTP_ADDR", "%v", err)
	}
	if c.Tick < 0 {
		return config.Errorf("TALIM_DIGEST_TICK", "want a positive duration")
	}
	return nil
}

// reachRuntime is the running preferences service and digest scheduler.
type reachRuntime struct {
	svc    *reach.Service
	gate   *reach.Gate
	stop   context.CancelFunc
	done   chan struct{}
	http   *http.Server
	addr   string
	runner *digest.Runner
}

// startReach builds preferences, the gate and, when configured, the digest
// scheduler and its unsubscribe endpoint.
func startReach(ctx context.Context, cfg DigestConfig, db *mongo.Database, nc *nats.Conn, notes *store.Store, owner string, log *slog.Logger) (*reachRuntime, error) {
	rs := reach.NewStore(db)
	r := &reachRuntime{svc: reach.NewService(rs), gate: reach.NewGate(rs), done: make(chan struct{})}
	if !cfg.Enabled() {
		close(r.done)
		return r, nil
	}
	sched := digest.NewSchedule(db)
	if err := sched.EnsureIndexes(ctx); err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(net.JoinHostPort(cfg.SMTPHost, "0"))
	r.runner = digest.New(digest.Options{
		Schedule: sched, Inbox: digest.StoreInbox{Store: notes}, Directs: digest.ChatDirects{NC: nc}, Gate: r.gate, Users: r.svc,
		Sender: digest.NewSMTPSender(digest.SMTPConfig{Host: host, Port: cfg.SMTPPort, TLS: cfg.SMTPTLS, Username: cfg.SMTPUsername,
			Password: cfg.SMTPPassword, TLSConfig: cfg.SMTPTLSConfig}),
		From: cfg.From, PublicURL: cfg.PublicURL, AppURL: cfg.AppURL, Secret: []byte(cfg.Secret),
		EveryHours: cfg.EveryHours, Tick: cfg.Tick, Owner: owner, Log: log.With("component", "digest"),
	})
	r.svc.OnChange = func(ctx context.Context, userID string) {
		if err := r.runner.Enrol(ctx, userID); err != nil {
			log.Warn("enrol for digests", "user", userID, "err", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("digest http: %w", err)
	}
	r.addr = ln.Addr().String()
	r.http = &http.Server{Handler: digest.Handler([]byte(cfg.Secret), rs, log), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := r.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("digest http", "err", err)
		}
	}()
	rctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	go func() { defer close(r.done); r.runner.Run(rctx) }()
	return r, nil
}

func (r *reachRuntime) close(ctx context.Context) {
	if r.http != nil {
		_ = r.http.Shutdown(ctx)
	}
	if r.stop != nil {
		r.stop()
	}
	<-r.done
}

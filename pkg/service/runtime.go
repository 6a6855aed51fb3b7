package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/talim/realtime/pkg/admin"
	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/lifecycle"
	"github.com/talim/realtime/pkg/logging"
	"github.com/talim/realtime/pkg/mongox"
	"github.com/talim/realtime/pkg/natsx"
	"github.com/talim/realtime/pkg/tracing"
)

// RuntimeOptions configures StartRuntime.
type RuntimeOptions struct {
	Name      string // service name: edge, chat, notification, presence
	NATS      NATS
	Mongo     *Mongo // nil when the service has no store
	AdminAddr string
	Logger    *slog.Logger
	// Checks are readiness checks registered before the admin server answers,
	// so /readyz can never report ready before they pass (a check added after
	// StartRuntime returns leaves a window in which only NATS is checked).
	Checks map[string]admin.Check
}

// Runtime is what every service process holds: its logger, admin server, NATS
// connection, optional MongoDB database and the NATS health responder.
type Runtime struct {
	Name       string
	InstanceID string
	Log        *slog.Logger
	Admin      *admin.Server
	NC         *nats.Conn
	Mongo      *mongo.Client
	DB         *mongo.Database

	started     atomic.Bool
	adminCancel context.CancelFunc
	adminDone   chan error
	closeOnce   sync.Once
}

// StartRuntime connects to NATS (and MongoDB when configured), starts the admin
// server and answers NATS health requests. Readiness checks for NATS and the store
// are registered; services add their own.
func StartRuntime(ctx context.Context, o RuntimeOptions) (*Runtime, error) {
	log := o.Logger
	if log == nil {
		log = logging.Discard()
	}
	r := &Runtime{Name: o.Name, InstanceID: InstanceID(o.Name), Log: log.With("service", o.Name)}
	r.Admin = admin.New(r.Log)
	connected := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "talim_nats_connected", Help: "1 while the NATS connection is up.",
		ConstLabels: prometheus.Labels{"service": o.Name},
	})
	r.Admin.Registry().MustRegister(connected)
	for name, c := range o.Checks {
		r.Admin.AddCheck(name, c)
	}
	// Unready until the service says it serves (Started): connected is not
	// serving, and a probe between the two must not send work here.
	r.Admin.AddCheck("started", func(context.Context) error {
		if !r.started.Load() {
			return errors.New("starting")
		}
		return nil
	})
	if err := r.Admin.Listen(o.AdminAddr); err != nil {
		return nil, err
	}
	actx, cancel := context.WithCancel(context.Background())
	r.adminCancel, r.adminDone = cancel, make(chan error, 1)
	go func() { r.adminDone <- r.Admin.Serve(actx) }()

	nc, err := natsx.Connect(ctx, natsx.Options{
		URL: o.NATS.URL, Name: r.InstanceID, User: o.NATS.User, Password: o.NATS.Password,
		Creds: o.NATS.Creds, Logger: r.Log, Connected: connected,
	})
	if err != nil {
		r.Close(context.Background())
		return nil, err
	}
	r.NC = nc
	r.Admin.AddCheck("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return errors.New("nats not connected")
		}
		return nil
	})
	if o.Mongo != nil {
		client, err := mongox.Connect(ctx, o.Mongo.URI, r.InstanceID, 10*time.Second)
		if err != nil {
			r.Close(context.Background())
			return nil, err
		}
		r.Mongo, r.DB = client, client.Database(o.Mongo.Database)
		r.Admin.AddCheck("mongodb", func(ctx context.Context) error { return mongox.Ping(ctx, client, 2*time.Second) })
	}
	if _, err := command.ServeHealth(nc, o.Name, r.InstanceID, Version, func(ctx context.Context) bool {
		return len(r.Admin.Ready(ctx)) == 0
	}); err != nil {
		r.Close(context.Background())
		return nil, err
	}
	return r, nil
}

// Started marks the service as serving: its handlers are subscribed and its
// ports listen. Until then /readyz and the NATS health answer are unready.
func (r *Runtime) Started() { r.started.Store(true) }

// Close drains NATS, disconnects the store and stops the admin server, in that
// order, within ctx (or 5s when ctx has no deadline).
func (r *Runtime) Close(ctx context.Context) {
	r.closeOnce.Do(func() {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
		}
		if r.NC != nil {
			left := time.Until(deadline(ctx))
			natsx.Drain(r.NC, max(left, 100*time.Millisecond))
		}
		if r.Mongo != nil {
			_ = r.Mongo.Disconnect(ctx)
		}
		if r.adminCancel != nil {
			r.adminCancel()
			if err := <-r.adminDone; err != nil {
				r.Log.Warn("admin server stopped", "err", err)
			}
		}
	})
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// Main is the whole body of a service's main(): it registers configuration with
// register, parses flags and environment, builds the logger and calls run with a
// context cancelled on SIGINT/SIGTERM. Tracing is set up from the OTEL_* variables
// (tracing.Setup: off unless an exporter is configured). A configuration error prints one line naming
// the variable and exits with status 2; a run error exits with status 1.
func Main(name string, register func(*config.Set), run func(context.Context, *slog.Logger) error) {
	os.Exit(MainArgs(name, os.Args[1:], os.Stderr, register, run))
}

// MainArgs is Main without the exit, for tests.
func MainArgs(name string, args []string, stderr io.Writer, register func(*config.Set), run func(context.Context, *slog.Logger) error) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	set := config.NewSet(fs, nil)
	var lg Log
	lg.Register(set, "json")
	register(set)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := set.Load(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	log, err := logging.New(os.Stderr, lg.Format, lg.Level)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v: TALIM_LOG_FORMAT/TALIM_LOG_LEVEL\n", name, err)
		return 2
	}
	ctx, stop := lifecycle.SignalContext(context.Background())
	defer stop()
	shutdownTracing, err := tracing.Setup(ctx, tracing.Options{Service: "talim-" + name, Version: Version, Env: os.LookupEnv, Console: os.Stdout})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(fctx); err != nil {
			log.Warn("tracing shutdown", "err", err)
		}
	}()
	if err := run(ctx, log); err != nil {
		if errors.Is(err, config.ErrInvalid) {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 2
		}
		log.Error("exit", "err", err)
		return 1
	}
	return 0
}

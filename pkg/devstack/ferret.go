package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// FerretDB handlers supported by StartFerretDB.
const (
	FerretHandlerSQLite     = "sqlite"
	FerretHandlerPostgreSQL = "postgresql"
)

// ferretReadyTimeout bounds the readiness probe of StartFerretDB when ctx has
// no earlier deadline.
const ferretReadyTimeout = 30 * time.Second

// ferretNewMu serialises ferretdb.New, which is not safe for concurrent use.
var ferretNewMu sync.Mutex

// FerretOptions configures StartFerretDB.
type FerretOptions struct {
	// ListenAddr is the TCP listen address. Empty means "127.0.0.1:0", a
	// free loopback port chosen by the kernel (see (*FerretDB).MongoURI).
	ListenAddr string
	// Handler is FerretHandlerSQLite (default) or FerretHandlerPostgreSQL.
	Handler string
	// Dir is the SQLite data directory (sqlite handler); it is created if
	// missing. One SQLite file per MongoDB database is kept there.
	Dir string
	// PostgreSQLURL is the postgres:// URL of the backing database
	// (postgresql handler), e.g. (*Postgres).URL().
	PostgreSQLURL string
	// Logger receives FerretDB's warnings and errors when Verbose is set.
	Logger *slog.Logger
	// Verbose routes FerretDB's own logs (warn and above) to Logger, or to
	// stderr when Logger is nil. Otherwise they are discarded.
	Verbose bool
}

// FerretDB is a running embedded FerretDB (v1) instance.
type FerretDB struct {
	f      *ferretdb.FerretDB
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// StartFerretDB starts an embedded FerretDB speaking the MongoDB wire
// protocol on a loopback TCP address and waits until it answers commands.
// FerretDB v1 does not enforce authentication in this mode, so clients
// connect without credentials. The server runs until Close is called; ctx
// only bounds the startup.
func StartFerretDB(ctx context.Context, opts FerretOptions) (*FerretDB, error) {
	f, err := startFerretDB(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("start ferretdb: %w", err)
	}
	return f, nil
}

func startFerretDB(ctx context.Context, opts FerretOptions) (*FerretDB, error) {
	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: opts.ListenAddr},
		Handler:  opts.Handler,
	}
	if cfg.Listener.TCP == "" {
		cfg.Listener.TCP = "127.0.0.1:0"
	}
	if cfg.Handler == "" {
		cfg.Handler = FerretHandlerSQLite
	}
	switch cfg.Handler {
	case FerretHandlerSQLite:
		if opts.Dir == "" {
			return nil, errors.New("sqlite handler needs a data directory (FerretOptions.Dir)")
		}
		dir, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		// FerretDB wants a file: URI naming an existing directory, with a
		// trailing slash.
		cfg.SQLiteURL = "file:" + filepath.ToSlash(dir) + "/"
	case FerretHandlerPostgreSQL:
		if opts.PostgreSQLURL == "" {
			return nil, errors.New("postgresql handler needs FerretOptions.PostgreSQLURL")
		}
		cfg.PostgreSQLURL = opts.PostgreSQLURL
	default:
		return nil, fmt.Errorf("unknown handler %q (want %q or %q)", cfg.Handler, FerretHandlerSQLite, FerretHandlerPostgreSQL)
	}

	logger := discardLogger(nil)
	if opts.Verbose {
		base := opts.Logger
		if base == nil {
			base = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		logger = slog.New(minLevelHandler{min: slog.LevelWarn, h: base.Handler()}).With("component", "ferretdb")
	}
	cfg.Logger = logger

	// ferretdb.New opens the backend and binds the listener, so port 0
	// works and a busy fixed port fails right here. It also writes a package
	// global (the version's Package field), so concurrent starts are serialised.
	ferretNewMu.Lock()
	f, err := ferretdb.New(cfg)
	ferretNewMu.Unlock()
	if err != nil {
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	fd := &FerretDB{f: f, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(fd.done)
		_ = f.Run(runCtx)
	}()
	fd.uri = f.MongoDBURI()

	if err := fd.probe(ctx); err != nil {
		fd.Close()
		return nil, err
	}
	return fd, nil
}

// probe connects with the MongoDB driver and runs a command that reaches the
// backend (listDatabases), so that a broken PostgreSQL URL fails startup
// instead of the first real query.
func (f *FerretDB) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ferretReadyTimeout)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(f.uri).SetServerSelectionTimeout(ferretReadyTimeout))
	if err != nil {
		return fmt.Errorf("probe: connect: %w", err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		_ = client.Disconnect(dctx)
	}()
	if _, err := client.ListDatabaseNames(ctx, map[string]any{}); err != nil {
		return fmt.Errorf("probe: list databases: %w", err)
	}
	return nil
}

// MongoURI returns a mongodb:// URI for this instance, e.g.
// "mongodb://127.0.0.1:40123/". It carries no database name and no
// credentials.
func (f *FerretDB) MongoURI() string { return f.uri }

// Close stops FerretDB and waits until the listener, all client connections
// and the backend are closed. Clients still connected get up to about three
// seconds to disconnect, so disconnect them first for a fast shutdown.
// Close is safe to call more than once.
func (f *FerretDB) Close() {
	f.once.Do(func() {
		f.cancel()
		<-f.done
	})
}

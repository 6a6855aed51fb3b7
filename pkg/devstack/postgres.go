package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for StartPostgres.
const (
	DefaultPGPort     = 5433
	DefaultPGUser     = "postgres"
	DefaultPGDatabase = "ferretdb"
	// pgSystemUser is the OS account created by Debian's postgresql package;
	// initdb and postgres refuse to run as root, so we switch to it.
	pgSystemUser = "postgres"
	// pgBinGlob locates Debian's per-version PostgreSQL binaries.
	pgBinGlob = "/usr/lib/postgresql/*/bin"
)

// Timeouts for the PostgreSQL commands StartPostgres runs.
const (
	pgInitTimeout  = 2 * time.Minute
	pgStartTimeout = 60 * time.Second
	pgStopTimeout  = 60 * time.Second
	pgQuickTimeout = 15 * time.Second
)

// ErrPostgresNotInstalled is returned (wrapped) by StartPostgres and
// FindPostgresBin when the PostgreSQL server binaries are missing.
var ErrPostgresNotInstalled = errors.New("postgresql server binaries not found under " + pgBinGlob + " (install them with `apt-get install postgresql`)")

// PGOptions configures StartPostgres.
type PGOptions struct {
	// Dir holds the cluster: Dir/data is PGDATA and Dir/postgres.log the
	// server log. Required. When run as root, Dir is chowned to the
	// `postgres` system user, and its parents must be traversable by it.
	Dir string
	// Port is the TCP port on 127.0.0.1 (default DefaultPGPort, 5433).
	Port int
	// User is the database superuser name (default "postgres"). It
	// authenticates with trust (no password) from loopback only.
	User string
	// Database is created if missing (default "ferretdb").
	Database string
	// BinDir overrides where initdb, pg_ctl, pg_isready and psql are found
	// (default: the newest /usr/lib/postgresql/*/bin).
	BinDir string
	// Logger receives progress messages. Nil discards them.
	Logger *slog.Logger
}

// Postgres is a private PostgreSQL cluster started by StartPostgres.
type Postgres struct {
	opts   PGOptions
	pgdata string
	bin    string
	log    *slog.Logger
	once   sync.Once
	stopEr error
}

// FindPostgresBin returns the newest Debian PostgreSQL bin directory that
// contains initdb and pg_ctl, or an error wrapping ErrPostgresNotInstalled.
func FindPostgresBin() (string, error) {
	dirs, _ := filepath.Glob(pgBinGlob)
	type cand struct {
		dir string
		ver float64
	}
	var cands []cand
	for _, d := range dirs {
		if !isExecutable(filepath.Join(d, "initdb")) || !isExecutable(filepath.Join(d, "pg_ctl")) {
			continue
		}
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		cands = append(cands, cand{d, v})
	}
	if len(cands) == 0 {
		return "", ErrPostgresNotInstalled
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].ver > cands[j].ver })
	return cands[0].dir, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// StartPostgres starts (initialising it first if needed) a private
// PostgreSQL cluster listening only on 127.0.0.1:opts.Port, with trust
// authentication for opts.User, and makes sure opts.Database exists. An
// existing cluster in opts.Dir is reused, and a server already running on it
// is adopted. Stop shuts the server down.
func StartPostgres(ctx context.Context, opts PGOptions) (*Postgres, error) {
	p, err := startPostgres(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	return p, nil
}

func startPostgres(ctx context.Context, opts PGOptions) (*Postgres, error) {
	if opts.Dir == "" {
		return nil, errors.New("PGOptions.Dir is required")
	}
	if opts.Port == 0 {
		opts.Port = DefaultPGPort
	}
	if opts.User == "" {
		opts.User = DefaultPGUser
	}
	if opts.Database == "" {
		opts.Database = DefaultPGDatabase
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	opts.Dir = dir
	bin := opts.BinDir
	if bin == "" {
		if bin, err = FindPostgresBin(); err != nil {
			return nil, err
		}
	}
	p := &Postgres{opts: opts, pgdata: filepath.Join(dir, "data"), bin: bin, log: discardLogger(opts.Logger)}

	if err := p.prepareDir(ctx); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(p.pgdata, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		p.log.Info("initialising postgresql cluster", "pgdata", p.pgdata)
		if err := p.run(ctx, pgInitTimeout, "initdb",
			"-D", p.pgdata, "-U", opts.User, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("stat PG_VERSION: %w", err)
	}
	if err := p.writeConfig(); err != nil {
		return nil, err
	}

	// pg_ctl status exits 0 when a server is running on this data dir.
	if p.run(ctx, pgQuickTimeout, "pg_ctl", "status", "-D", p.pgdata) == nil {
		p.log.Info("postgresql already running, reusing it", "pgdata", p.pgdata)
	} else {
		p.log.Info("starting postgresql", "pgdata", p.pgdata, "port", opts.Port)
		if err := p.run(ctx, pgStartTimeout, "pg_ctl", "start", "-D", p.pgdata, "-w",
			"-t", strconv.Itoa(int(pgStartTimeout/time.Second)-5),
			"-l", filepath.Join(dir, "postgres.log"),
			"-o", "-p "+strconv.Itoa(opts.Port)); err != nil {
			return nil, fmt.Errorf("%w (see %s)", err, filepath.Join(dir, "postgres.log"))
		}
	}
	if err := p.waitReady(ctx); err != nil {
		_ = p.Stop()
		return nil, err
	}
	if err := p.ensureDatabase(ctx); err != nil {
		_ = p.Stop()
		return nil, err
	}
	if err := p.installGINTwins(ctx); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

// prepareDir creates opts.Dir and, as root, hands it to the postgres user.
func (p *Postgres) prepareDir(ctx context.Context) error {
	if err := os.MkdirAll(p.opts.Dir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(pgSystemUser)
	if err != nil {
		return fmt.Errorf("look up %q system user (created by `apt-get install postgresql`): %w", pgSystemUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	err = filepath.Walk(p.opts.Dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("chown data dir to %s: %w", pgSystemUser, err)
	}
	if err := p.run(ctx, pgQuickTimeout, "test", "-w", p.opts.Dir, "-a", "-x", p.opts.Dir); err != nil {
		return fmt.Errorf("data dir %s is not accessible to the %s user; make its parent directories traversable (chmod o+x): %w",
			p.opts.Dir, pgSystemUser, err)
	}
	return nil
}

// writeConfig (re)writes the settings that make the cluster private:
// loopback only, no Unix socket (which avoids clashing with a system
// cluster's /var/run/postgresql), trust only from loopback.
func (p *Postgres) writeConfig() error {
	const include = "include_if_exists = 'talim_devstack.conf'\n"
	confPath := filepath.Join(p.pgdata, "postgresql.conf")
	conf, err := os.ReadFile(confPath)
	if err != nil {
		return fmt.Errorf("read postgresql.conf: %w", err)
	}
	if !bytes.Contains(conf, []byte(include)) {
		conf = append(conf, "\n# Added by talim devstack.\n"+include...)
		if err := os.WriteFile(confPath, conf, 0o600); err != nil {
			return fmt.Errorf("write postgresql.conf: %w", err)
		}
	}
	settings := "# Written by talim devstack on every start.\n" +
		"listen_addresses = '127.0.0.1'\n" +
		"port = " + strconv.Itoa(p.opts.Port) + "\n" +
		"unix_socket_directories = ''\n" +
		"max_connections = 200\n" +
		// FerretDB's filters name the field by a parameter (_jsonb->$1 @> $2):
		// only a plan made for the actual values can use an index (postgres_gin.go).
		"plan_cache_mode = force_custom_plan\n"
	hba := "# Written by talim devstack: trust from loopback only.\n" +
		"host all all 127.0.0.1/32 trust\n"
	for name, content := range map[string]string{"talim_devstack.conf": settings, "pg_hba.conf": hba} {
		if err := os.WriteFile(filepath.Join(p.pgdata, name), []byte(content), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return p.chownPGData()
}

func (p *Postgres) chownPGData() error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(pgSystemUser)
	if err != nil {
		return fmt.Errorf("look up %q system user: %w", pgSystemUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, name := range []string{"postgresql.conf", "talim_devstack.conf", "pg_hba.conf"} {
		if err := os.Chown(filepath.Join(p.pgdata, name), uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", name, err)
		}
	}
	return nil
}

// waitReady polls pg_isready until the server accepts connections.
func (p *Postgres) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pgStartTimeout)
	defer cancel()
	var last error
	for {
		last = p.run(ctx, pgQuickTimeout, "pg_isready", "-q", "-h", "127.0.0.1",
			"-p", strconv.Itoa(p.opts.Port), "-U", p.opts.User, "-d", "postgres", "-t", "2")
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgresql not ready on 127.0.0.1:%d: %w (last: %v)", p.opts.Port, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ensureDatabase creates opts.Database unless it exists.
func (p *Postgres) ensureDatabase(ctx context.Context) error {
	out, err := p.output(ctx, pgQuickTimeout, "psql", "-X", "-q", "-t", "-A",
		"-h", "127.0.0.1", "-p", strconv.Itoa(p.opts.Port), "-U", p.opts.User, "-d", "postgres",
		"-c", "SELECT 1 FROM pg_database WHERE datname = '"+strings.ReplaceAll(p.opts.Database, "'", "''")+"'")
	if err != nil {
		return fmt.Errorf("check database %q: %w", p.opts.Database, err)
	}
	if strings.TrimSpace(out) == "1" {
		return nil
	}
	if err := p.run(ctx, pgQuickTimeout, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(p.opts.Port),
		"-U", p.opts.User, p.opts.Database); err != nil {
		return fmt.Errorf("create database %q: %w", p.opts.Database, err)
	}
	return nil
}

// URL returns a postgres:// URL for the database, suitable for
// FerretOptions.PostgreSQLURL.
func (p *Postgres) URL() string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(p.opts.User),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(p.opts.Port)),
		Path:     "/" + p.opts.Database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on (127.0.0.1 only).
func (p *Postgres) Port() int { return p.opts.Port }

// Stop shuts the server down (pg_ctl stop -m fast) and waits for it. The data
// directory is kept. Stop is safe to call more than once; later calls return
// the first call's result.
func (p *Postgres) Stop() error {
	p.once.Do(func() {
		ctx := context.Background()
		if p.run(ctx, pgQuickTimeout, "pg_ctl", "status", "-D", p.pgdata) != nil {
			return // not running
		}
		if err := p.run(ctx, pgStopTimeout, "pg_ctl", "stop", "-D", p.pgdata, "-m", "fast", "-w",
			"-t", strconv.Itoa(int(pgStopTimeout/time.Second)-5)); err != nil {
			p.stopEr = fmt.Errorf("stop postgres: %w", err)
		}
	})
	return p.stopEr
}

// run runs a PostgreSQL tool (or, for "test", the shell utility) with a
// timeout, as the postgres system user when we are root.
func (p *Postgres) run(ctx context.Context, timeout time.Duration, tool string, args ...string) error {
	_, err := p.output(ctx, timeout, tool, args...)
	return err
}

func (p *Postgres) output(ctx context.Context, timeout time.Duration, tool string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path := tool
	if tool != "test" {
		path = filepath.Join(p.bin, tool)
	}
	name, argv := path, args
	if os.Geteuid() == 0 {
		name, argv = "runuser", append([]string{"-u", pgSystemUser, "--", path}, args...)
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Dir = "/"
	// Keep the caller's PG* variables from redirecting the tools.
	cmd.Env = append(filteredEnv(), "PGCONNECT_TIMEOUT=5")
	// pg_ctl start leaves postgres running with our stdout/stderr otherwise;
	// use buffers plus WaitDelay so Wait never blocks on inherited pipes.
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if ctx.Err() != nil {
			return stdout.String(), fmt.Errorf("%s: timed out after %s: %w: %s", tool, timeout, err, msg)
		}
		return stdout.String(), fmt.Errorf("%s: %w: %s", tool, err, msg)
	}
	return stdout.String(), nil
}

func filteredEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

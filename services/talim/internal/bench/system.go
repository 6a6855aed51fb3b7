package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Target is the system under test.
type Target struct {
	WSURL        string // ws://127.0.0.1:port/ws
	GRPCAddr     string
	NATSURL      string
	JWTSecret    string
	ServiceToken string
	// PIDs to measure: Edge is the process holding the connections (the standalone edge
	// or the talim dev process), Services the talim dev process when the edge runs
	// alone; the PostgreSQL processes are found as Services' descendants.
	EdgePID, ServicesPID int
	// StoreMatch finds the store's processes by command line (the bench's data dir).
	StoreMatch string
	// Admin HTTP addresses (/metrics, and /debug/pprof/ when TALIM_ADMIN_PPROF is
	// set): ServicesAdmin by service name (chat, notification, presence) in the
	// services' process, EdgeAdmin the edge's. Empty: not scraped.
	ServicesAdmin map[string]string
	EdgeAdmin     string
}

func (t *Target) adminAddrs() []string {
	var as []string
	for _, a := range t.ServicesAdmin {
		as = append(as, a)
	}
	if t.EdgeAdmin != "" {
		as = append(as, t.EdgeAdmin)
	}
	return as
}

// ChildEnv are the variables the bench sets for the system it starts, and documents
// in every report: the per-connection command limit (20/s by default) and the
// per-address connect limit would otherwise throttle the load, not the system.
var ChildEnv = []string{
	"TALIM_EDGE_COMMAND_RATE=100000",
	"TALIM_EDGE_COMMAND_BURST=100000",
	"TALIM_EDGE_CONNECT_RATE=1000000",
	"TALIM_EDGE_CONNECT_BURST=1000000",
	"TALIM_LOG_LEVEL=warn",
}

// SystemOptions configures StartSystem.
type SystemOptions struct {
	// Exe is the talim binary (default: this executable); it must understand `dev` and
	// the hidden `bench edge`.
	Exe string
	// Store is TALIM_DEV_STORE (postgresql by default).
	Store string
	// EdgeAlone runs the edge in its own process (talim bench edge) next to talim dev,
	// so its RSS and CPU are the edge's alone.
	EdgeAlone bool
	// Env is added to the children's environment after ChildEnv.
	Env []string
	// Dir is the data directory (default: a temp dir removed by Close).
	Dir string
	// Log receives the children's output (default: a file in the data dir).
	Log io.Writer
	// Pprof sets TALIM_ADMIN_PPROF=true for the children: their admin ports serve
	// /debug/pprof/.
	Pprof bool
}

// System is a started system: talim dev and maybe a standalone edge.
type System struct {
	Target
	dev, edge *exec.Cmd
	dir       string
	rmDir     bool
	logFile   *os.File
}

func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// StartSystem starts `talim dev` (and `talim bench edge` with EdgeAlone) as child
// processes on spare loopback ports and waits until they serve.
func StartSystem(ctx context.Context, o SystemOptions) (s *System, err error) {
	if o.Exe == "" {
		if o.Exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if o.Store == "" {
		o.Store = "postgresql"
	}
	s = &System{dir: o.Dir}
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "talim-bench-"); err != nil {
			return nil, err
		}
		s.rmDir = true
	}
	sys := s
	defer func() {
		if err != nil {
			sys.rmDir = false // keep the log for the error message
			sys.Close()
		}
	}()
	logw := o.Log
	if logw == nil {
		if s.logFile, err = os.Create(filepath.Join(s.dir, "system.log")); err != nil {
			return nil, err
		}
		logw = s.logFile
	}
	// PostgreSQL runs as the postgres user when we are root: it must traverse to
	// data/postgres, so the directories above it are o+x (not readable).
	if err := os.MkdirAll(filepath.Join(s.dir, "data"), 0o711); err != nil {
		return nil, err
	}
	for _, d := range []string{s.dir, filepath.Join(s.dir, "data")} {
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, err
		}
	}
	p, err := freePorts(7)
	if err != nil {
		return nil, err
	}
	// talim dev's admin ports are base (edge), base+1 (chat), +2 (notification),
	// +3 (presence): four free ports in a row.
	adminBase, err := freeRun(4)
	if err != nil {
		return nil, err
	}
	edgeAddr := fmt.Sprintf("127.0.0.1:%d", p[0])
	s.GRPCAddr = fmt.Sprintf("127.0.0.1:%d", p[1])
	s.NATSURL = fmt.Sprintf("nats://127.0.0.1:%d", p[2])
	env := append(os.Environ(), ChildEnv...)
	if o.Pprof {
		env = append(env, "TALIM_ADMIN_PPROF=true")
	}
	env = append(env, o.Env...)
	devEnv := append(env,
		"TALIM_DATA_DIR="+filepath.Join(s.dir, "data"),
		"TALIM_EDGE_ADDR="+edgeAddr,
		"TALIM_GRPC_ADDR="+s.GRPCAddr,
		fmt.Sprintf("TALIM_DEV_NATS_ADDR=127.0.0.1:%d", p[2]),
		fmt.Sprintf("TALIM_DEV_MONGO_ADDR=127.0.0.1:%d", p[3]),
		fmt.Sprintf("TALIM_DEV_PG_PORT=%d", p[4]),
		fmt.Sprintf("TALIM_DEV_ADMIN_BASE_PORT=%d", adminBase),
		"TALIM_DEV_STORE="+o.Store,
	)
	s.dev = exec.Command(o.Exe, "dev")
	s.dev.Env = devEnv
	s.dev.Stderr = logw
	out, err := s.dev.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.dev.Start(); err != nil {
		return nil, fmt.Errorf("start talim dev: %w", err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logw, line)
			if !found && strings.Contains(line, "Talim Realtime is running") {
				found = true
				ready <- nil
			}
		}
		if !found {
			ready <- errors.New("talim dev exited before it was ready")
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			return nil, fmt.Errorf("%w (log: %s)", err, filepath.Join(s.dir, "system.log"))
		}
	case <-time.After(3 * time.Minute):
		return nil, fmt.Errorf("talim dev: not ready within 3 minutes (log: %s)", filepath.Join(s.dir, "system.log"))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.JWTSecret, err = readTrim(filepath.Join(s.dir, "data", "jwt-secret")); err != nil {
		return nil, err
	}
	if s.ServiceToken, err = readTrim(filepath.Join(s.dir, "data", "service-token")); err != nil {
		return nil, err
	}
	s.ServicesPID = s.dev.Process.Pid
	s.StoreMatch = filepath.Join(s.dir, "data", "postgres")
	s.EdgePID = s.dev.Process.Pid
	s.WSURL = "ws://" + edgeAddr + "/ws"
	s.ServicesAdmin = map[string]string{}
	for i, name := range []string{"chat", "notification", "presence"} {
		s.ServicesAdmin[name] = fmt.Sprintf("127.0.0.1:%d", adminBase+1+i)
	}
	s.EdgeAdmin = fmt.Sprintf("127.0.0.1:%d", adminBase)
	if o.EdgeAlone {
		alone := fmt.Sprintf("127.0.0.1:%d", p[5])
		s.EdgeAdmin = fmt.Sprintf("127.0.0.1:%d", p[6])
		s.edge = exec.Command(o.Exe, "bench", "edge")
		s.edge.Env = append(env, "TALIM_EDGE_ADDR="+alone, "NATS_URL="+s.NATSURL,
			"TALIM_JWT_SECRET="+s.JWTSecret, "TALIM_ADMIN_ADDR="+s.EdgeAdmin)
		s.edge.Stdout, s.edge.Stderr = logw, logw
		if err := s.edge.Start(); err != nil {
			return nil, fmt.Errorf("start standalone edge: %w", err)
		}
		if err := waitHTTP(ctx, "http://"+alone+"/ws", 60*time.Second); err != nil {
			return nil, fmt.Errorf("standalone edge: %w", err)
		}
		s.EdgePID = s.edge.Process.Pid
		s.WSURL = "ws://" + alone + "/ws"
	}
	return s, nil
}

// freeRun returns the first of n consecutive free loopback ports (tried from
// kernel-chosen ports; a port may still be taken by someone else before it is used).
func freeRun(n int) (int, error) {
	for range 50 {
		ps, err := freePorts(1)
		if err != nil {
			return 0, err
		}
		base := ps[0]
		if base+n-1 > 65535 {
			continue
		}
		ok := true
		for q := base + 1; q < base+n && ok; q++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free loopback ports", n)
}

func readTrim(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// waitHTTP polls url until it answers with any HTTP status.
func waitHTTP(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	cl := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := cl.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: no answer within %s", url, d)
}

// Close stops the children (SIGTERM, then SIGKILL after 30 s) and removes the temp dir.
func (s *System) Close() {
	for _, c := range []*exec.Cmd{s.edge, s.dev} {
		if c == nil || c.Process == nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
	if s.logFile != nil {
		s.logFile.Close()
	}
	if s.rmDir {
		os.RemoveAll(s.dir)
	}
}

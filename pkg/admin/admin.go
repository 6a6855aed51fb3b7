// Package admin serves a service's operational HTTP endpoints: /healthz (the process
// is alive), /readyz (dependencies are reachable and the service accepts work) and
// Prometheus /metrics.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness check; it returns nil when the dependency is fine.
type Check func(ctx context.Context) error

// Server is an admin HTTP server. The zero value is not usable; call New.
type Server struct {
	log      *slog.Logger
	registry *prometheus.Registry
	mux      *http.ServeMux
	srv      *http.Server
	ln       net.Listener

	mu       sync.Mutex
	checks   map[string]Check
	draining atomic.Bool
}

// New returns a server with its own Prometheus registry (Go and process collectors
// registered) listening on addr once Start is called.
func New(log *slog.Logger) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{log: log, registry: reg, mux: http.NewServeMux(), checks: map[string]Check{}}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if PprofEnabled() {
		s.EnablePprof()
	}
	return s
}

// PprofEnabled reports whether the profiling endpoints are wanted: when
// TALIM_ADMIN_PPROF or TALIM_DEV_MODE is true. Never by default: a profile costs
// CPU and reveals internals, so production enables it deliberately.
func PprofEnabled() bool {
	for _, v := range []string{"TALIM_ADMIN_PPROF", "TALIM_DEV_MODE"} {
		if b, err := strconv.ParseBool(os.Getenv(v)); err == nil && b {
			return true
		}
	}
	return false
}

// EnablePprof serves net/http/pprof under /debug/pprof/ (CPU profile:
// /debug/pprof/profile?seconds=N; heap, goroutine, mutex and block profiles).
func (s *Server) EnablePprof() {
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// Registry is where the service registers its metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Mux lets a service add endpoints (e.g. pprof in development).
func (s *Server) Mux() *http.ServeMux { return s.mux }

// AddCheck registers a readiness check under name.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// SetDraining makes /readyz fail from now on, so load balancers stop sending work
// before the service shuts down.
func (s *Server) SetDraining() { s.draining.Store(true) }

// Ready runs every check (each bounded by 2s) and returns the failures by name.
func (s *Server) Ready(ctx context.Context) map[string]string {
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	s.mu.Unlock()
	failed := map[string]string{}
	if s.draining.Load() {
		failed["draining"] = "shutting down"
	}
	for name, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := c(cctx); err != nil {
			failed[name] = err.Error()
		}
		cancel()
	}
	return failed
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	failed := s.Ready(r.Context())
	if len(failed) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unready", "failed": failed})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

// Listen binds addr; Addr then reports the bound address (useful with port 0).
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address after Listen.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Serve serves until ctx ends, then shuts down within 5s.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		return errors.New("admin: Listen not called")
	}
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin serve: %w", err)
		}
		return nil
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

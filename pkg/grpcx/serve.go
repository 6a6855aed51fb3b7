package grpcx

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Start binds addr and serves in the background. Errors reports a serve failure;
// Addr the bound address. Health checks answer NOT_SERVING until MarkServing.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("grpc listen %s: %w", addr, err)
	}
	s.addr = ln.Addr().String()
	s.errc = make(chan error, 1)
	go func() {
		if err := s.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.errc <- fmt.Errorf("grpc serve %s: %w", s.addr, err)
		}
		close(s.errc)
	}()
	return nil
}

// MarkServing makes health checks of the server as a whole and of the named services
// answer SERVING.
func (s *Server) MarkServing(services ...string) {
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, name := range services {
		s.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
}

// Addr is the address Start bound.
func (s *Server) Addr() string { return s.addr }

// Errors delivers a serve failure and is closed when serving ends; nil before Start.
func (s *Server) Errors() <-chan error { return s.errc }

// Shutdown reports NOT_SERVING to health checks, lets running calls finish and stops;
// when ctx ends first, it stops at once.
func (s *Server) Shutdown(ctx context.Context) {
	s.Health.Shutdown()
	stopped := make(chan struct{})
	go func() { s.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.Stop()
		<-stopped
	}
}

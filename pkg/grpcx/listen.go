package grpcx

import (
	"google.golang.org/grpc"

	"github.com/talim/realtime/pkg/config"
)

// RegisterListen binds the settings of a service that serves an internal API on its
// own gRPC listener (chat, notification): TALIM_GRPC_ADDR, TALIM_SERVICE_TOKEN and the
// TLS variables. The services keep the values in their own Config fields; this is
// the one copy of their flags, defaults and checks (ValidateListen).
func RegisterListen(s *config.Set, addr, token *string, tls *TLS) {
	s.String(addr, "grpc-addr", "TALIM_GRPC_ADDR", ":9090", "gRPC listen address (empty: do not listen)")
	s.String(token, "service-token", "TALIM_SERVICE_TOKEN", "", "token gRPC callers must present (required)")
	tls.Register(s)
}

// ValidateListen checks the settings bound by RegisterListen; errors name the
// variable. An empty addr is valid: the caller registers the API on its own server.
func ValidateListen(addr, token string, tls TLS) error {
	if token == "" {
		return config.Errorf("TALIM_SERVICE_TOKEN", "required")
	}
	if addr != "" {
		if err := config.ValidateAddr(addr); err != nil {
			return config.Errorf("TALIM_GRPC_ADDR", "%v", err)
		}
	}
	return tls.Validate()
}

// Serve builds a server with o, registers the API on it, starts it on addr and
// marks service serving in the health service.
func Serve(o Options, addr, service string, register func(*grpc.Server)) (*Server, error) {
	gs, err := NewServer(o)
	if err != nil {
		return nil, err
	}
	register(gs.Server)
	if err := gs.Start(addr); err != nil {
		return nil, err
	}
	gs.MarkServing(service)
	return gs, nil
}

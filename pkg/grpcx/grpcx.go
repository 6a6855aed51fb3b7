// Package grpcx builds the gRPC servers of the internal APIs: service-token
// authentication, health and reflection services, optional TLS/mTLS, and
// InvalidArgument errors with field details.
package grpcx

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/tracing"
)

// TLS is the optional transport security of a gRPC server: with CertFile and KeyFile
// the server speaks TLS; with ClientCAFile too it requires client certificates (mTLS).
type TLS struct {
	CertFile, KeyFile, ClientCAFile string
}

// Register binds the TLS variables.
func (t *TLS) Register(s *config.Set) {
	s.String(&t.CertFile, "grpc-tls-cert", "TALIM_GRPC_TLS_CERT", "", "gRPC TLS certificate file (empty: plaintext, e.g. behind a mesh)")
	s.String(&t.KeyFile, "grpc-tls-key", "TALIM_GRPC_TLS_KEY", "", "gRPC TLS private key file")
	s.String(&t.ClientCAFile, "grpc-tls-client-ca", "TALIM_GRPC_TLS_CLIENT_CA", "", "CA file for client certificates (set: mTLS required)")
}

// Validate checks that certificate and key come together.
func (t TLS) Validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return config.Errorf("TALIM_GRPC_TLS_CERT", "TALIM_GRPC_TLS_CERT and TALIM_GRPC_TLS_KEY must be set together")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		return config.Errorf("TALIM_GRPC_TLS_CLIENT_CA", "mTLS needs TALIM_GRPC_TLS_CERT and TALIM_GRPC_TLS_KEY")
	}
	return nil
}

// Options configures NewServer.
type Options struct {
	// ServiceToken is required in `authorization: Bearer <token>` metadata on every
	// call except health checks and reflection.
	ServiceToken string
	Logger       *slog.Logger
	TLS          TLS
}

// Server wraps a grpc.Server with its health service.
type Server struct {
	*grpc.Server
	Health *health.Server

	addr string
	errc chan error
}

// NewServer returns a server with auth interceptors and health and reflection
// registered. Register the API services, then call Health.SetServingStatus. With
// tracing on (tracing.Enabled when called), every API call is a server span that
// continues the caller's W3C trace context (otelgrpc stats handler); health checks
// and reflection are not traced.
func NewServer(o Options) (*Server, error) {
	if o.ServiceToken == "" {
		return nil, errors.New("grpc: a service token is required")
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(recoverUnary(o.Logger), authUnary(o.ServiceToken)),
		grpc.MaxRecvMsgSize(16 << 20),
	}
	if tracing.Enabled() {
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tracing.Provider()),
			otelgrpc.WithPropagators(propagation.TraceContext{}),
			otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool { return !public(info.FullMethodName) }),
		)))
	}
	if o.TLS.CertFile != "" || o.TLS.KeyFile != "" {
		cfg, err := tlsConfig(o.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	gs := grpc.NewServer(opts...)
	hs := health.NewServer()
	// NOT_SERVING until the service marks itself ready (MarkServing).
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return &Server{Server: gs, Health: hs}, nil
}

func tlsConfig(o TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("grpc tls: load key pair: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.ClientCAFile != "" {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("grpc tls: read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("grpc tls: client CA file holds no certificate")
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func public(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") || strings.HasPrefix(method, "/grpc.reflection.")
}

func authUnary(token string) grpc.UnaryServerInterceptor {
	want := []byte("Bearer " + token)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if public(info.FullMethod) {
			return h(ctx, req)
		}
		md, _ := metadata.FromIncomingContext(ctx)
		vals := md.Get("authorization")
		if len(vals) != 1 || subtle.ConstantTimeCompare([]byte(vals[0]), want) != 1 {
			return nil, status.Error(codes.Unauthenticated, "missing or wrong service token (authorization: Bearer <TALIM_SERVICE_TOKEN>)")
		}
		return h(ctx, req)
	}
}

func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				if log != nil {
					log.Error("grpc handler panicked", "method", info.FullMethod, "panic", p)
				}
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(ctx, req)
	}
}

// FieldViolations collects validation failures for InvalidArgument errors.
type FieldViolations []*errdetails.BadRequest_FieldViolation

// Add records a violation of field.
func (v *FieldViolations) Add(field, format string, args ...any) {
	*v = append(*v, &errdetails.BadRequest_FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Err returns nil without violations, else an InvalidArgument status carrying them
// as google.rpc.BadRequest details.
func (v FieldViolations) Err() error {
	if len(v) == 0 {
		return nil
	}
	parts := make([]string, 0, len(v))
	for _, f := range v {
		parts = append(parts, f.GetField()+": "+f.GetDescription())
	}
	st := status.New(codes.InvalidArgument, "invalid request: "+strings.Join(parts, "; "))
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: v}); err == nil {
		st = d
	}
	return st.Err()
}

// TokenCredentials adds the service token to every call of a client connection.
type TokenCredentials struct {
	Token    string
	Insecure bool // allow over plaintext (loopback and tests)
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (t TokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + t.Token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (t TokenCredentials) RequireTransportSecurity() bool { return !t.Insecure }

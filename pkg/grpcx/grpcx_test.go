package grpcx

import (
	"context"
	"net"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
)

func TestServer_ServiceToken(t *testing.T) {
	t.Parallel()
	s, err := NewServer(Options{ServiceToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	notificationv1.RegisterNotificationServiceServer(s.Server, notificationv1.UnimplementedNotificationServiceServer{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)

	dial := func(token string) *grpc.ClientConn {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(TokenCredentials{Token: token, Insecure: true}))
		}
		cc, err := grpc.NewClient(ln.Addr().String(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	// Health is public: probes carry no token.
	if _, err := healthpb.NewHealthClient(dial("")).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health without token: %v", err)
	}
	// Any other method needs the token; the unimplemented API proves the call got past auth.
	for token, want := range map[string]codes.Code{"": codes.Unauthenticated, "wrong": codes.Unauthenticated, "tok": codes.Unimplemented} {
		_, err := notificationv1.NewNotificationServiceClient(dial(token)).UnreadCount(context.Background(), &notificationv1.UnreadCountRequest{UserId: "u1"})
		if status.Code(err) != want {
			t.Errorf("token %q: %v, want %v", token, err, want)
		}
	}
	if _, err := NewServer(Options{}); err == nil {
		t.Fatal("a server without a service token must be refused")
	}
}

func TestFieldViolations(t *testing.T) {
	t.Parallel()
	var v FieldViolations
	if v.Err() != nil {
		t.Fatal("no violations must be nil")
	}
	v.Add("recipients", "at most %d", 10000)
	v.Add("title", "required")
	st := status.Convert(v.Err())
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code %v", st.Code())
	}
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, f := range br.GetFieldViolations() {
				fields = append(fields, f.GetField())
			}
		}
	}
	if len(fields) != 2 || fields[0] != "recipients" || fields[1] != "title" {
		t.Fatalf("fields = %v", fields)
	}
}

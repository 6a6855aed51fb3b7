package grpcapi

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/notification/internal/core"
)

func TestSendRequest_Conversion(t *testing.T) {
	t.Parallel()
	in, bad := sendRequest(&notificationv1.SendRequest{
		IdempotencyKey: "k", Recipients: []string{"a"}, Title: "t", Priority: notificationv1.Priority_PRIORITY_HIGH,
		ExpiresAt: &timestamppb.Timestamp{Seconds: 1, Nanos: -1},
	})
	if in.Priority != core.PriorityHigh || in.IdempotencyKey != "k" || in.ExpiresAt != nil {
		t.Fatalf("request = %+v", in)
	}
	if len(bad) != 1 || bad[0].Field != "expires_at" {
		t.Fatalf("violations = %+v", bad)
	}
	if in, _ := sendRequest(&notificationv1.SendRequest{Priority: 9}); in.Priority != "9" {
		t.Fatalf("unknown priority = %q", in.Priority)
	}
	if in, _ := sendRequest(&notificationv1.SendRequest{}); in.Priority != core.PriorityNormal {
		t.Fatalf("unspecified priority = %q", in.Priority)
	}
}

func TestServer_UnavailableWithoutCore(t *testing.T) {
	t.Parallel()
	s := New(nil)
	_, err := s.Send(context.Background(), &notificationv1.SendRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v", err)
	}
}

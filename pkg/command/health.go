package command

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/talim/realtime/pkg/subject"
	commonv1 "github.com/talim/realtime/proto/talim/common/v1"
)

// ServeHealth answers talim.health.v1.<service> requests with the instance's
// readiness. Every instance answers (no queue group), so a caller can count them.
func ServeHealth(nc *nats.Conn, service, instanceID, version string, ready func(context.Context) bool) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(subject.Health(service), func(m *nats.Msg) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		b, err := proto.Marshal(&commonv1.HealthResponse{Service: service, InstanceId: instanceID, Ready: ready(ctx), Version: version})
		if err == nil {
			_ = m.Respond(b)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe health %s: %w", service, err)
	}
	return sub, nil
}

// RequestHealth asks one instance of service for its health.
func RequestHealth(ctx context.Context, nc *nats.Conn, service string) (*commonv1.HealthResponse, error) {
	b, err := proto.Marshal(&commonv1.HealthRequest{})
	if err != nil {
		return nil, fmt.Errorf("marshal health request: %w", err)
	}
	m, err := nc.RequestWithContext(ctx, subject.Health(service), b)
	if err != nil {
		return nil, fmt.Errorf("health of %s: %w", service, err)
	}
	var resp commonv1.HealthResponse
	if err := proto.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("decode health of %s: %w", service, err)
	}
	return &resp, nil
}

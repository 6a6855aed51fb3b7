package chat

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/talim/realtime/pkg/grpcx"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
)

// Notifier tells safeguarding leads about a report (docs/protocol.md
// "Safeguarding"); key makes a retried call create nothing new.
type Notifier interface {
	NotifyLeads(ctx context.Context, leads []string, title, body string, data map[string]string, key string) error
}

// grpcNotifier sends through NotificationService.Send with requireAck: the
// service every other backend already uses to notify users (no new broker).
type grpcNotifier struct {
	conn *grpc.ClientConn
	api  notificationv1.NotificationServiceClient
}

func dialNotifier(addr, token string) (*grpcNotifier, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: token, Insecure: true}))
	if err != nil {
		return nil, fmt.Errorf("notification client %s: %w", addr, err)
	}
	return &grpcNotifier{conn: conn, api: notificationv1.NewNotificationServiceClient(conn)}, nil
}

func (n *grpcNotifier) NotifyLeads(ctx context.Context, leads []string, title, body string, data map[string]string, key string) error {
	_, err := n.api.Send(ctx, &notificationv1.SendRequest{Recipients: leads, Category: "safeguarding", Title: title, Body: body,
		Data: data, Priority: notificationv1.Priority_PRIORITY_HIGH, RequireAck: true, IdempotencyKey: key})
	if err != nil {
		return fmt.Errorf("notify leads: %w", err)
	}
	return nil
}

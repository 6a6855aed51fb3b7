package notify

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/talim/realtime/pkg/grpcx"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/notification/internal/store"
)

// API implements NotificationService. It can be registered before the service is
// connected: until SetCore is called (and after SetCore(nil)) every call returns
// Unavailable.
type API struct {
	notificationv1.UnimplementedNotificationServiceServer
	core atomic.Pointer[Core]
	log  *slog.Logger
}

var _ notificationv1.NotificationServiceServer = (*API)(nil)

// NewAPI returns an API that is not serving yet.
func NewAPI(log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{log: log}
}

// SetCore makes the API serve with c (nil: stop serving).
func (a *API) SetCore(c *Core) { a.core.Store(c) }

func (a *API) get() (*Core, error) {
	c := a.core.Load()
	if c == nil {
		return nil, status.Error(codes.Unavailable, "notification service is not connected yet")
	}
	return c, nil
}

// grpcErr maps errors to statuses; statuses pass through.
func (a *API) grpcErr(method string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, "not found")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, store.ErrUnavailable):
		a.log.Warn("grpc call failed: store unavailable", "method", method, "err", err)
		return status.Error(codes.Unavailable, "the notification store is unavailable; retry later")
	}
	a.log.Error("grpc call failed", "method", method, "err", err)
	return status.Error(codes.Internal, "internal error")
}

func checkUserID(v *grpcx.FieldViolations, id string) {
	if !ValidUserID(id) {
		v.Add("user_id", "user ids are 1..%d characters of A-Z a-z 0-9 _ - : @ .", MaxUserIDLen)
	}
}

// Send implements NotificationService.
func (a *API) Send(ctx context.Context, req *notificationv1.SendRequest) (*notificationv1.SendResponse, error) {
	c, err := a.get()
	if err != nil {
		return nil, err
	}
	resp, err := c.Send(ctx, req)
	if err != nil {
		return nil, a.grpcErr("Send", err)
	}
	return resp, nil
}

// List implements NotificationService.
func (a *API) List(ctx context.Context, req *notificationv1.ListRequest) (*notificationv1.ListResponse, error) {
	c, err := a.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	checkUserID(&v, req.GetUserId())
	if l := req.GetLimit(); l < 0 || l > MaxListLimit {
		v.Add("limit", "between 0 (default %d) and %d", DefaultListLimit, MaxListLimit)
	}
	if len(req.GetBefore()) > MaxNotificationIDLen {
		v.Add("before", "not a notification id")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	notes, more, unread, err := c.List(ctx, req.GetUserId(), req.GetUnreadOnly(), req.GetBefore(), int(req.GetLimit()))
	if err != nil {
		return nil, a.grpcErr("List", err)
	}
	resp := &notificationv1.ListResponse{HasMore: more, Unread: unread, Notifications: make([]*notificationv1.Notification, len(notes))}
	for i := range notes {
		resp.Notifications[i] = ToProto(&notes[i])
	}
	return resp, nil
}

// MarkRead implements NotificationService. The user's connections get
// `notification-read`.
func (a *API) MarkRead(ctx context.Context, req *notificationv1.MarkReadRequest) (*notificationv1.MarkReadResponse, error) {
	c, err := a.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	checkUserID(&v, req.GetUserId())
	if msg := checkMarkRead(req.GetIds(), req.GetAll()); msg != "" {
		v.Add("ids", "%s", msg)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	unread, err := c.MarkRead(ctx, req.GetUserId(), "", req.GetIds(), req.GetAll())
	if err != nil {
		return nil, a.grpcErr("MarkRead", err)
	}
	return &notificationv1.MarkReadResponse{Unread: unread}, nil
}

// UnreadCount implements NotificationService.
func (a *API) UnreadCount(ctx context.Context, req *notificationv1.UnreadCountRequest) (*notificationv1.UnreadCountResponse, error) {
	c, err := a.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	checkUserID(&v, req.GetUserId())
	if err := v.Err(); err != nil {
		return nil, err
	}
	n, err := c.Unread(ctx, req.GetUserId())
	if err != nil {
		return nil, a.grpcErr("UnreadCount", err)
	}
	return &notificationv1.UnreadCountResponse{Unread: n}, nil
}

// AckStatus implements NotificationService.
func (a *API) AckStatus(ctx context.Context, req *notificationv1.AckStatusRequest) (*notificationv1.AckStatusResponse, error) {
	c, err := a.get()
	if err != nil {
		return nil, err
	}
	if id := req.GetSendId(); id == "" || len(id) > MaxNotificationIDLen {
		var v grpcx.FieldViolations
		v.Add("send_id", "required, a send id returned by Send")
		return nil, v.Err()
	}
	resp, err := c.AckStatus(ctx, req.GetSendId())
	if err != nil {
		return nil, a.grpcErr("AckStatus", err)
	}
	return resp, nil
}

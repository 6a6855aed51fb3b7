// Package grpcapi serves NotificationService (proto/talim/notification/v1) on top
// of core: it converts protobuf requests to core types and back, validates up front
// (InvalidArgument with google.rpc.BadRequest field violations), and maps errors to
// NotFound, Canceled, DeadlineExceeded, Unavailable (store unreachable, or the
// service not connected yet) and Internal.
package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/talim/realtime/pkg/grpcx"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/notification/internal/core"
	"github.com/talim/realtime/services/notification/internal/store"
)

// Server implements NotificationService. It can be registered before the service
// is connected: until SetCore is called (and after SetCore(nil)) every call
// returns Unavailable.
type Server struct {
	notificationv1.UnimplementedNotificationServiceServer
	core grpcx.Backend[core.Core]
	log  *slog.Logger
}

var _ notificationv1.NotificationServiceServer = (*Server)(nil)

// New returns a Server that is not serving yet.
func New(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{log: log}
}

// SetCore makes the API serve with c (nil: stop serving).
func (a *Server) SetCore(c *core.Core) { a.core.Set(c) }

func (a *Server) get() (*core.Core, error) { return a.core.Get("notification") }

// grpcErr maps errors to statuses; statuses pass through.
func (a *Server) grpcErr(method string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	var invalid *core.InvalidError
	switch {
	case errors.As(err, &invalid):
		return violationsErr(invalid.Violations)
	case errors.Is(err, core.ErrUrgentNotAllowed):
		return status.Error(codes.PermissionDenied, err.Error())
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
	if !core.ValidUserID(id) {
		v.Add("user_id", "user ids are 1..%d characters of A-Z a-z 0-9 _ - : @ .", core.MaxUserIDLen)
	}
}

// violationsErr is the InvalidArgument status of core's violations.
func violationsErr(vs []core.Violation) error {
	var v grpcx.FieldViolations
	for _, x := range vs {
		v.Add(x.Field, "%s", x.Description)
	}
	return v.Err()
}

var priorityNames = map[notificationv1.Priority]string{
	notificationv1.Priority_PRIORITY_UNSPECIFIED: core.PriorityNormal,
	notificationv1.Priority_PRIORITY_LOW:         core.PriorityLow,
	notificationv1.Priority_PRIORITY_NORMAL:      core.PriorityNormal,
	notificationv1.Priority_PRIORITY_HIGH:        core.PriorityHigh,
}

// sendRequest converts req to core's request. An unknown priority is passed as
// its number, which core reports; an invalid expiry timestamp is returned as a
// violation of its own.
func sendRequest(req *notificationv1.SendRequest) (core.SendRequest, []core.Violation) {
	in := core.SendRequest{
		IdempotencyKey: req.GetIdempotencyKey(), Recipients: req.GetRecipients(),
		Category: req.GetCategory(), Title: req.GetTitle(), Body: req.GetBody(), Data: req.GetData(),
		RequireAck: req.GetRequireAck(), Urgent: req.GetUrgent(), SenderRole: req.GetSenderRole(),
	}
	name, ok := priorityNames[req.GetPriority()]
	if !ok {
		name = strconv.Itoa(int(req.GetPriority()))
	}
	in.Priority = name
	var bad []core.Violation
	if ts := req.GetExpiresAt(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			bad = append(bad, core.Violation{Field: "expires_at", Description: "invalid timestamp: " + err.Error()})
		} else {
			t := ts.AsTime()
			in.ExpiresAt = &t
		}
	}
	return in, bad
}

// Send implements NotificationService.
func (a *Server) Send(ctx context.Context, req *notificationv1.SendRequest) (*notificationv1.SendResponse, error) {
	c, err := a.get()
	if err != nil {
		return nil, err
	}
	in, bad := sendRequest(req)
	if len(bad) > 0 {
		return nil, violationsErr(append(c.CheckSend(in), bad...))
	}
	res, err := c.Send(ctx, in)
	if err != nil {
		return nil, a.grpcErr("Send", err)
	}
	return &notificationv1.SendResponse{
		SendId: res.SendID, Recipients: res.Recipients, Duplicate: res.Duplicate, DeliveredLive: res.DeliveredLive,
	}, nil
}

// List implements NotificationService.
func (a *Server) List(ctx context.Context, req *notificationv1.ListRequest) (*notificationv1.ListResponse, error) {
	c, err := a.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	checkUserID(&v, req.GetUserId())
	if l := req.GetLimit(); l < 0 || l > core.MaxListLimit {
		v.Add("limit", "between 0 (default %d) and %d", core.DefaultListLimit, core.MaxListLimit)
	}
	if len(req.GetBefore()) > core.MaxNotificationIDLen {
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
func (a *Server) MarkRead(ctx context.Context, req *notificationv1.MarkReadRequest) (*notificationv1.MarkReadResponse, error) {
	c, err := a.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	checkUserID(&v, req.GetUserId())
	if msg := core.CheckMarkRead(req.GetIds(), req.GetAll()); msg != "" {
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
func (a *Server) UnreadCount(ctx context.Context, req *notificationv1.UnreadCountRequest) (*notificationv1.UnreadCountResponse, error) {
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
func (a *Server) AckStatus(ctx context.Context, req *notificationv1.AckStatusRequest) (*notificationv1.AckStatusResponse, error) {
	c, err := a.get()
	if err != nil {
		return nil, err
	}
	if id := req.GetSendId(); id == "" || len(id) > core.MaxNotificationIDLen {
		var v grpcx.FieldViolations
		v.Add("send_id", "required, a send id returned by Send")
		return nil, v.Err()
	}
	st, err := c.AckStatus(ctx, req.GetSendId())
	if err != nil {
		return nil, a.grpcErr("AckStatus", err)
	}
	return &notificationv1.AckStatusResponse{Total: st.Total, Acknowledged: st.Acknowledged, PendingUserIds: st.Pending}, nil
}

func priorityProto(name string) notificationv1.Priority {
	switch name {
	case core.PriorityLow:
		return notificationv1.Priority_PRIORITY_LOW
	case core.PriorityHigh:
		return notificationv1.Priority_PRIORITY_HIGH
	default:
		return notificationv1.Priority_PRIORITY_NORMAL
	}
}

func optTimestamp(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// ToProto converts a stored notification to the gRPC message.
func ToProto(n *store.Notification) *notificationv1.Notification {
	return &notificationv1.Notification{
		Id: n.ID, UserId: n.UserID, Category: n.Category, Title: n.Title, Body: n.Body, Data: core.DataMap(n.Data),
		Priority: priorityProto(n.Priority), RequireAck: n.RequireAck, CreatedAt: timestamppb.New(n.CreatedAt),
		ReadAt: optTimestamp(n.ReadAt), AckedAt: optTimestamp(n.AckedAt), ExpiresAt: optTimestamp(n.ExpiresAt),
		SendId: n.SendID, Urgent: n.Urgent,
	}
}

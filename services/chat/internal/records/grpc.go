package records

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/grpcx"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	safeguardingv1 "github.com/talim/realtime/proto/talim/safeguarding/v1"
	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Server implements RecordsService (records.proto). It can be registered before
// Records exists; until Set every call fails with Unavailable.
type Server struct {
	safeguardingv1.UnimplementedRecordsServiceServer
	r atomic.Pointer[Records]
}

var _ safeguardingv1.RecordsServiceServer = (*Server)(nil)

// Set makes the API serve r (nil: Unavailable again).
func (s *Server) Set(r *Records) { s.r.Store(r) }

func (s *Server) get() (*Records, error) {
	r := s.r.Load()
	if r == nil {
		return nil, status.Error(codes.Unavailable, "chat service is not connected yet")
	}
	return r, nil
}

func actor(a *safeguardingv1.Actor) Actor {
	return Actor{UserID: a.GetUserId(), Roles: a.GetRoles()}
}

// toStatus maps records errors: invalid fields to InvalidArgument with field
// details, forbidden to PermissionDenied, missing rooms to NotFound, store and
// audit outages to Unavailable; anything else is Internal.
func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInvalid):
		msg := strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
		field, why, _ := strings.Cut(msg, " ")
		var v grpcx.FieldViolations
		v.Add(field, "%s", why)
		return v.Err()
	case errors.Is(err, ErrForbidden):
		return status.Error(codes.PermissionDenied, strings.TrimPrefix(err.Error(), ErrForbidden.Error()+": "))
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, "not found")
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, audit.ErrUnavailable), errors.Is(err, command.ErrUnavailable),
		errors.Is(err, audit.ErrContended), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return status.Error(codes.Unavailable, "store unavailable; retry later")
	}
	return status.Error(codes.Internal, "internal error")
}

var roomTypeNames = map[chatv1.RoomType]string{
	chatv1.RoomType_ROOM_TYPE_DIRECT: store.TypeDirect, chatv1.RoomType_ROOM_TYPE_GROUP: store.TypeGroup,
	chatv1.RoomType_ROOM_TYPE_CLASS: store.TypeClass, chatv1.RoomType_ROOM_TYPE_ANNOUNCEMENT: store.TypeAnnouncement,
	chatv1.RoomType_ROOM_TYPE_OPEN: store.TypeOpen,
}

func roomTypeProto(t string) chatv1.RoomType {
	for k, v := range roomTypeNames {
		if v == t {
			return k
		}
	}
	return chatv1.RoomType_ROOM_TYPE_UNSPECIFIED
}

var scopes = map[safeguardingv1.HoldScope]string{
	safeguardingv1.HoldScope_HOLD_SCOPE_ROOM: store.HoldRoom, safeguardingv1.HoldScope_HOLD_SCOPE_USER: store.HoldUser,
}

func scopeProto(s string) safeguardingv1.HoldScope {
	for k, v := range scopes {
		if v == s {
			return k
		}
	}
	return safeguardingv1.HoldScope_HOLD_SCOPE_UNSPECIFIED
}

// ReadRoomHistory implements RecordsService.
func (s *Server) ReadRoomHistory(ctx context.Context, req *safeguardingv1.ReadRoomHistoryRequest) (*safeguardingv1.ReadRoomHistoryResponse, error) {
	r, err := s.get()
	if err != nil {
		return nil, err
	}
	if req.GetBeforeSeq() < 0 {
		return nil, toStatus(invalid("before_seq", "must not be negative"))
	}
	page, err := r.ReadRoomHistory(ctx, OversightQuery{Actor: actor(req.GetActor()), RoomID: req.GetRoomId(),
		Reason: req.GetReason(), Before: req.GetBeforeSeq(), Limit: int(req.GetLimit())})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &safeguardingv1.ReadRoomHistoryResponse{RoomId: page.RoomID, HasMore: page.HasMore, AuditSeq: page.AuditSeq}
	for _, m := range page.Messages {
		out.MessagesJson = append(out.MessagesJson, string(m))
	}
	return out, nil
}

// VerifyAudit implements RecordsService.
func (s *Server) VerifyAudit(ctx context.Context, _ *safeguardingv1.VerifyAuditRequest) (*safeguardingv1.VerifyAuditResponse, error) {
	r, err := s.get()
	if err != nil {
		return nil, err
	}
	v, err := r.VerifyAudit(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &safeguardingv1.VerifyAuditResponse{Ok: v.OK, Entries: v.Entries, FirstBadSeq: v.FirstBad, Problem: v.Problem, HeadHash: v.HeadHash}, nil
}

// SetRetention implements RecordsService.
func (s *Server) SetRetention(ctx context.Context, req *safeguardingv1.SetRetentionRequest) (*safeguardingv1.SetRetentionResponse, error) {
	r, err := s.get()
	if err != nil {
		return nil, err
	}
	typ, ok := roomTypeNames[req.GetRetention().GetRoomType()]
	if !ok {
		return nil, toStatus(invalid("retention.room_type", "must be a room type"))
	}
	if err := r.SetRetention(ctx, actor(req.GetActor()), typ, int(req.GetRetention().GetDays()), req.GetReason()); err != nil {
		return nil, toStatus(err)
	}
	return &safeguardingv1.SetRetentionResponse{Retention: req.GetRetention()}, nil
}

// GetRetention implements RecordsService.
func (s *Server) GetRetention(ctx context.Context, _ *safeguardingv1.GetRetentionRequest) (*safeguardingv1.GetRetentionResponse, error) {
	r, err := s.get()
	if err != nil {
		return nil, err
	}
	rules, err := r.Retention(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &safeguardingv1.GetRetentionResponse{}
	for _, rule := range rules {
		out.Retention = append(out.Retention, &safeguardingv1.RoomRetention{RoomType: roomTypeProto(rule.RoomType), Days: int32(rule.Days)})
	}
	return out, nil
}

// RunRetention implements RecordsService.
func (s *Server) RunRetention(ctx context.Context, _ *safeguardingv1.RunRetentionRequest) (*safeguardingv1.RunRetentionResponse, error) {
	r, err := s.get()
	if err != nil {
		return nil, err
	}
	removed, held, err := r.RunRetention(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &safeguardingv1.RunRetentionResponse{Removed: removed, Held: held}, nil
}

func holdProto(h store.Hold) *safeguardingv1.LegalHold {
	return &safeguardingv1.LegalHold{Scope: scopeProto(h.Scope), Id: h.Target, Reason: h.Reason, PlacedBy: h.PlacedBy,
		PlacedAt: timestamppb.New(h.PlacedAt)}
}

// SetLegalHold implements RecordsService.
func (s *Server) SetLegalHold(ctx context.Context, req *safeguardingv1.SetLegalHoldRequest) (*safeguardingv1.SetLegalHoldResponse, error) {
	r, err := s.get()
	if err != nil {
		return nil, err
	}
	h, err := r.PlaceHold(ctx, actor(req.GetActor()), scopes[req.GetScope()], req.GetId(), req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	return &safeguardingv1.SetLegalHoldResponse{Hold: holdProto(h)}, nil
}

// ReleaseLegalHold implements RecordsService.
func (s *Server) ReleaseLegalHold(ctx context.Context, req *safeguardingv1.ReleaseLegalHoldRequest) (*safeguardingv1.ReleaseLegalHoldResponse, error) {
	r, err := s.get()
	if err != nil {
		return nil, err
	}
	ok, err := r.ReleaseHold(ctx, actor(req.GetActor()), scopes[req.GetScope()], req.GetId(), req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	return &safeguardingv1.ReleaseLegalHoldResponse{Released: ok}, nil
}

// ListLegalHolds implements RecordsService.
func (s *Server) ListLegalHolds(ctx context.Context, _ *safeguardingv1.ListLegalHoldsRequest) (*safeguardingv1.ListLegalHoldsResponse, error) {
	r, err := s.get()
	if err != nil {
		return nil, err
	}
	hs, err := r.Holds(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &safeguardingv1.ListLegalHoldsResponse{}
	for _, h := range hs {
		out.Holds = append(out.Holds, holdProto(h))
	}
	return out, nil
}

// ExportUser implements RecordsService.
func (s *Server) ExportUser(req *safeguardingv1.ExportUserRequest, stream grpc.ServerStreamingServer[safeguardingv1.ExportUserResponse]) error {
	r, err := s.get()
	if err != nil {
		return err
	}
	err = r.ExportUser(stream.Context(), actor(req.GetActor()), req.GetUserId(), req.GetReason(), func(lines []string) error {
		return stream.Send(&safeguardingv1.ExportUserResponse{Lines: lines})
	})
	return toStatus(err)
}

// ExportRoom implements RecordsService.
func (s *Server) ExportRoom(req *safeguardingv1.ExportRoomRequest, stream grpc.ServerStreamingServer[safeguardingv1.ExportRoomResponse]) error {
	r, err := s.get()
	if err != nil {
		return err
	}
	err = r.ExportRoom(stream.Context(), actor(req.GetActor()), req.GetRoomId(), req.GetReason(), func(lines []string) error {
		return stream.Send(&safeguardingv1.ExportRoomResponse{Lines: lines})
	})
	return toStatus(err)
}

// EraseUser implements RecordsService.
func (s *Server) EraseUser(ctx context.Context, req *safeguardingv1.EraseUserRequest) (*safeguardingv1.EraseUserResponse, error) {
	r, err := s.get()
	if err != nil {
		return nil, err
	}
	e, err := r.EraseUser(ctx, actor(req.GetActor()), req.GetUserId(), req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	out := &safeguardingv1.EraseUserResponse{Removed: e.Removed, AuditSeq: e.AuditSeq}
	for _, k := range e.Kept {
		out.Kept = append(out.Kept, &safeguardingv1.Kept{What: k.What, Where: k.Where, Count: k.Count, Why: k.Why})
	}
	return out, nil
}

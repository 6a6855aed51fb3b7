// Package grpcapi serves ChatAdminService (chat.proto) on top of core. Requests are
// validated up front (InvalidArgument with google.rpc.BadRequest field details);
// core errors map to NotFound, AlreadyExists, FailedPrecondition (archived room),
// Unavailable (store unreachable, or the service not connected yet) and Internal.
package grpcapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/grpcx"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	"github.com/talim/realtime/services/chat/internal/core"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Server implements chatv1.ChatAdminServiceServer. It can be registered before
// the core exists; until SetCore every call fails with Unavailable.
type Server struct {
	chatv1.UnimplementedChatAdminServiceServer
	core grpcx.Backend[core.Core]
}

var _ chatv1.ChatAdminServiceServer = (*Server)(nil)

// SetCore makes the API serve c (nil: Unavailable again).
func (s *Server) SetCore(c *core.Core) { s.core.Set(c) }

func (s *Server) get() (*core.Core, error) { return s.core.Get("chat") }

// Limits of the admin API.
const (
	defaultMemberPage = 100
	maxMemberPage     = 1000
	maxMembersPerCall = 5000
)

func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, "room not found")
	case errors.Is(err, core.ErrTypeConflict):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, core.ErrPolicy):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, core.ErrArchived):
		return status.Error(codes.FailedPrecondition, "room is archived")
	case errors.Is(err, command.ErrUnavailable), errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return status.Error(codes.Unavailable, "store unavailable; nothing was changed, retry later")
	}
	return status.Error(codes.Internal, "internal error")
}

var roomTypes = map[chatv1.RoomType]string{
	chatv1.RoomType_ROOM_TYPE_DIRECT: store.TypeDirect, chatv1.RoomType_ROOM_TYPE_GROUP: store.TypeGroup,
	chatv1.RoomType_ROOM_TYPE_CLASS: store.TypeClass, chatv1.RoomType_ROOM_TYPE_ANNOUNCEMENT: store.TypeAnnouncement,
	chatv1.RoomType_ROOM_TYPE_OPEN: store.TypeOpen,
}

var roles = map[chatv1.Role]string{
	chatv1.Role_ROLE_OWNER: store.RoleOwner, chatv1.Role_ROLE_TEACHER: store.RoleTeacher,
	chatv1.Role_ROLE_MEMBER: store.RoleMember, chatv1.Role_ROLE_READONLY: store.RoleReadonly,
}

func typeProto(t string) chatv1.RoomType {
	for k, v := range roomTypes {
		if v == t {
			return k
		}
	}
	return chatv1.RoomType_ROOM_TYPE_UNSPECIFIED
}

func roleProto(r string) chatv1.Role {
	for k, v := range roles {
		if v == r {
			return k
		}
	}
	return chatv1.Role_ROLE_UNSPECIFIED
}

func roomProto(r *store.Room, members int64) *chatv1.Room {
	return &chatv1.Room{RoomId: r.ID, Name: r.Name, Type: typeProto(r.Type), Archived: r.Archived,
		LastSeq: r.LastSeq, MemberCount: members, CreatedAt: timestamppb.New(r.CreatedAt)}
}

func checkRoomID(v *grpcx.FieldViolations, field, id string) {
	if !core.ValidID(id) {
		v.Add(field, "must be 1..128 characters of [A-Za-z0-9_-:@.]")
	}
}

func members(v *grpcx.FieldViolations, field string, in []*chatv1.Member) []store.Member {
	if len(in) > maxMembersPerCall {
		v.Add(field, "at most %d members per call", maxMembersPerCall)
		return nil
	}
	out := make([]store.Member, 0, len(in))
	seen := map[string]bool{}
	for i, m := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !core.ValidID(m.GetUserId()) {
			v.Add(f+".user_id", "must be 1..128 characters of [A-Za-z0-9_-:@.]")
		} else if seen[m.GetUserId()] {
			v.Add(f+".user_id", "duplicate user %q", m.GetUserId())
		}
		seen[m.GetUserId()] = true
		role, ok := roles[m.GetRole()]
		if !ok {
			v.Add(f+".role", "must be owner, teacher, member or readonly")
		}
		out = append(out, store.Member{UserID: m.GetUserId(), Role: role})
	}
	return out
}

// CreateRoom implements ChatAdminService.
func (s *Server) CreateRoom(ctx context.Context, req *chatv1.CreateRoomRequest) (*chatv1.CreateRoomResponse, error) {
	var v grpcx.FieldViolations
	if req.GetRoomId() != "" {
		checkRoomID(&v, "room_id", req.GetRoomId())
	}
	if n := len([]rune(req.GetName())); n > core.MaxRoomNameRunes {
		v.Add("name", "at most %d characters", core.MaxRoomNameRunes)
	}
	typ, ok := roomTypes[req.GetType()]
	if !ok {
		v.Add("type", "must be one of direct, group, class, announcement, open")
	}
	ms := members(&v, "members", req.GetMembers())
	if err := v.Err(); err != nil {
		return nil, err
	}
	c, err := s.get()
	if err != nil {
		return nil, err
	}
	room, created, err := c.CreateRoom(ctx, req.GetRoomId(), req.GetName(), typ, ms)
	if err != nil {
		return nil, toStatus(err)
	}
	return &chatv1.CreateRoomResponse{Room: roomProto(room, int64(len(ms))), Created: created}, nil
}

// GetRoom implements ChatAdminService.
func (s *Server) GetRoom(ctx context.Context, req *chatv1.GetRoomRequest) (*chatv1.GetRoomResponse, error) {
	var v grpcx.FieldViolations
	checkRoomID(&v, "room_id", req.GetRoomId())
	if err := v.Err(); err != nil {
		return nil, err
	}
	c, err := s.get()
	if err != nil {
		return nil, err
	}
	room, n, err := c.GetRoom(ctx, req.GetRoomId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &chatv1.GetRoomResponse{Room: roomProto(room, n)}, nil
}

// ArchiveRoom implements ChatAdminService.
func (s *Server) ArchiveRoom(ctx context.Context, req *chatv1.ArchiveRoomRequest) (*chatv1.ArchiveRoomResponse, error) {
	var v grpcx.FieldViolations
	checkRoomID(&v, "room_id", req.GetRoomId())
	if err := v.Err(); err != nil {
		return nil, err
	}
	c, err := s.get()
	if err != nil {
		return nil, err
	}
	room, err := c.ArchiveRoom(ctx, req.GetRoomId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &chatv1.ArchiveRoomResponse{Room: roomProto(room, 0)}, nil
}

// AddMembers implements ChatAdminService.
func (s *Server) AddMembers(ctx context.Context, req *chatv1.AddMembersRequest) (*chatv1.AddMembersResponse, error) {
	var v grpcx.FieldViolations
	checkRoomID(&v, "room_id", req.GetRoomId())
	if len(req.GetMembers()) == 0 {
		v.Add("members", "at least one member is required")
	}
	ms := members(&v, "members", req.GetMembers())
	if err := v.Err(); err != nil {
		return nil, err
	}
	c, err := s.get()
	if err != nil {
		return nil, err
	}
	added, updated, err := c.AddMembers(ctx, req.GetRoomId(), ms)
	if err != nil {
		return nil, toStatus(err)
	}
	return &chatv1.AddMembersResponse{Added: added, Updated: updated}, nil
}

// RemoveMembers implements ChatAdminService.
func (s *Server) RemoveMembers(ctx context.Context, req *chatv1.RemoveMembersRequest) (*chatv1.RemoveMembersResponse, error) {
	var v grpcx.FieldViolations
	checkRoomID(&v, "room_id", req.GetRoomId())
	if len(req.GetUserIds()) == 0 {
		v.Add("user_ids", "at least one user id is required")
	}
	if len(req.GetUserIds()) > maxMembersPerCall {
		v.Add("user_ids", "at most %d per call", maxMembersPerCall)
	}
	for i, u := range req.GetUserIds() {
		if !core.ValidID(u) {
			v.Add(fmt.Sprintf("user_ids[%d]", i), "must be 1..128 characters of [A-Za-z0-9_-:@.]")
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	c, err := s.get()
	if err != nil {
		return nil, err
	}
	n, err := c.RemoveMembers(ctx, req.GetRoomId(), req.GetUserIds())
	if err != nil {
		return nil, toStatus(err)
	}
	return &chatv1.RemoveMembersResponse{Removed: n}, nil
}

// ListMembers implements ChatAdminService.
func (s *Server) ListMembers(ctx context.Context, req *chatv1.ListMembersRequest) (*chatv1.ListMembersResponse, error) {
	var v grpcx.FieldViolations
	checkRoomID(&v, "room_id", req.GetRoomId())
	if a := req.GetAfterUserId(); a != "" && !core.ValidID(a) {
		v.Add("after_user_id", "must be a valid user id")
	}
	if req.GetLimit() < 0 {
		v.Add("limit", "must not be negative")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = defaultMemberPage
	}
	limit = min(limit, maxMemberPage)
	c, err := s.get()
	if err != nil {
		return nil, err
	}
	ms, more, err := c.ListMembers(ctx, req.GetRoomId(), req.GetAfterUserId(), limit)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &chatv1.ListMembersResponse{HasMore: more}
	for _, m := range ms {
		out.Members = append(out.Members, &chatv1.Member{UserId: m.UserID, Role: roleProto(m.Role),
			JoinedAt: timestamppb.New(m.JoinedAt), LastReadSeq: m.LastReadSeq})
	}
	return out, nil
}

// PostMessage implements ChatAdminService.
func (s *Server) PostMessage(ctx context.Context, req *chatv1.PostMessageRequest) (*chatv1.PostMessageResponse, error) {
	var v grpcx.FieldViolations
	checkRoomID(&v, "room_id", req.GetRoomId())
	if n := req.GetServiceName(); n == "" || len(n) > 64 || !core.ValidID(n) {
		v.Add("service_name", "must be 1..64 characters of [A-Za-z0-9_-:@.]")
	}
	if len([]rune(req.GetDisplayName())) > core.MaxDisplayNameLen {
		v.Add("display_name", "at most %d characters", core.MaxDisplayNameLen)
	}
	content, why, ok := core.NormalizeContent(req.GetContent())
	if !ok {
		v.Add("content", "%s", why)
	}
	if !core.ValidClientMsgID(req.GetIdempotencyKey()) {
		v.Add("idempotency_key", "must be 1..64 characters of [A-Za-z0-9_-:@.]")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	c, err := s.get()
	if err != nil {
		return nil, err
	}
	m, _, err := c.PostMessage(ctx, req.GetRoomId(), req.GetServiceName(), req.GetDisplayName(), content, req.GetIdempotencyKey())
	if err != nil {
		return nil, toStatus(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, status.Error(codes.Internal, "encode message")
	}
	return &chatv1.PostMessageResponse{MessageJson: string(b), Seq: m.Seq, MessageId: m.ID}, nil
}

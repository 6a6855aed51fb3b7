package records

import (
	"context"
	"errors"
	"strings"

	"github.com/talim/realtime/pkg/command"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Register registers the records client events on srv (docs/protocol.md,
// "Safeguarding").
func (r *Records) Register(srv *command.Server) {
	srv.Handle("oversight-room-history", r.oversightEvent)
}

// oversightEvent is oversight-room-history {roomId, reason, beforeSeq?, limit?}:
// the identity and roles come from the verified token (edgev1.Command.identity).
func (r *Records) oversightEvent(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var req struct {
		RoomID    string `json:"roomId"`
		Reason    string `json:"reason"`
		BeforeSeq *int64 `json:"beforeSeq"`
		Limit     *int   `json:"limit"`
	}
	if err := command.Decode(cmd, &req); err != nil {
		return nil, err
	}
	q := OversightQuery{Actor: Actor{UserID: cmd.GetIdentity().GetUserId(), Roles: cmd.GetIdentity().GetRoles()},
		RoomID: req.RoomID, Reason: req.Reason}
	if req.BeforeSeq != nil {
		if *req.BeforeSeq < 1 {
			return nil, command.BadRequest("beforeSeq must be >= 1")
		}
		q.Before = *req.BeforeSeq
	}
	if req.Limit != nil {
		if *req.Limit < 1 {
			return nil, command.BadRequest("limit must be at least 1")
		}
		q.Limit = *req.Limit
	}
	page, err := r.ReadRoomHistory(ctx, q)
	if err != nil {
		return nil, commandError(err)
	}
	return command.OK(page)
}

// commandError maps records errors to protocol errors.
func commandError(err error) error {
	switch {
	case errors.Is(err, ErrInvalid):
		return command.BadRequest("%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	case errors.Is(err, ErrForbidden):
		return command.Forbidden("%s", strings.TrimPrefix(err.Error(), ErrForbidden.Error()+": "))
	case errors.Is(err, store.ErrNotFound):
		return command.NotFound("room not found")
	}
	return err
}

// Package handler serves the notification client events of docs/protocol.md
// "Notifications" over NATS (package command): each handler decodes and validates
// the command's data, calls core on behalf of the command's authenticated user
// only, and maps core and store errors to protocol errors.
package handler

import (
	"context"
	"errors"
	"fmt"

	"github.com/talim/realtime/pkg/command"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/notification/internal/core"
	"github.com/talim/realtime/services/notification/internal/store"
)

// Client events (docs/protocol.md "Notifications").
const (
	EventList     = "list-notifications"
	EventMarkRead = "mark-notification-read"
	EventAck      = "ack-notification"
)

// Handler serves the client events on top of a core.
type Handler struct {
	core *core.Core
}

// New returns the handlers of c.
func New(c *core.Core) *Handler { return &Handler{core: c} }

// Register registers the client event handlers on srv.
func (h *Handler) Register(srv *command.Server) {
	srv.Handle(EventList, h.list)
	srv.Handle(EventMarkRead, h.markRead)
	srv.Handle(EventAck, h.ack)
}

// commandErr maps store errors to protocol errors.
func commandErr(op string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return command.NotFound("notification not found")
	case errors.Is(err, store.ErrAckNotRequired):
		return command.BadRequest("notification does not require acknowledgement")
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w: %w", op, command.ErrUnavailable, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

func (h *Handler) list(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var req struct {
		UnreadOnly bool   `json:"unreadOnly"`
		Before     string `json:"before"`
		Limit      int    `json:"limit"`
	}
	if err := command.Decode(cmd, &req); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > core.MaxListLimit {
		return nil, command.BadRequest("limit must be between 1 and %d", core.MaxListLimit)
	}
	if len(req.Before) > core.MaxNotificationIDLen {
		return nil, command.BadRequest("before is not a notification id")
	}
	notes, more, unread, err := h.core.List(ctx, cmd.GetIdentity().GetUserId(), req.UnreadOnly, req.Before, req.Limit)
	if err != nil {
		return nil, commandErr("list notifications", err)
	}
	out := make([]core.Wire, len(notes))
	for i := range notes {
		out[i] = core.ToWire(&notes[i])
	}
	return command.OK(map[string]any{"notifications": out, "hasMore": more, "unread": unread})
}

func (h *Handler) markRead(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var req struct {
		IDs []string `json:"ids"`
		All bool     `json:"all"`
	}
	if err := command.Decode(cmd, &req); err != nil {
		return nil, err
	}
	if err := core.CheckMarkRead(req.IDs, req.All); err != "" {
		return nil, command.BadRequest("%s", err)
	}
	unread, err := h.core.MarkRead(ctx, cmd.GetIdentity().GetUserId(), cmd.GetConnectionId(), req.IDs, req.All)
	if err != nil {
		return nil, commandErr("mark notifications read", err)
	}
	return command.OK(map[string]any{"unread": unread})
}

func (h *Handler) ack(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var req struct {
		ID string `json:"id"`
	}
	if err := command.Decode(cmd, &req); err != nil {
		return nil, err
	}
	if !core.ValidNotificationID(req.ID) {
		return nil, command.BadRequest("id must be a notification id")
	}
	at, err := h.core.Ack(ctx, cmd.GetIdentity().GetUserId(), cmd.GetConnectionId(), req.ID)
	if err != nil {
		return nil, commandErr("acknowledge notification", err)
	}
	return command.OK(map[string]any{"id": req.ID, "ackedAt": core.FormatTime(at)})
}

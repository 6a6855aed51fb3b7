package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/talim/realtime/pkg/command"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/notification/internal/store"
)

// Client events (docs/protocol.md "Notifications").
const (
	EventList     = "list-notifications"
	EventMarkRead = "mark-notification-read"
	EventAck      = "ack-notification"
)

// RegisterCommands registers the client event handlers on srv. Every handler acts
// on the authenticated user of the command only.
func (c *Core) RegisterCommands(srv *command.Server) {
	srv.Handle(EventList, c.handleList)
	srv.Handle(EventMarkRead, c.handleMarkRead)
	srv.Handle(EventAck, c.handleAck)
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

func validNotificationID(id string) bool { return id != "" && len(id) <= MaxNotificationIDLen }

func (c *Core) handleList(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var req struct {
		UnreadOnly bool   `json:"unreadOnly"`
		Before     string `json:"before"`
		Limit      int    `json:"limit"`
	}
	if err := command.Decode(cmd, &req); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > MaxListLimit {
		return nil, command.BadRequest("limit must be between 1 and %d", MaxListLimit)
	}
	if len(req.Before) > MaxNotificationIDLen {
		return nil, command.BadRequest("before is not a notification id")
	}
	notes, more, unread, err := c.List(ctx, cmd.GetIdentity().GetUserId(), req.UnreadOnly, req.Before, req.Limit)
	if err != nil {
		return nil, commandErr("list notifications", err)
	}
	out := make([]Wire, len(notes))
	for i := range notes {
		out[i] = ToWire(&notes[i])
	}
	return command.OK(map[string]any{"notifications": out, "hasMore": more, "unread": unread})
}

func (c *Core) handleMarkRead(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var req struct {
		IDs []string `json:"ids"`
		All bool     `json:"all"`
	}
	if err := command.Decode(cmd, &req); err != nil {
		return nil, err
	}
	if err := checkMarkRead(req.IDs, req.All); err != "" {
		return nil, command.BadRequest("%s", err)
	}
	unread, err := c.MarkRead(ctx, cmd.GetIdentity().GetUserId(), cmd.GetConnectionId(), req.IDs, req.All)
	if err != nil {
		return nil, commandErr("mark notifications read", err)
	}
	return command.OK(map[string]any{"unread": unread})
}

// checkMarkRead validates a mark-read request; it returns a message, empty if valid.
func checkMarkRead(ids []string, all bool) string {
	switch {
	case all && len(ids) > 0:
		return "give either ids or all, not both"
	case all:
		return ""
	case len(ids) == 0:
		return "ids (a non-empty list) or all:true is required"
	case len(ids) > MaxIDs:
		return fmt.Sprintf("at most %d ids", MaxIDs)
	}
	for _, id := range ids {
		if !validNotificationID(id) {
			return "ids must be notification ids"
		}
	}
	return ""
}

func (c *Core) handleAck(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var req struct {
		ID string `json:"id"`
	}
	if err := command.Decode(cmd, &req); err != nil {
		return nil, err
	}
	if !validNotificationID(req.ID) {
		return nil, command.BadRequest("id must be a notification id")
	}
	at, err := c.Ack(ctx, cmd.GetIdentity().GetUserId(), cmd.GetConnectionId(), req.ID)
	if err != nil {
		return nil, commandErr("acknowledge notification", err)
	}
	return command.OK(map[string]any{"id": req.ID, "ackedAt": formatTime(at)})
}

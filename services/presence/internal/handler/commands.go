// Package handler serves presence over NATS: the client events of
// docs/protocol.md "Presence" (subscribe-presence, unsubscribe-presence,
// set-status, through package command), the internal talim.presence.v1.query
// request, and the event loop that applies the edges' connection events and
// heartbeats and the replicas' internal events in arrival order. Each handler
// decodes and checks its message and calls core.
package handler

import (
	"context"
	"errors"
	"log/slog"
	"unicode/utf8"

	"github.com/talim/realtime/pkg/command"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/presence/internal/core"
	"github.com/talim/realtime/services/presence/internal/state"
)

// Client events (docs/protocol.md "Presence").
const (
	EventSubscribe   = "subscribe-presence"
	EventUnsubscribe = "unsubscribe-presence"
	EventSetStatus   = "set-status"
)

// maxUserIDLen bounds one user id in a presence command (ids are used in subjects).
const maxUserIDLen = 256

// Handler serves presence's NATS messages on top of a core.
type Handler struct {
	core *core.Core
	log  *slog.Logger
}

// New returns the handlers of c.
func New(c *core.Core, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{core: c, log: log}
}

// Register registers the client event handlers on srv.
func (h *Handler) Register(srv *command.Server) {
	srv.Handle(EventSubscribe, h.subscribe)
	srv.Handle(EventUnsubscribe, h.unsubscribe)
	srv.Handle(EventSetStatus, h.setStatus)
}

type userIDsData struct {
	UserIDs *[]string `json:"userIds"`
}

// userIDs decodes and checks {userIds:[...]}: present, strings, at most max of them
// (checked before anything else is done), each 1..256 bytes; duplicates dropped.
func (h *Handler) userIDs(cmd *edgev1.Command) ([]string, error) {
	var d userIDsData
	if err := command.Decode(cmd, &d); err != nil {
		return nil, err
	}
	if d.UserIDs == nil {
		return nil, command.BadRequest("userIds is required: an array of user id strings")
	}
	ids := *d.UserIDs
	if max := h.core.MaxSubscriptions(); len(ids) > max {
		return nil, command.BadRequest("userIds has %d entries; at most %d are allowed", len(ids), max)
	}
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id == "" || len(id) > maxUserIDLen || !utf8.ValidString(id) {
			return nil, command.BadRequest("userIds must be non-empty strings of at most %d bytes", maxUserIDLen)
		}
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out, nil
}

// subscribe handles subscribe-presence: records the subscriptions, answers the
// current presence of every id and tells the edge to watch the visible ones.
func (h *Handler) subscribe(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	ids, err := h.userIDs(cmd)
	if err != nil {
		return nil, err
	}
	items, shown, err := h.core.Subscribe(ctx, cmd.GetIdentity().GetUserId(), cmd.GetEdgeId(), cmd.GetConnectionId(), ids)
	var limit *core.LimitError
	if errors.As(err, &limit) {
		return nil, command.BadRequest("a connection may subscribe to the presence of at most %d users; this one has %d, unsubscribe some first",
			limit.Max, limit.Held)
	}
	if err != nil {
		return nil, err
	}
	reply, err := command.OK(map[string]any{"presence": items})
	if err != nil {
		return nil, err
	}
	reply.WatchUsers = shown
	return reply, nil
}

// unsubscribe handles unsubscribe-presence.
func (h *Handler) unsubscribe(_ context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	ids, err := h.userIDs(cmd)
	if err != nil {
		return nil, err
	}
	h.core.Unsubscribe(cmd.GetEdgeId(), cmd.GetConnectionId(), ids)
	return &edgev1.Reply{Data: []byte("{}"), UnwatchUsers: ids}, nil
}

type setStatusData struct {
	Status string `json:"status"`
}

// setStatus handles set-status for the command's user.
func (h *Handler) setStatus(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var d setStatusData
	if err := command.Decode(cmd, &d); err != nil {
		return nil, err
	}
	if !state.ValidStatus(d.Status) {
		return nil, command.BadRequest("status must be online, away, busy or invisible")
	}
	if err := h.core.SetStatus(ctx, cmd.GetIdentity().GetUserId(), d.Status); err != nil {
		return nil, err
	}
	return command.OK(map[string]string{"status": d.Status})
}

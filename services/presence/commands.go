package presence

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/talim/realtime/pkg/command"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/presence/internal/state"
	"github.com/talim/realtime/services/presence/internal/watch"
)

// maxUserIDLen bounds one user id in a presence command (ids are used in subjects).
const maxUserIDLen = 256

// statusUnknown is what a user whose presence the viewer may not see looks like.
const statusUnknown = "unknown"

type userIDsData struct {
	UserIDs *[]string `json:"userIds"`
}

// presenceItem is one entry of the subscribe-presence ack; LastSeenAt is null when
// unknown or never seen.
type presenceItem struct {
	UserID     string  `json:"userId"`
	Status     string  `json:"status"`
	LastSeenAt *string `json:"lastSeenAt"`
}

// userIDs decodes and checks {userIds:[...]}: present, strings, at most max of them
// (checked before anything else is done), each 1..256 bytes; duplicates dropped.
func (s *Service) userIDs(cmd *edgev1.Command) ([]string, error) {
	var d userIDsData
	if err := command.Decode(cmd, &d); err != nil {
		return nil, err
	}
	if d.UserIDs == nil {
		return nil, command.BadRequest("userIds is required: an array of user id strings")
	}
	ids := *d.UserIDs
	if len(ids) > s.cfg.MaxSubscriptions {
		return nil, command.BadRequest("userIds has %d entries; at most %d are allowed", len(ids), s.cfg.MaxSubscriptions)
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

// subscribe handles subscribe-presence: records the subscriptions (at most
// MaxSubscriptions per connection), answers the current presence of every id
// (unknown for users the caller may not see) and tells the edge to watch the
// visible ones.
func (s *Service) subscribe(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	ids, err := s.userIDs(cmd)
	if err != nil {
		return nil, err
	}
	edge, conn := cmd.GetEdgeId(), cmd.GetConnectionId()
	if before, err := s.watches.Add(edge, conn, ids, s.cfg.MaxSubscriptions); errors.Is(err, watch.ErrLimit) {
		return nil, command.BadRequest("a connection may subscribe to the presence of at most %d users; this one has %d, unsubscribe some first",
			s.cfg.MaxSubscriptions, before)
	}
	s.broadcast(subjectWatch, watchEvent{Origin: s.rt.InstanceID, EdgeID: edge, ConnectionID: conn, Add: ids})

	viewer := cmd.GetIdentity().GetUserId()
	others := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != viewer {
			others = append(others, id)
		}
	}
	visible := map[string]bool{viewer: true}
	if len(others) > 0 {
		v, err := s.vis.Visible(ctx, viewer, others)
		if err != nil {
			// Fail closed: nobody else is visible until chat answers again.
			s.m.visibilityErrs.Inc()
			s.log.WarnContext(ctx, "visibility check failed; answering unknown", "user", viewer, "err", err)
			v = nil
		}
		for id, ok := range v {
			if ok {
				visible[id] = true
			}
		}
	}

	var shown []string
	for _, id := range ids {
		if visible[id] {
			shown = append(shown, id)
		}
	}
	views := s.tracker.View(shown)
	var needStore []string
	for i, v := range views {
		if v.Status == state.Offline && v.LastSeenMs == 0 {
			needStore = append(needStore, shown[i])
		}
	}
	stored := map[string]time.Time{}
	if len(needStore) > 0 {
		if stored, err = s.store.LastSeen(ctx, needStore); err != nil {
			s.log.WarnContext(ctx, "load lastSeenAt; answering null", "err", err)
		}
	}
	nowStr := time.Now().UTC().Format(lastSeenLayout)
	byID := make(map[string]presenceItem, len(shown))
	for i, v := range views {
		item := presenceItem{UserID: shown[i], Status: v.Status}
		switch {
		case v.Status != state.Offline:
			item.LastSeenAt = &nowStr // online, away or busy: seen now
		case v.LastSeenMs > 0:
			ls := formatMs(v.LastSeenMs)
			item.LastSeenAt = &ls
		default:
			if t, ok := stored[shown[i]]; ok {
				ls := t.UTC().Format(lastSeenLayout)
				item.LastSeenAt = &ls
			}
		}
		byID[shown[i]] = item
	}
	items := make([]presenceItem, 0, len(ids))
	for _, id := range ids {
		if it, ok := byID[id]; ok {
			items = append(items, it)
		} else {
			items = append(items, presenceItem{UserID: id, Status: statusUnknown})
		}
	}
	reply, err := command.OK(map[string]any{"presence": items})
	if err != nil {
		return nil, err
	}
	reply.WatchUsers = shown
	return reply, nil
}

// unsubscribe handles unsubscribe-presence.
func (s *Service) unsubscribe(_ context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	ids, err := s.userIDs(cmd)
	if err != nil {
		return nil, err
	}
	edge, conn := cmd.GetEdgeId(), cmd.GetConnectionId()
	s.watches.Remove(edge, conn, ids)
	s.broadcast(subjectWatch, watchEvent{Origin: s.rt.InstanceID, EdgeID: edge, ConnectionID: conn, Remove: ids})
	return &edgev1.Reply{Data: []byte("{}"), UnwatchUsers: ids}, nil
}

type setStatusData struct {
	Status string `json:"status"`
}

// setStatus handles set-status: stores the chosen status, applies it here and
// broadcasts it to the other replicas, which apply it with the same timestamp (and
// so publish the same version).
func (s *Service) setStatus(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var d setStatusData
	if err := command.Decode(cmd, &d); err != nil {
		return nil, err
	}
	if !state.ValidStatus(d.Status) {
		return nil, command.BadRequest("status must be online, away, busy or invisible")
	}
	user := cmd.GetIdentity().GetUserId()
	now := time.Now()
	if err := s.store.SetStatus(ctx, user, d.Status, now); err != nil {
		return nil, err
	}
	// Stored with millisecond precision; use the same value everywhere.
	atMs := now.UnixMilli()
	s.apply(s.tracker.SetStatus(user, d.Status, atMs, now))
	s.broadcast(subjectStatus, statusEvent{Origin: s.rt.InstanceID, UserID: user, Status: d.Status, AtUnixMs: atMs})
	return command.OK(map[string]string{"status": d.Status})
}
